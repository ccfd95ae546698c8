// Package compliance is the one place that decides an asset's status for an
// Annex A control from its check results, and counts a control's assets by
// status. The server's API and dashboard and the auditor's bundle summary
// all call it, so they cannot disagree.
package compliance

import (
	"sort"

	"github.com/annexa-dev/annexa/evidence/catalog"
)

// Status is an asset's status for a control.
type Status string

// The statuses, worst first: an asset is as bad as its worst check.
const (
	Failing       Status = "failing"
	Error         Status = "error"
	Stale         Status = "stale"
	Passing       Status = "passing"
	NotApplicable Status = "not_applicable"
)

var rank = map[Status]int{Failing: 0, Error: 1, Stale: 2, Passing: 3, NotApplicable: 4}

// Rank is s's place in the order worst first (0: failing).
func (s Status) Rank() int { return rank[s] }

// Worse reports whether s is worse than other.
func (s Status) Worse(other Status) bool { return rank[s] < rank[other] }

// Of is one check result's contribution. A stale result says nothing about
// now, whatever it said then; a result status it does not know counts as
// not applicable (evidence.Result.Validate admits none).
func Of(result string, stale bool) Status {
	if stale {
		return Stale
	}
	switch result {
	case "fail":
		return Failing
	case "error":
		return Error
	case "pass":
		return Passing
	}
	return NotApplicable
}

// Counts are a control's assets by status.
type Counts struct {
	Assets        int
	Passing       int
	Failing       int
	Error         int
	Stale         int
	NotApplicable int
}

// Add counts one asset.
func (c *Counts) Add(s Status) {
	c.Assets++
	switch s {
	case Failing:
		c.Failing++
	case Error:
		c.Error++
	case Stale:
		c.Stale++
	case Passing:
		c.Passing++
	default:
		c.NotApplicable++
	}
}

// Asset is an asset's status for one control and, when kept, the check
// results (of whatever type the caller cites them by) it was decided from.
type Asset[D any] struct {
	Asset  string
	Status Status
	Checks []D
}

// Rollup gathers check results into per-control, per-asset statuses.
type Rollup[D any] struct {
	controls map[string]map[string]*Asset[D]
	keep     bool
}

// NewRollup starts a rollup; keepChecks keeps each asset's check results
// (a control's page needs them, a list of controls does not).
func NewRollup[D any](keepChecks bool) *Rollup[D] {
	return &Rollup[D]{controls: map[string]map[string]*Asset[D]{}, keep: keepChecks}
}

// Add takes one check result of asset, with status st, for each control
// the check supports.
func (r *Rollup[D]) Add(controls []string, asset string, st Status, check D) {
	for _, ctl := range controls {
		m := r.controls[ctl]
		if m == nil {
			m = map[string]*Asset[D]{}
			r.controls[ctl] = m
		}
		a := m[asset]
		if a == nil {
			a = &Asset[D]{Asset: asset, Status: NotApplicable}
			m[asset] = a
		}
		if st.Worse(a.Status) {
			a.Status = st
		}
		if r.keep {
			a.Checks = append(a.Checks, check)
		}
	}
}

// Controls lists the controls with at least one asset, in catalog order.
func (r *Rollup[D]) Controls() []string {
	ids := make([]string, 0, len(r.controls))
	for id := range r.controls {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return catalog.Less(ids[i], ids[j]) })
	return ids
}

// Counts counts a control's assets by status.
func (r *Rollup[D]) Counts(control string) Counts {
	var c Counts
	for _, a := range r.controls[control] {
		c.Add(a.Status)
	}
	return c
}

// Assets lists a control's assets, worst first, then by asset id: a
// deterministic order, the one people want to read.
func (r *Rollup[D]) Assets(control string) []*Asset[D] {
	out := make([]*Asset[D], 0, len(r.controls[control]))
	for _, a := range r.controls[control] {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Status != out[j].Status {
			return out[i].Status.Worse(out[j].Status)
		}
		return out[i].Asset < out[j].Asset
	})
	return out
}
