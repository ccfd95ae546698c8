package dashboard

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/server/apiv1"
)

// page is what every template is given: who is signed in, the instant the
// page answers for, and the page's own data.
type page struct {
	Title string
	Nav   string
	User  *Principal
	CSRF  string
	// At is the "as of" instant as the URL gives it ("" for now); every
	// link a page makes keeps it.
	At     string
	AtTime time.Time
	Now    time.Time
	Path   string
	Query  url.Values
	Data   any
	// Bare pages (the printable SoA) have no navigation: they are documents.
	Bare bool
}

func (d *Dashboard) newPage(r *http.Request, who *Principal, sess *session) *page {
	p := &page{User: who, Path: r.URL.Path, Query: r.URL.Query(), Now: d.now().UTC()}
	if sess != nil {
		p.CSRF = sess.csrf
	}
	p.At = strings.TrimSpace(p.Query.Get("at"))
	return p
}

// CanExport and IsAdmin say what the signed-in role is offered.
func (p *page) CanExport() bool {
	// A token limited to a selector cannot export: a bundle holds the
	// whole log of its period.
	return p.User != nil && (p.User.Role == RoleAdmin || p.User.Role == RoleAuditor) && p.User.Selector == ""
}

func (p *page) IsAdmin() bool { return p.User != nil && p.User.Role == RoleAdmin }

// Link is path with the query pairs kv (empty values dropped) and the
// page's "as of" instant.
func (p *page) Link(path string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Add(kv[i], kv[i+1])
		}
	}
	if p.At != "" && v.Get("at") == "" {
		v.Set("at", p.At)
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// With is the current page's URL with key set to value (others kept,
// the cursor dropped, since a new filter starts a new list).
func (p *page) With(key, value string) string {
	v := url.Values{}
	for k, vs := range p.Query {
		v[k] = append([]string(nil), vs...)
	}
	v.Del("cursor")
	if value == "" {
		v.Del(key)
	} else {
		v.Set(key, value)
	}
	if len(v) == 0 {
		return p.Path
	}
	return p.Path + "?" + v.Encode()
}

// Hidden are the current query's parameters other than except, as the
// hidden inputs a GET form carries so it changes one thing only.
func (p *page) Hidden(except ...string) []struct{ Name, Value string } {
	var out []struct{ Name, Value string }
	keys := make([]string, 0, len(p.Query))
	for k := range p.Query {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		skip := k == "cursor"
		for _, e := range except {
			skip = skip || k == e
		}
		if skip {
			continue
		}
		for _, v := range p.Query[k] {
			out = append(out, struct{ Name, Value string }{k, v})
		}
	}
	return out
}

// AtInput is the "as of" instant as a datetime-local input's value.
func (p *page) AtInput() string {
	if p.AtTime.IsZero() {
		return ""
	}
	return p.AtTime.UTC().Format("2006-01-02T15:04")
}

var funcs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"date": func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		d := now.Sub(t)
		switch {
		case d < 0:
			return "in the future"
		case d < time.Minute:
			return "just now"
		case d < time.Hour:
			return fmt.Sprintf("%d min ago", int(d.Minutes()))
		case d < 48*time.Hour:
			return fmt.Sprintf("%d h ago", int(d.Hours()))
		}
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	},
	"statusClass": func(s string) string { return "st-" + strings.ReplaceAll(s, "_", "-") },
	"minus":       func(a, b uint64) uint64 { return a - b },
	// statusOrder is the order statuses are counted in, worst first.
	"statusOrder": func() []string {
		return []string{"failing", "error", "stale", "partial", "passing", "not_covered", "not_automated", "not_applicable"}
	},
	// attestClass shows an attestation's status in a control status's
	// colour: lapsed is stale.
	"attestClass": func(s string) string {
		return map[string]string{"valid": "passing", "expiring": "error", "expired": "stale"}[s]
	},
	"label": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"labels": func(m map[string]string) []string {
		out := make([]string, 0, len(m))
		for k, v := range m {
			out = append(out, k+"="+v)
		}
		sort.Strings(out)
		return out
	},
	"count": func(m map[string]int, k string) int { return m[k] },
	"resultStatus": func(cs apiv1.CheckState) string {
		if cs.Stale {
			return "stale"
		}
		return cs.Status
	},
	"add":   func(a, b int) int { return a + b },
	"spark": sparkline,
	"bar":   statusBar,
}
