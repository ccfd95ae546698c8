// Package selector is the label selector that names an ISMS scope
// ("env=prod,team!=lab"): which assets, by the labels their agents were
// enrolled with, an audit covers. The server keeps it, filters by it, and
// writes it into bundles; the offline verifier applies the same rule to
// the labels the enrollment key events carry.
package selector

import (
	"fmt"
	"sort"
	"strings"
)

// Term is one condition: the label Key equals Value, or with Not, does not
// (an absent label does not equal anything).
type Term struct {
	Key, Value string
	Not        bool
}

// Selector is every term at once; the empty selector matches everything.
type Selector struct {
	Terms []Term
}

// Parse reads "k=v,k2!=v2". Keys may not be empty or repeat with the same
// operator; whitespace around terms is ignored.
func Parse(s string) (Selector, error) {
	var sel Selector
	seen := map[string]bool{}
	for _, raw := range strings.Split(s, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		var t Term
		if k, v, ok := strings.Cut(raw, "!="); ok {
			t = Term{Key: strings.TrimSpace(k), Value: strings.TrimSpace(v), Not: true}
		} else if k, v, ok := strings.Cut(raw, "="); ok {
			t = Term{Key: strings.TrimSpace(k), Value: strings.TrimSpace(v)}
		} else {
			return Selector{}, fmt.Errorf("selector term %q: want key=value or key!=value", raw)
		}
		if t.Key == "" || strings.ContainsAny(t.Key, "=!") {
			return Selector{}, fmt.Errorf("selector term %q: the key is empty or malformed", raw)
		}
		id := t.Key + map[bool]string{true: "!=", false: "="}[t.Not] + t.Value
		if seen[id] {
			return Selector{}, fmt.Errorf("selector term %q given twice", raw)
		}
		seen[id] = true
		sel.Terms = append(sel.Terms, t)
	}
	for _, t := range sel.Terms {
		if t.Not {
			continue
		}
		for _, u := range sel.Terms {
			if !u.Not && u.Key == t.Key && u.Value != t.Value {
				return Selector{}, fmt.Errorf("selector: %s cannot be both %s and %s", t.Key, t.Value, u.Value)
			}
		}
	}
	return sel, nil
}

// Match says whether labels satisfy every term.
func (s Selector) Match(labels map[string]string) bool {
	for _, t := range s.Terms {
		v, ok := labels[t.Key]
		if t.Not == (ok && v == t.Value) {
			return false
		}
	}
	return true
}

// Empty says whether the selector matches everything.
func (s Selector) Empty() bool { return len(s.Terms) == 0 }

// String is the canonical form: terms sorted, "=" before "!=".
func (s Selector) String() string {
	parts := make([]string, 0, len(s.Terms))
	for _, t := range s.Terms {
		op := "="
		if t.Not {
			op = "!="
		}
		parts = append(parts, t.Key+op+t.Value)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
