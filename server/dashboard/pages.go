package dashboard

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/evidence/catalog"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// pageSize is how many rows a list page shows.
const pageSize = 50

// trendDays is the overview's trend window.
const trendDays = 30

// asOf reads the page's "as of" instant: the query the backend answers
// from (the same parameter as the API's ?at=), and the instant itself.
func (p *page) asOf() (url.Values, error) {
	v := url.Values{}
	if p.Query.Get("in_scope") != "" {
		// The ISMS scope only, as the API's ?in_scope=true.
		v.Set("in_scope", "true")
	}
	if p.At == "" {
		return v, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, p.At); err == nil {
			p.AtTime = t.UTC()
			v.Set("at", p.AtTime.Format(time.RFC3339))
			return v, nil
		}
	}
	return nil, badRequest("as of %q: want a date and time (2026-03-01T12:00) or a date (2026-03-01)", p.At)
}

// instant is the instant the page answers for.
func (p *page) instant() time.Time {
	if p.AtTime.IsZero() {
		return p.Now
	}
	return p.AtTime
}

// themes in Annex A's order, with the names pages show.
var themes = []struct{ Name, Label string }{
	{"Organizational", "Organisational"}, {"People", "People"}, {"Physical", "Physical"}, {"Technological", "Technological"},
}

// controlRow is a control as the overview and the controls list show it.
type controlRow struct {
	apiv1.ControlSummary
	Trend    []int
	TrendMax int
}

type themeGroup struct {
	Name     string
	Label    string
	Controls []controlRow
	Counts   apiv1.ControlSummary // the theme's totals
}

// controlRows reads the controls and, with trend, their trend; pending says
// the trend is still being built (the page says so and shows it later).
func (d *Dashboard) controlRows(r *http.Request, p *page, labels []string, trend bool) (*apiv1.ControlsResponse, []controlRow, bool, error) {
	v, err := p.asOf()
	if err != nil {
		return nil, nil, false, err
	}
	for _, l := range labels {
		v.Add("label", l)
	}
	resp, err := d.b.Controls(r.Context(), v)
	if err != nil {
		return nil, nil, false, err
	}
	var tr map[string][]int
	if trend {
		if tr, err = d.b.Trend(r.Context(), p.instant(), trendDays, v); err != nil {
			return nil, nil, false, err
		}
	}
	rows := make([]controlRow, 0, len(resp.Controls))
	for _, c := range resp.Controls {
		row := controlRow{ControlSummary: c, Trend: tr[c.ID]}
		for _, n := range row.Trend {
			row.TrendMax = max(row.TrendMax, n)
		}
		rows = append(rows, row)
	}
	return resp, rows, trend && tr == nil, nil
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request, p *page) error {
	labels := nonEmpty(p.Query["label"])
	resp, rows, pending, err := d.controlRows(r, p, labels, true)
	if err != nil {
		return err
	}
	var groups []themeGroup
	for _, th := range themes {
		g := themeGroup{Name: th.Name, Label: th.Label}
		for _, c := range rows {
			if c.Theme != th.Name {
				continue
			}
			g.Controls = append(g.Controls, c)
			g.Counts.Passing += c.Passing
			g.Counts.Failing += c.Failing
			g.Counts.Error += c.Error
			g.Counts.Stale += c.Stale
			g.Counts.NotApplicable += c.NotApplicable
			if c.Automated {
				g.Counts.Checks = append(g.Counts.Checks, c.ID)
			}
			if c.Covered {
				g.Counts.Assets++
			}
		}
		groups = append(groups, g)
	}
	// The controls most in need of attention come first on the page.
	var attention []controlRow
	for _, c := range rows {
		if c.Failing > 0 || c.Error > 0 {
			attention = append(attention, c)
		}
	}
	sort.SliceStable(attention, func(i, j int) bool {
		if attention[i].Failing != attention[j].Failing {
			return attention[i].Failing > attention[j].Failing
		}
		return catalog.Less(attention[i].ID, attention[j].ID)
	})
	scope, err := d.b.Scope(r.Context())
	if err != nil {
		return err
	}
	p.Title, p.Nav = "Overview", "overview"
	p.Data = struct {
		Resp      *apiv1.ControlsResponse
		Groups    []themeGroup
		Attention []controlRow
		Labels    []string
		Days      int
		Pending   bool
		Scope     *apiv1.Scope
	}{resp, groups, attention, labels, trendDays, pending, scope}
	d.render(w, http.StatusOK, "overview", p)
	return nil
}

func nonEmpty(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// controls is the list of the 93 controls, filtered by theme, status,
// label and a search that finds 2022 ids, 2013 ids and titles.
func (d *Dashboard) controls(w http.ResponseWriter, r *http.Request, p *page) error {
	labels := nonEmpty(p.Query["label"])
	resp, rows, _, err := d.controlRows(r, p, labels, false)
	if err != nil {
		return err
	}
	theme, status := p.Query.Get("theme"), p.Query.Get("status")
	search := strings.TrimSpace(p.Query.Get("q"))
	var ids map[string]bool
	note := ""
	if search != "" {
		// An id (2022, or 2013 through the crosswalk) finds its controls;
		// anything else is looked for in ids and titles.
		if got, err := d.b.Catalog().Resolve(search); err == nil {
			ids = map[string]bool{}
			for _, id := range got {
				ids[id] = true
			}
			if strings.HasPrefix(strings.ToUpper(search), "A.") {
				note = fmt.Sprintf("%s (ISO/IEC 27001:2013) is %s in the 2022 Annex A", search, strings.Join(got, ", "))
			}
		}
	}
	var out []controlRow
	for _, c := range rows {
		switch {
		case theme != "" && c.Theme != theme:
			continue
		case status != "" && !hasStatus(c, status):
			continue
		case ids != nil && !ids[c.ID]:
			continue
		case ids == nil && search != "" && !strings.Contains(strings.ToLower(c.ID+" "+c.Title), strings.ToLower(search)):
			continue
		}
		out = append(out, c)
	}
	p.Title, p.Nav = "Controls", "controls"
	p.Data = struct {
		Resp     *apiv1.ControlsResponse
		Rows     []controlRow
		Themes   []struct{ Name, Label string }
		Statuses []string
		Theme    string
		Status   string
		Search   string
		Label    string
		Note     string
	}{resp, out, themes, []string{"failing", "error", "stale", "passing", "not_applicable", "not_covered", "automated", "not_automated"},
		theme, status, search, strings.Join(labels, ","), note}
	d.render(w, http.StatusOK, "controls", p)
	return nil
}

// hasStatus says whether c has assets in status (or is covered, automated).
func hasStatus(c controlRow, status string) bool {
	switch status {
	case "failing":
		return c.Failing > 0
	case "error":
		return c.Error > 0
	case "stale":
		return c.Stale > 0
	case "passing":
		return c.Passing > 0
	case "not_applicable":
		return c.NotApplicable > 0
	case "not_covered":
		return c.Automated && !c.Covered
	case "automated":
		return c.Automated
	case "not_automated":
		return !c.Automated
	}
	return true
}

// checkView is one check result with what it examined.
type checkView struct {
	apiv1.CheckState
	Observations string
}

func (c checkView) Shown() string {
	if c.Stale {
		return "stale"
	}
	return c.Status
}

// Rollup is the asset status this result gives its controls: the check
// whose rollup equals the asset's status is the one that set it.
func (c checkView) Rollup() string {
	switch s := c.Shown(); s {
	case "pass":
		return "passing"
	case "fail":
		return "failing"
	default:
		return s
	}
}

// observe loads the observations of the records behind results, one read
// per record however many results share it.
func (d *Dashboard) observe(r *http.Request, results []apiv1.CheckState) ([]checkView, error) {
	byIndex := map[int64]map[string]json.RawMessage{}
	out := make([]checkView, 0, len(results))
	for _, cs := range results {
		obs, ok := byIndex[cs.LogIndex]
		if !ok {
			var err error
			if obs, err = d.b.Observations(r.Context(), cs.LogIndex); err != nil {
				return nil, err
			}
			byIndex[cs.LogIndex] = obs
		}
		out = append(out, checkView{CheckState: cs, Observations: indentJSON(obs[cs.Asset+" "+cs.Check])})
	}
	return out, nil
}

func indentJSON(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

type assetView struct {
	Asset    string
	AgentID  string
	Hostname string
	Status   string
	Checks   []checkView
}

func (d *Dashboard) control(w http.ResponseWriter, r *http.Request, p *page) error {
	v, err := p.asOf()
	if err != nil {
		return err
	}
	labels := nonEmpty(p.Query["label"])
	for _, l := range labels {
		v.Add("label", l)
	}
	v.Set("limit", strconv.Itoa(pageSize))
	if c := p.Query.Get("cursor"); c != "" {
		v.Set("cursor", c)
	}
	det, err := d.b.Control(r.Context(), r.PathValue("id"), v)
	if err != nil {
		return err
	}
	var assets []assetView
	for _, a := range det.AssetsDetail {
		checks, err := d.observe(r, a.Checks)
		if err != nil {
			return err
		}
		assets = append(assets, assetView{Asset: a.Asset, AgentID: a.AgentID, Hostname: a.Hostname, Status: a.Status, Checks: checks})
	}
	p.Title, p.Nav = det.ID+" "+det.Title, "controls"
	p.Data = struct {
		D      *apiv1.ControlDetail
		Row    controlRow
		Assets []assetView
		Label  string
	}{det, controlRow{ControlSummary: det.ControlSummary}, assets, strings.Join(labels, ",")}
	d.render(w, http.StatusOK, "control", p)
	return nil
}

func (d *Dashboard) hosts(w http.ResponseWriter, r *http.Request, p *page) error {
	v, err := p.asOf()
	if err != nil {
		return err
	}
	for _, k := range []string{"q", "os", "version", "failing", "seen_before", "seen_after", "cursor"} {
		if x := strings.TrimSpace(p.Query.Get(k)); x != "" {
			v.Set(k, x)
		}
	}
	for _, l := range nonEmpty(p.Query["label"]) {
		v.Add("label", l)
	}
	v.Set("limit", strconv.Itoa(pageSize))
	list, err := d.b.Hosts(r.Context(), v)
	if err != nil {
		return err
	}
	p.Title, p.Nav = "Hosts", "hosts"
	p.Data = list
	d.render(w, http.StatusOK, "hosts", p)
	return nil
}

func (d *Dashboard) host(w http.ResponseWriter, r *http.Request, p *page) error {
	v, err := p.asOf()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	h, err := d.b.Host(r.Context(), id, v)
	if err != nil {
		return err
	}
	// Failing and error results first: what needs doing tops the page.
	sort.SliceStable(h.Results, func(i, j int) bool {
		return resultOrder(h.Results[i]) < resultOrder(h.Results[j])
	})
	checks, err := d.observe(r, h.Results)
	if err != nil {
		return err
	}
	hv := url.Values{"agent": {id}, "limit": {"200"}}
	if !p.AtTime.IsZero() {
		hv.Set("to", p.AtTime.Format(time.RFC3339))
	}
	hist, err := d.b.History(r.Context(), hv)
	if err != nil {
		return err
	}
	// Newest first on the timeline.
	sort.SliceStable(hist.Items, func(i, j int) bool { return hist.Items[i].At.After(hist.Items[j].At) })
	keys, err := d.b.AgentKeys(r.Context(), id)
	if err != nil {
		return err
	}
	p.Title, p.Nav = h.Hostname, "hosts"
	p.Data = struct {
		H       *apiv1.HostDetail
		Checks  []checkView
		History []apiv1.Transition
		More    bool
		Keys    []apiv1.AgentKey
	}{h, checks, hist.Items, hist.Next != "", keys}
	d.render(w, http.StatusOK, "host", p)
	return nil
}

func resultOrder(cs apiv1.CheckState) int {
	switch {
	case cs.Status == "fail" && !cs.Stale:
		return 0
	case cs.Status == "error":
		return 1
	case cs.Stale:
		return 2
	case cs.Status == "pass":
		return 3
	}
	return 4
}

func (d *Dashboard) record(w http.ResponseWriter, r *http.Request, p *page) error {
	idx, err := strconv.ParseInt(r.PathValue("index"), 10, 64)
	if err != nil || idx < 0 {
		return badRequest("a log index is a non-negative integer, not %q", r.PathValue("index"))
	}
	rec, err := d.b.Record(r.Context(), idx)
	if err != nil {
		return err
	}
	p.Title, p.Nav = fmt.Sprintf("Log entry %d", idx), ""
	p.Data = rec
	d.render(w, http.StatusOK, "record", p)
	return nil
}

// attestations lists the people's attestations in force (?status=,
// ?all=1 for superseded ones too) and the people registered to attest.
func (d *Dashboard) attestations(w http.ResponseWriter, r *http.Request, p *page) error {
	v, err := p.asOf()
	if err != nil {
		return err
	}
	if st := p.Query.Get("status"); st != "" {
		v.Set("status", st)
	}
	if p.Query.Get("all") != "" {
		v.Set("all", "true")
	}
	list, err := d.b.Attestations(r.Context(), v)
	if err != nil {
		return err
	}
	persons, err := d.b.Persons(r.Context())
	if err != nil {
		return err
	}
	p.Title, p.Nav = "Attestations", "attestations"
	p.Data = struct {
		List    *apiv1.AttestationsResponse
		Persons []apiv1.Person
		Status  string
		All     bool
	}{list, persons, p.Query.Get("status"), p.Query.Get("all") != ""}
	d.render(w, http.StatusOK, "attestations", p)
	return nil
}

// frameworks lists the framework mappings.
func (d *Dashboard) frameworks(w http.ResponseWriter, r *http.Request, p *page) error {
	fws, err := d.b.Frameworks(r.Context())
	if err != nil {
		return err
	}
	p.Title, p.Nav, p.Data = "Frameworks", "frameworks", fws
	d.render(w, http.StatusOK, "frameworks", p)
	return nil
}

// framework is the fleet's state per requirement of one framework.
func (d *Dashboard) framework(w http.ResponseWriter, r *http.Request, p *page) error {
	v, err := p.asOf()
	if err != nil {
		return err
	}
	st, err := d.b.Framework(r.Context(), r.PathValue("name"), v)
	if err != nil {
		return err
	}
	p.Title, p.Nav, p.Data = st.Title, "frameworks", st
	d.render(w, http.StatusOK, "framework", p)
	return nil
}

// attestedFile serves an attested document as a download, never rendered
// in the dashboard's origin: whoever uploaded it chose its bytes.
func (d *Dashboard) attestedFile(w http.ResponseWriter, r *http.Request, p *page) error {
	name, mt, data, err := d.b.AttestedFile(r.Context(), r.PathValue("sha256"))
	if err != nil {
		return err
	}
	if mt == "" {
		mt = "application/octet-stream"
	}
	w.Header().Set("Content-Type", mt)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	w.Header().Set("Content-Security-Policy", "sandbox")
	_, _ = w.Write(data)
	return nil
}

func (d *Dashboard) exportForm(w http.ResponseWriter, r *http.Request, p *page) error {
	now := p.Now
	p.Title, p.Nav = "Export", "export"
	p.Data = struct {
		From, To string
		Info     Info
	}{now.AddDate(0, 0, -30).Format("2006-01-02"), now.AddDate(0, 0, 1).Format("2006-01-02"), d.b.Info()}
	d.render(w, http.StatusOK, "export", p)
	return nil
}

// exportBundle streams the bundle the export form asked for: controls and
// labels as the form gives them (comma or space separated) become the
// API's repeated parameters.
func (d *Dashboard) exportBundle(w http.ResponseWriter, r *http.Request, p *page) error {
	v := url.Values{"from": {p.Query.Get("from")}, "to": {p.Query.Get("to")}}
	for _, f := range p.Query["control"] {
		for _, c := range strings.FieldsFunc(f, splitList) {
			v.Add("control", c)
		}
	}
	for _, f := range p.Query["label"] {
		for _, l := range strings.FieldsFunc(f, splitList) {
			v.Add("label", l)
		}
	}
	name, write, err := d.b.Export(r.Context(), v)
	if err != nil {
		return err
	}
	d.log.Info("dashboard export", "token", p.User.TokenID, "from", v.Get("from"), "to", v.Get("to"), "controls", v["control"], "labels", v["label"])
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	if err := write(w); err != nil {
		// Bytes are out: the status cannot change. Cutting the stream makes
		// the download fail rather than look complete.
		d.log.Error("dashboard export failed mid-stream", "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

func splitList(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }

type adminData struct {
	Tokens  []apiv1.Token
	Created *apiv1.TokenResponse
	Enroll  string // the command to paste, for a new enroll token
	Done    string
}

func (d *Dashboard) admin(w http.ResponseWriter, r *http.Request, p *page) error {
	return d.renderAdmin(w, r, p, adminData{Done: p.Query.Get("done")}, http.StatusOK)
}

func (d *Dashboard) renderAdmin(w http.ResponseWriter, r *http.Request, p *page, data adminData, status int) error {
	toks, err := d.b.Tokens(r.Context())
	if err != nil {
		return err
	}
	sort.SliceStable(toks, func(i, j int) bool { return toks[i].CreatedAt.After(toks[j].CreatedAt) })
	data.Tokens = toks
	p.Title, p.Nav = "Administration", "admin"
	p.Data = data
	d.render(w, status, "admin", p)
	return nil
}

// tokenCreate creates a token and shows its secret once, on the page the
// POST answers (never in a URL, never again).
func (d *Dashboard) tokenCreate(w http.ResponseWriter, r *http.Request, p *page) error {
	f := r.PostForm
	req := apiv1.TokenRequest{Role: f.Get("role"), Name: strings.TrimSpace(f.Get("name"))}
	if m := strings.TrimSpace(f.Get("max_uses")); m != "" {
		n, err := strconv.ParseInt(m, 10, 64)
		if err != nil || n < 0 {
			return badRequest("max uses must be a whole number ≥ 0")
		}
		req.MaxUses = n
	}
	if e := strings.TrimSpace(f.Get("expires")); e != "" {
		t, err := time.Parse("2006-01-02", e)
		if err != nil {
			return badRequest("expires: want a date (2026-03-01)")
		}
		req.Expires = t
	}
	if l := strings.TrimSpace(f.Get("labels")); l != "" {
		labels, err := apiv1.ParseLabels(strings.FieldsFunc(l, splitList))
		if err != nil {
			return badRequest("labels: %v", err)
		}
		req.Labels = labels
	}
	resp, err := d.b.CreateToken(r.Context(), p.User, req)
	if err != nil {
		return err
	}
	data := adminData{Created: resp}
	if resp.Role == RoleEnroll || req.Role == "enroll" {
		scheme := "https"
		if r.TLS == nil && d.insecure {
			scheme = "http"
		}
		data.Enroll = fmt.Sprintf("sudo annexa-agent enroll --server %s://%s --token %s --ca tls.crt", scheme, r.Host, resp.Secret)
	}
	return d.renderAdmin(w, r, p, data, http.StatusCreated)
}

func (d *Dashboard) tokenRevoke(w http.ResponseWriter, r *http.Request, p *page) error {
	id := r.PathValue("id")
	if err := d.b.RevokeToken(r.Context(), p.User, id); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin?done="+url.QueryEscape("token "+id+" revoked"), http.StatusSeeOther)
	return nil
}

func (d *Dashboard) agentRevoke(w http.ResponseWriter, r *http.Request, p *page) error {
	id := r.PathValue("id")
	if err := d.b.RevokeAgent(r.Context(), p.User, id); err != nil {
		return err
	}
	http.Redirect(w, r, "/hosts/"+url.PathEscape(id)+"?revoked=1", http.StatusSeeOther)
	return nil
}

// signinForm is the sign-in page. Its form carries a random value that
// must match a cookie set with it, so another site cannot sign a browser
// in with the attacker's token.
func (d *Dashboard) signinForm(w http.ResponseWriter, r *http.Request, p *page) error {
	return d.renderSignin(w, r, p, "", http.StatusOK)
}

func (d *Dashboard) renderSignin(w http.ResponseWriter, r *http.Request, p *page, msg string, status int) error {
	pair := randomString()
	http.SetCookie(w, d.cookie(signinCookie, pair, 600))
	p.CSRF = pair
	p.Title = "Sign in"
	p.Data = struct {
		Next    string
		Message string
	}{safeNext(r.FormValue("next")), msg}
	d.render(w, status, "signin", p)
	return nil
}

// safeNext keeps a post-sign-in redirect on this server.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func (d *Dashboard) signin(w http.ResponseWriter, r *http.Request, p *page) error {
	now := d.now()
	addr := clientAddr(r)
	if wait, blocked := d.limit.blocked(addr, now); blocked {
		d.log.Warn("dashboard sign-in refused: too many failures", "addr", addr)
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		return d.renderSignin(w, r, p, fmt.Sprintf("Too many failed sign-ins from this address: try again in %d s.", int(wait.Seconds())+1), http.StatusTooManyRequests)
	}
	if err := r.ParseForm(); err != nil {
		return badRequest("form: %v", err)
	}
	c, err := r.Cookie(signinCookie)
	if err != nil || !sameSecret(r.PostForm.Get("csrf"), c.Value) {
		d.log.Warn("dashboard sign-in refused: CSRF check failed", "addr", addr)
		return d.renderSignin(w, r, p, "The sign-in form expired or was not sent from this page: try again.", http.StatusForbidden)
	}
	who, err := d.b.SignIn(r.Context(), strings.TrimSpace(r.PostForm.Get("token")))
	if err != nil {
		if !errors.Is(err, ErrCredential) {
			return err
		}
		d.limit.fail(addr, now)
		d.log.Warn("dashboard sign-in failed", "addr", addr, "why", err)
		return d.renderSignin(w, r, p, err.Error(), http.StatusUnauthorized)
	}
	sess := d.sessions.create(who.TokenID, now)
	d.log.Info("dashboard sign-in", "token", who.TokenID, "role", who.Role, "addr", addr)
	http.SetCookie(w, d.cookie(sessionCookie, sess.id, int(d.sessions.ttl.Seconds())))
	http.SetCookie(w, d.cookie(signinCookie, "", -1))
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
	return nil
}

func (d *Dashboard) signout(w http.ResponseWriter, r *http.Request, p *page) error {
	if c, err := r.Cookie(sessionCookie); err == nil {
		d.sessions.end(c.Value)
	}
	http.SetCookie(w, d.cookie(sessionCookie, "", -1))
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
	return nil
}
