package catalog

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Mapping says which Annex A controls each check supports. It is data
// (configs/mapping.yaml): the auditor's view of which control a piece of
// evidence speaks to is the customer's to adjust.
type Mapping struct {
	checks    map[string][]string
	controls  map[string][]string // control → checks
	freshness map[string]time.Duration
}

var checkID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$`)

// LoadMapping reads a mapping file:
//
//	checks:
//	  disk_encryption.system_volume: ["8.24", "8.1"]
//	  inventory.software: {controls: ["5.9", "8.19"], freshness: 8d}
//
// freshness (Go durations, or whole days as "8d") is how long a result of
// the check stays current; without it the server's default applies.
// Every control id is resolved against cat (2013 ids are accepted and
// translated); an unknown id is an error naming the check, the id and the
// line.
func LoadMapping(r io.Reader, cat *Catalog) (*Mapping, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("mapping: want a document with a top-level 'checks:' map")
	}
	top := doc.Content[0]
	var checks *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		k := top.Content[i]
		if k.Value != "checks" {
			return nil, fmt.Errorf("mapping line %d: unknown key %q (only 'checks' is allowed)", k.Line, k.Value)
		}
		checks = top.Content[i+1]
	}
	if checks == nil || checks.Kind != yaml.MappingNode {
		return nil, errors.New("mapping: 'checks' must be a map of check id to a list of control ids")
	}
	m := &Mapping{checks: map[string][]string{}, controls: map[string][]string{}, freshness: map[string]time.Duration{}}
	for i := 0; i+1 < len(checks.Content); i += 2 {
		k, v := checks.Content[i], checks.Content[i+1]
		if !checkID.MatchString(k.Value) {
			return nil, fmt.Errorf("mapping line %d: check id %q: want collector.check, lower case", k.Line, k.Value)
		}
		if _, dup := m.checks[k.Value]; dup {
			return nil, fmt.Errorf("mapping line %d: check %s listed twice", k.Line, k.Value)
		}
		var ids []string
		if v.Kind == yaml.MappingNode {
			var entry struct {
				Controls  []string `yaml:"controls"`
				Freshness string   `yaml:"freshness"`
			}
			for i := 0; i+1 < len(v.Content); i += 2 {
				if f := v.Content[i].Value; f != "controls" && f != "freshness" {
					return nil, fmt.Errorf("mapping line %d: check %s: unknown key %q (want controls, freshness)", v.Content[i].Line, k.Value, f)
				}
			}
			if err := v.Decode(&entry); err != nil {
				return nil, fmt.Errorf("mapping line %d: check %s: %v", v.Line, k.Value, err)
			}
			ids = entry.Controls
			if entry.Freshness != "" {
				d, err := ParseDuration(entry.Freshness)
				if err != nil || d <= 0 {
					return nil, fmt.Errorf("mapping line %d: check %s: freshness %q is not a duration (e.g. 26h, 8d)", v.Line, k.Value, entry.Freshness)
				}
				m.freshness[k.Value] = d
			}
		} else if err := v.Decode(&ids); err != nil {
			ids = nil
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("mapping line %d: check %s: want a non-empty list of control ids", v.Line, k.Value)
		}
		seen := map[string]bool{}
		var out []string
		for _, id := range ids {
			resolved, err := cat.Resolve(id)
			if err != nil {
				return nil, fmt.Errorf("mapping line %d: check %s: %w", v.Line, k.Value, err)
			}
			for _, r := range resolved {
				if !seen[r] {
					seen[r] = true
					out = append(out, r)
				}
			}
		}
		m.checks[k.Value] = out
		for _, c := range out {
			m.controls[c] = append(m.controls[c], k.Value)
		}
	}
	for _, v := range m.controls {
		sort.Strings(v)
	}
	return m, nil
}

// Freshness is how long a result of check stays current, or def when the
// mapping does not say.
func (m *Mapping) Freshness(check string, def time.Duration) time.Duration {
	if d, ok := m.freshness[check]; ok {
		return d
	}
	return def
}

// ParseDuration reads Go durations and whole days ("8d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// Controls returns the controls a check supports, or nil for an unmapped check.
func (m *Mapping) Controls(check string) []string { return m.checks[check] }

// Checks returns the checks that support a control.
func (m *Mapping) Checks(control string) []string { return m.controls[control] }

// Has says whether a check is mapped: the checks a record may carry.
func (m *Mapping) Has(check string) bool { _, ok := m.checks[check]; return ok }

// CheckIDs lists the mapped checks, sorted.
func (m *Mapping) CheckIDs() []string {
	out := make([]string, 0, len(m.checks))
	for k := range m.checks {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Covered returns the controls that at least one check supports, in order.
func (m *Mapping) Covered() []string {
	out := make([]string, 0, len(m.controls))
	for k := range m.controls {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return Less(out[i], out[j]) })
	return out
}

// Nearest is the mapped check closest to check in edit distance, for a
// "did you mean" when a person mistypes one; "" when none is close.
func (m *Mapping) Nearest(check string) string {
	best, bestD := "", len(check)/3+2
	for c := range m.checks {
		if d := editDistance(check, c); d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is Levenshtein's, over bytes (check ids are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
