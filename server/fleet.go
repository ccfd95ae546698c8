package server

import (
	"container/heap"
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/annexa-dev/annexa/evidence/catalog"
	"github.com/annexa-dev/annexa/evidence/compliance"
	"github.com/annexa-dev/annexa/server/store"
)

// fleetState is the fleet's compliance now, kept up as results arrive and
// as results go stale, so the overview and GET /v1/controls cost
// O(controls), not O(hosts × checks).
//
// It holds, per asset, each check's result and the instant it goes stale
// (16 bytes a check), the asset's status for each control it has checks
// for, and per control (and per agent label) the count of assets by
// status. Reasons, observations and everything else a page shows come from
// the database's indexed state table. A refresh pulls the state rows moved
// since the highest log index seen (log indexes are handed out under the
// sequencer lock, held to commit, so commits become visible in index order
// and nothing is skipped, on one server or several replicas sharing a
// database); a sweep turns the results whose freshness ran out stale,
// from a heap ordered by that instant.
type fleetState struct {
	mu       sync.Mutex
	mapping  *catalog.Mapping
	fresh    time.Duration // the default freshness
	controls []string      // every control any check maps to
	ctlIdx   map[string]int

	checks   []checkInfo
	checkIdx map[string]uint16
	assets   []assetState
	assetIdx map[string]int32
	agents   []agentInfo
	agentIdx map[string]int32
	// labels loads an agent's labels ("k=v") the first time it is seen.
	labels func(ctx context.Context, agentID string) ([]string, error)

	counts  [][nRanks]int32            // by control, by status rank
	byLabel map[string][][nRanks]int32 // by "k=v", by control, by rank

	stale    staleHeap
	sweptTo  int64 // results with staleAt <= sweptTo count as stale
	maxIdx   int64
	purgeGen string
	// resets counts the times the state started again: asset and check
	// numbers handed out before one mean nothing after it.
	resets int
	// places are, for the store's asset numbering placesFor (as of
	// resets placesAt), each asset's index + 1 (0 not known): a past
	// instant's questions ask about the same million pairs.
	places    []int32
	placesFor uint64
	placesAt  int
}

// nRanks is the number of compliance statuses (compliance.Status.Rank).
const nRanks = 5

type checkInfo struct {
	id       string
	controls []int
	fresh    int64 // nanoseconds
}

type assetState struct {
	name  string
	agent int32
	cells []cell
	ctl   []ctlCell
}

// cell is one check's latest result on an asset.
type cell struct {
	check   uint16
	result  uint8 // resultPass...
	staleAt int64 // unix nanoseconds
	heapPos int32 // its entry in the stale heap, -1 if none
}

// ctlCell is an asset's status for a control, as a rank (-1: none yet).
type ctlCell struct {
	control int32
	rank    int8
}

type agentInfo struct {
	id     string
	labels []string
	assets []int32
}

const (
	resultPass uint8 = iota
	resultFail
	resultError
	resultNA
)

var resultNames = [...]string{"pass", "fail", "error", "not_applicable"}

// resultStatus is the status a result code stands for: a status other
// than these three is not applicable (evidence.Result admits no other).
func resultStatus(code uint8) string {
	switch code {
	case resultPass:
		return "pass"
	case resultFail:
		return "fail"
	case resultError:
		return "error"
	}
	return "not_applicable"
}

func resultCode(s string) uint8 {
	switch s {
	case "pass":
		return resultPass
	case "fail":
		return resultFail
	case "error":
		return resultError
	}
	return resultNA
}

func newFleetState(mapping *catalog.Mapping, fresh time.Duration, labels func(context.Context, string) ([]string, error)) *fleetState {
	f := &fleetState{mapping: mapping, fresh: fresh, labels: labels}
	seen := map[string]bool{}
	for _, id := range mapping.CheckIDs() {
		for _, c := range mapping.Controls(id) {
			if !seen[c] {
				seen[c] = true
				f.controls = append(f.controls, c)
			}
		}
	}
	sort.Slice(f.controls, func(i, j int) bool { return catalog.Less(f.controls[i], f.controls[j]) })
	f.ctlIdx = map[string]int{}
	for i, c := range f.controls {
		f.ctlIdx[c] = i
	}
	f.reset()
	return f
}

func (f *fleetState) reset() {
	f.resets++
	f.checks, f.checkIdx = nil, map[string]uint16{}
	f.assets, f.assetIdx = nil, map[string]int32{}
	f.agents, f.agentIdx = nil, map[string]int32{}
	f.counts = make([][nRanks]int32, len(f.controls))
	f.byLabel = map[string][][nRanks]int32{}
	f.stale = staleHeap{f: f}
	f.maxIdx = -1
}

func (f *fleetState) check(id string) uint16 {
	if i, ok := f.checkIdx[id]; ok {
		return i
	}
	ci := checkInfo{id: id, fresh: int64(f.mapping.Freshness(id, f.fresh))}
	for _, c := range f.mapping.Controls(id) {
		if i, ok := f.ctlIdx[c]; ok {
			ci.controls = append(ci.controls, i)
		}
	}
	f.checks = append(f.checks, ci)
	i := uint16(len(f.checks) - 1)
	f.checkIdx[id] = i
	return i
}

func (f *fleetState) agent(ctx context.Context, id string) (int32, error) {
	if i, ok := f.agentIdx[id]; ok {
		return i, nil
	}
	labels, err := f.labels(ctx, id)
	if err != nil {
		return 0, err
	}
	f.agents = append(f.agents, agentInfo{id: id, labels: labels})
	i := int32(len(f.agents) - 1)
	f.agentIdx[id] = i
	return i, nil
}

// bump moves an asset's count for a control in the fleet's counts and its
// agent's labels' counts.
func (f *fleetState) bump(agent int32, control int, rank int8, delta int32) {
	if rank < 0 {
		return
	}
	f.counts[control][rank] += delta
	for _, l := range f.agents[agent].labels {
		lc := f.byLabel[l]
		if lc == nil {
			lc = make([][nRanks]int32, len(f.controls))
			f.byLabel[l] = lc
		}
		lc[control][rank] += delta
	}
}

// rankOf is an asset's status for a control from its cells.
func (f *fleetState) rankOf(a *assetState, control int) int8 {
	best := int8(-1)
	for _, c := range a.cells {
		for _, ctl := range f.checks[c.check].controls {
			if ctl != control {
				continue
			}
			r := int8(compliance.Of(resultNames[c.result], c.staleAt <= f.sweptTo).Rank())
			if best < 0 || r < best {
				best = r
			}
		}
	}
	return best
}

// recount takes an asset's controls out of the counts, lets change alter
// the asset, and puts them back as they now are.
func (f *fleetState) recount(ai int32, controls []int, change func(a *assetState)) {
	a := &f.assets[ai]
	for _, c := range controls {
		f.bump(a.agent, c, f.ctlRank(a, c), -1)
	}
	change(a)
	for _, c := range controls {
		r := f.rankOf(a, c)
		f.setCtlRank(a, c, r)
		f.bump(a.agent, c, r, +1)
	}
}

func (f *fleetState) ctlRank(a *assetState, control int) int8 {
	for _, c := range a.ctl {
		if int(c.control) == control {
			return c.rank
		}
	}
	return -1
}

func (f *fleetState) setCtlRank(a *assetState, control int, r int8) {
	for i := range a.ctl {
		if int(a.ctl[i].control) == control {
			a.ctl[i].rank = r
			return
		}
	}
	a.ctl = append(a.ctl, ctlCell{control: int32(control), rank: r})
}

func (f *fleetState) allControls(a *assetState) []int {
	out := make([]int, 0, len(a.ctl))
	for _, c := range a.ctl {
		out = append(out, int(c.control))
	}
	return out
}

// apply takes one state row: an asset's latest result for a check.
func (f *fleetState) apply(ctx context.Context, st *store.State) error {
	agent, err := f.agent(ctx, st.AgentID)
	if err != nil {
		return err
	}
	ai, ok := f.assetIdx[st.Asset]
	if !ok {
		f.assets = append(f.assets, assetState{name: st.Asset, agent: agent})
		ai = int32(len(f.assets) - 1)
		f.assetIdx[st.Asset] = ai
		f.agents[agent].assets = append(f.agents[agent].assets, ai)
	}
	ch := f.check(st.Check)
	controls := f.checks[ch].controls
	if f.assets[ai].agent != agent {
		// The asset now reports through another agent (a moved grant):
		// every one of its controls moves to that agent's labels.
		controls = f.allControls(&f.assets[ai])
		old := f.assets[ai].agent
		f.recount(ai, controls, func(a *assetState) { a.agent = agent })
		f.agents[old].assets = removeAsset(f.agents[old].assets, ai)
		f.agents[agent].assets = append(f.agents[agent].assets, ai)
		controls = f.checks[ch].controls
	}
	staleAt := st.CollectedAt.UnixNano() + f.checks[ch].fresh
	f.recount(ai, controls, func(a *assetState) {
		i := 0
		for i < len(a.cells) && a.cells[i].check != ch {
			i++
		}
		if i == len(a.cells) {
			a.cells = append(a.cells, cell{check: ch, heapPos: -1})
		}
		c := &a.cells[i]
		c.result, c.staleAt = resultCode(st.Status), staleAt
		f.stale.set(ai, ch, c, staleAt > f.sweptTo)
	})
	return nil
}

func removeAsset(list []int32, ai int32) []int32 {
	for i, v := range list {
		if v == ai {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

// sweep turns the results whose freshness ran out by now stale.
func (f *fleetState) sweep(now time.Time) {
	t := now.UnixNano()
	if t <= f.sweptTo {
		return
	}
	type key struct {
		asset int32
		check uint16
	}
	var due []key
	for f.stale.Len() > 0 && f.stale.items[0].at <= t {
		e := heap.Pop(&f.stale).(staleEntry)
		due = append(due, key{e.asset, e.check})
	}
	if len(due) == 0 {
		f.sweptTo = t
		return
	}
	// Take the affected assets' controls out as they were, move the
	// clock, put them back as they are now.
	type ac struct {
		asset   int32
		control int
	}
	seen := map[ac]bool{}
	var affected []ac
	for _, k := range due {
		for _, c := range f.checks[k.check].controls {
			if x := (ac{k.asset, c}); !seen[x] {
				seen[x] = true
				affected = append(affected, x)
			}
		}
	}
	for _, x := range affected {
		a := &f.assets[x.asset]
		f.bump(a.agent, x.control, f.ctlRank(a, x.control), -1)
	}
	f.sweptTo = t
	for _, x := range affected {
		a := &f.assets[x.asset]
		r := f.rankOf(a, x.control)
		f.setCtlRank(a, x.control, r)
		f.bump(a.agent, x.control, r, +1)
	}
}

// refresh pulls the state rows moved since the last look and sweeps to now.
func (f *fleetState) refresh(ctx context.Context, db *store.DB, now time.Time) error {
	gen, err := db.Meta(ctx, "purge_gen")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if gen != f.purgeGen {
		// A purge (on any replica) removed rows, which a refresh by log
		// index cannot see: start again.
		f.reset()
		f.purgeGen = gen
	}
	err = db.StatesAfter(ctx, f.maxIdx, func(st *store.State) error {
		if st.LogIndex > f.maxIdx {
			f.maxIdx = st.LogIndex
		}
		return f.apply(ctx, st)
	})
	if err != nil {
		// What was applied stands; the rest is pulled next time, from
		// where this one got.
		return err
	}
	f.sweep(now)
	return nil
}

// controlCounts is the fleet's (or, with one label, that label's agents')
// count of assets by status for each control.
func (f *fleetState) controlCounts(label string) map[string]compliance.Counts {
	src := f.counts
	if label != "" {
		src = f.byLabel[label]
	}
	out := make(map[string]compliance.Counts, len(f.controls))
	for i, c := range f.controls {
		var n compliance.Counts
		if src != nil {
			r := src[i]
			n.Failing, n.Error, n.Stale, n.Passing, n.NotApplicable = int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4])
			n.Assets = n.Failing + n.Error + n.Stale + n.Passing + n.NotApplicable
		}
		out[c] = n
	}
	return out
}

// controlPage lists a page of a control's assets (of agents with label,
// if given) after (afterRank, after) in the order worst first, then by
// asset, at most n: one pass over the assets keeping the n first, not a
// sort of the fleet.
func (f *fleetState) controlPage(control, label string, afterRank int64, after string, n int) []assetRank {
	ci, ok := f.ctlIdx[control]
	if !ok || n <= 0 {
		return nil
	}
	less := func(a, b assetRank) bool { return a.Rank < b.Rank || (a.Rank == b.Rank && a.Asset < b.Asset) }
	// top holds the n first seen so far, as a max-heap by that order.
	var top []assetRank
	down := func(i int) {
		for {
			l, m := 2*i+1, i
			if l < len(top) && less(top[m], top[l]) {
				m = l
			}
			if r := l + 1; r < len(top) && less(top[m], top[r]) {
				m = r
			}
			if m == i {
				return
			}
			top[i], top[m] = top[m], top[i]
			i = m
		}
	}
	for i := range f.assets {
		a := &f.assets[i]
		r := f.ctlRank(a, ci)
		if r < 0 || int64(r) < afterRank || (int64(r) == afterRank && a.name <= after) {
			continue
		}
		if label != "" && !slices.Contains(f.agents[a.agent].labels, label) {
			continue
		}
		x := assetRank{Asset: a.name, Rank: int(r)}
		switch {
		case len(top) < n:
			top = append(top, x)
			for j := len(top) - 1; j > 0; {
				p := (j - 1) / 2
				if !less(top[p], top[j]) {
					break
				}
				top[p], top[j] = top[j], top[p]
				j = p
			}
		case less(x, top[0]):
			top[0] = x
			down(0)
		}
	}
	sort.Slice(top, func(i, j int) bool { return less(top[i], top[j]) })
	for i := range top {
		top[i].Agent = f.agents[f.assets[f.assetIdx[top[i].Asset]].agent].id
	}
	return top
}

type assetRank struct {
	Asset, Agent string
	Rank         int
}

// staleHeap orders results by when they go stale; each cell knows its
// entry, so a newer result moves it instead of leaving a dead one behind.
type staleHeap struct {
	f     *fleetState
	items []staleEntry
}

type staleEntry struct {
	at    int64
	asset int32
	check uint16
}

func (h *staleHeap) Len() int           { return len(h.items) }
func (h *staleHeap) Less(i, j int) bool { return h.items[i].at < h.items[j].at }
func (h *staleHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.cell(i).heapPos, h.cell(j).heapPos = int32(i), int32(j)
}
func (h *staleHeap) Push(x any) {
	h.items = append(h.items, x.(staleEntry))
	h.cell(len(h.items) - 1).heapPos = int32(len(h.items) - 1)
}
func (h *staleHeap) Pop() any {
	e := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	h.cellOf(e).heapPos = -1
	return e
}

func (h *staleHeap) cell(i int) *cell { return h.cellOf(h.items[i]) }

func (h *staleHeap) cellOf(e staleEntry) *cell {
	a := &h.f.assets[e.asset]
	for i := range a.cells {
		if a.cells[i].check == e.check {
			return &a.cells[i]
		}
	}
	panic("stale heap entry without its cell")
}

// set puts a cell's stale instant in the heap (or takes it out when it is
// stale already).
func (h *staleHeap) set(asset int32, check uint16, c *cell, pending bool) {
	switch {
	case c.heapPos >= 0 && pending:
		h.items[c.heapPos].at = c.staleAt
		heap.Fix(h, int(c.heapPos))
	case c.heapPos >= 0:
		heap.Remove(h, int(c.heapPos))
	case pending:
		heap.Push(h, staleEntry{at: c.staleAt, asset: asset, check: check})
	}
}

// withFleet brings the fleet's state up to the database and the clock and
// calls fn with it, locked.
func (s *Server) withFleet(ctx context.Context, fn func(*fleetState) error) error {
	s.fleet.mu.Lock()
	defer s.fleet.mu.Unlock()
	if err := s.fleet.refresh(ctx, s.db, s.now()); err != nil {
		return err
	}
	return fn(s.fleet)
}

// current is the source of store.StateFilter.Current: for a check, a
// function that says an asset's newest result for it as of the last
// refresh (its collection time and status). A fleet's past instant asks
// about a million pairs, so the check's number and freshness are looked up
// once, and each asset's place in the fleet once for the store's numbering
// (kept in f.places), not once a pair.
func (s *Server) current(numbering uint64, check string) func(asset string, n int32) (time.Time, string, bool) {
	f := s.fleet
	fresh := int64(s.mapping.Freshness(check, s.cfg.Freshness))
	f.mu.Lock()
	ci, known := f.checkIdx[check]
	f.mu.Unlock()
	return func(asset string, n int32) (time.Time, string, bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !known || int(ci) >= len(f.checks) || f.checks[ci].id != check {
			// Not seen when asked, or numbered anew since (a purge
			// starts the fleet's state again): look it up again.
			if ci, known = f.checkIdx[check]; !known {
				return time.Time{}, "", false
			}
		}
		if f.placesFor != numbering || f.placesAt != f.resets {
			f.places, f.placesFor, f.placesAt = f.places[:0], numbering, f.resets
		}
		if int(n) >= len(f.places) {
			f.places = append(f.places, make([]int32, int(n)+1-len(f.places))...)
		}
		p := f.places[n]
		if p == 0 {
			// An asset the fleet does not hold yet may arrive: only
			// places found are kept.
			ai, ok := f.assetIdx[asset]
			if !ok {
				return time.Time{}, "", false
			}
			p = ai + 1
			f.places[n] = p
		}
		for _, c := range f.assets[p-1].cells {
			if c.check == ci {
				return time.Unix(0, c.staleAt-fresh).UTC(), resultStatus(c.result), true
			}
		}
		return time.Time{}, "", false
	}
}

// agentLabels reads an agent's labels as "k=v".
func (s *Server) agentLabels(ctx context.Context, id string) ([]string, error) {
	a, err := s.db.Agent(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // purged meanwhile: its rows go with the next reload
	}
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(a.Labels))
	for k, v := range a.Labels {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out, nil
}

// failingAgents is the set of agents with some check failing now (a
// fresh fail result on any of their assets).
func (f *fleetState) failingAgents() map[string]bool {
	out := map[string]bool{}
	for i := range f.assets {
		a := &f.assets[i]
		for _, c := range a.cells {
			if c.result == resultFail && c.staleAt > f.sweptTo {
				out[f.agents[a.agent].id] = true
				break
			}
		}
	}
	return out
}
