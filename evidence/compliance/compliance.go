// Package compliance is the one place that decides an asset's status for an
// Annex A control from its check results, and counts a control's assets by
// status. The server's API and dashboard and the auditor's bundle summary
// all call it, so they cannot disagree.
package compliance

import (
	"container/heap"
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

// Rank is s's place in the order worst first (0: failing); a status this
// package does not name ranks with not applicable.
func (s Status) Rank() int {
	switch s {
	case Failing:
		return 0
	case Error:
		return 1
	case Stale:
		return 2
	case Passing:
		return 3
	}
	return 4
}

// Worse reports whether s is worse than other.
func (s Status) Worse(other Status) bool { return s.Rank() < other.Rank() }

// byRank are the statuses by rank.
var byRank = [...]Status{Failing, Error, Stale, Passing, NotApplicable}

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

// Rollup gathers check results into per-control, per-asset statuses. It
// numbers assets as they come and keeps, per control, each asset's worst
// rank in a slice by that number: one map lookup per result, not one per
// control and asset, since a fleet's rollup at a past instant adds millions.
type Rollup[D any] struct {
	assetIdx map[string]int32
	assets   []string
	controls map[string]*controlRoll[D]
	keep     bool
	// next is the number after the last asset added: results often come
	// check by check over the same assets in the same order, so the next
	// asset is most often the one numbered next, found without a lookup.
	next int32
	// lastControls and lastRolls are the last control list Add resolved:
	// a check's results share its list.
	lastControls []string
	lastRolls    []*controlRoll[D]
}

type controlRoll[D any] struct {
	rank   []int8 // by asset number: 1 + the worst rank, 0 for none
	n      int
	checks map[int32][]D
}

// NewRollup starts a rollup; keepChecks keeps each asset's check results
// (a control's page needs them, a list of controls does not).
func NewRollup[D any](keepChecks bool) *Rollup[D] {
	return &Rollup[D]{assetIdx: map[string]int32{}, controls: map[string]*controlRoll[D]{}, keep: keepChecks}
}

// Add takes one check result of asset, with status st, for each control
// the check supports. The rollup remembers the last controls slice it was
// given: a caller must not change one after passing it.
func (r *Rollup[D]) Add(controls []string, asset string, st Status, check D) {
	if len(controls) == 0 {
		return
	}
	ai := r.next
	if int(ai) >= len(r.assets) || r.assets[ai] != asset {
		var ok bool
		if ai, ok = r.assetIdx[asset]; !ok {
			ai = int32(len(r.assets))
			r.assets = append(r.assets, asset)
			r.assetIdx[asset] = ai
		}
	}
	r.next = ai + 1
	rk := int8(st.Rank()) + 1
	if len(controls) != len(r.lastControls) || &controls[0] != &r.lastControls[0] {
		r.lastRolls = r.lastRolls[:0]
		for _, ctl := range controls {
			c := r.controls[ctl]
			if c == nil {
				c = &controlRoll[D]{}
				if r.keep {
					c.checks = map[int32][]D{}
				}
				r.controls[ctl] = c
			}
			r.lastRolls = append(r.lastRolls, c)
		}
		r.lastControls = controls
	}
	for _, c := range r.lastRolls {
		if int(ai) >= len(c.rank) {
			c.rank = append(c.rank, make([]int8, len(r.assets)-len(c.rank))...)
		}
		switch old := c.rank[ai]; {
		case old == 0:
			c.rank[ai] = rk
			c.n++
		case rk < old:
			c.rank[ai] = rk
		}
		if r.keep {
			c.checks[ai] = append(c.checks[ai], check)
		}
	}
}

// Controls lists the controls with at least one asset, in catalog order.
func (r *Rollup[D]) Controls() []string {
	ids := make([]string, 0, len(r.controls))
	for id, c := range r.controls {
		if c.n > 0 {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return catalog.Less(ids[i], ids[j]) })
	return ids
}

// Counts counts a control's assets by status.
func (r *Rollup[D]) Counts(control string) Counts {
	var c Counts
	if cr := r.controls[control]; cr != nil {
		for _, rk := range cr.rank {
			if rk > 0 {
				c.Add(byRank[rk-1])
			}
		}
	}
	return c
}

// Assets lists a control's assets, worst first, then by asset id: a
// deterministic order, the one people want to read.
func (r *Rollup[D]) Assets(control string) []*Asset[D] {
	cr := r.controls[control]
	if cr == nil {
		return []*Asset[D]{}
	}
	out := make([]*Asset[D], 0, cr.n)
	for ai, rk := range cr.rank {
		if rk > 0 {
			a := &Asset[D]{Asset: r.assets[ai], Status: byRank[rk-1]}
			if r.keep {
				a.Checks = cr.checks[int32(ai)]
			}
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Status != out[j].Status {
			return out[i].Status.Worse(out[j].Status)
		}
		return out[i].Asset < out[j].Asset
	})
	return out
}

// Page lists at most n of a control's assets that come after (afterRank,
// after) in the order Assets gives: one pass keeping the n first, not a
// sort of every asset (a control's page over a large fleet).
func (r *Rollup[D]) Page(control string, afterRank int, after string, n int) []*Asset[D] {
	cr := r.controls[control]
	if cr == nil || n <= 0 {
		return []*Asset[D]{}
	}
	h := &pageHeap{}
	for ai, rk := range cr.rank {
		if rk == 0 {
			continue
		}
		e := pageEntry{rank: int(rk) - 1, name: r.assets[ai], idx: int32(ai)}
		if e.rank < afterRank || (e.rank == afterRank && e.name <= after) {
			continue
		}
		if h.Len() < n {
			heap.Push(h, e)
		} else if e.before((*h)[0]) {
			(*h)[0] = e
			heap.Fix(h, 0)
		}
	}
	out := make([]*Asset[D], h.Len())
	for i := len(out) - 1; i >= 0; i-- {
		e := heap.Pop(h).(pageEntry)
		a := &Asset[D]{Asset: e.name, Status: byRank[e.rank]}
		if r.keep {
			a.Checks = cr.checks[e.idx]
		}
		out[i] = a
	}
	return out
}

type pageEntry struct {
	rank int
	name string
	idx  int32
}

func (e pageEntry) before(o pageEntry) bool {
	return e.rank < o.rank || (e.rank == o.rank && e.name < o.name)
}

// pageHeap keeps the last of the kept entries on top, to be replaced by
// one that comes before it.
type pageHeap []pageEntry

func (h pageHeap) Len() int           { return len(h) }
func (h pageHeap) Less(i, j int) bool { return h[j].before(h[i]) }
func (h pageHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pageHeap) Push(x any)        { *h = append(*h, x.(pageEntry)) }
func (h *pageHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
