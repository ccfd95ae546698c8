package server

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/annexa-dev/annexa/server/store"
)

// The overview's trend: for each control with checks, how many assets
// failed it at the end of each day. An asset fails a control at an instant
// when its latest result by then for one of the control's checks is fail;
// staleness is not replayed, a trend shows what the evidence said.
//
// It is rebuilt from the fleet's current results (in memory) and the
// transitions into or out of fail since the window opened, replayed
// backwards to each asset's state when the window opened and then forward
// into per-day difference counts: one pass over the fleet and one over
// those transitions, not a point-in-time query per day. A rebuild is kept
// for trendTTL (days that ended do not change, late records aside) and
// refreshed in the background while the kept one is served; the last
// point, now, is counted live from the fleet's state.

// trendTTL is how long a rebuilt trend is served before a background
// rebuild.
const trendTTL = 5 * time.Minute

type trendCache struct {
	mu      sync.Mutex
	entries map[string]*trendEntry
}

type trendEntry struct {
	counts map[string][]int
	built  time.Time
	// ready is closed when the first build ends (err says how); pending
	// marks a rebuild under way.
	ready   chan struct{}
	err     error
	pending bool
}

// failingTrend is, per control, its failing assets at the end of each of
// days days, the last ending at at (oldest first): days before at's day
// end at UTC midnight. A first build (after a start, or for a new label
// filter) runs in the background: the request that starts it waits for it
// at most wait, later ones not at all, and each answers nil, nil while it
// is not done.
func (s *Server) failingTrend(ctx context.Context, at time.Time, days int, labels []string, wait time.Duration) (map[string][]int, error) {
	if days <= 0 {
		return nil, nil
	}
	at = at.UTC()
	now := s.now().UTC()
	live := !at.Before(now.Add(-time.Minute))
	if live {
		at = now
	}
	today := at.Truncate(24 * time.Hour)
	ends := make([]time.Time, days)
	for i := range days - 1 {
		ends[i] = today.Add(-time.Duration(days-2-i) * 24 * time.Hour)
	}
	ends[days-1] = at
	labels = slices.Sorted(slices.Values(labels))
	key := fmt.Sprintf("%s|%s|%d", strings.Join(labels, ","), today.Format(time.DateOnly), days)
	if !live {
		key += "|" + at.Format(time.RFC3339Nano)
	}

	s.trends.mu.Lock()
	if s.trends.entries == nil {
		s.trends.entries = map[string]*trendEntry{}
	}
	for k, old := range s.trends.entries {
		if !old.built.IsZero() && now.Sub(old.built) > 24*time.Hour {
			delete(s.trends.entries, k)
		}
	}
	e := s.trends.entries[key]
	created := e == nil
	switch {
	case e == nil:
		e = &trendEntry{ready: make(chan struct{}), pending: true}
		s.trends.entries[key] = e
		go s.buildTrend(key, e, ends, labels)
	case !e.pending && !e.built.IsZero() && now.Sub(e.built) > trendTTL:
		// Serve the kept one; rebuild behind it.
		e.pending = true
		go s.buildTrend(key, e, ends, labels)
	}
	ready := e.ready
	s.trends.mu.Unlock()

	if !created {
		// Built by another request: ready or not, this one does not wait
		// on it again (only the request that started a build waits).
		select {
		case <-ready:
		default:
			return nil, nil
		}
	} else {
		select {
		case <-ready:
		case <-time.After(wait):
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.trends.mu.Lock()
	counts, err := e.counts, e.err
	s.trends.mu.Unlock()
	if counts == nil {
		return nil, err
	}
	out := make(map[string][]int, len(counts))
	for c, v := range counts {
		out[c] = slices.Clone(v)
	}
	if live {
		// Now is counted from the fleet as it stands.
		err := s.withFleet(ctx, func(f *fleetState) error {
			for c, n := range f.failingNow(labels) {
				if v := out[c]; len(v) == days {
					v[days-1] = n
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// buildTrend (re)builds an entry off the request that asked for it. A
// failed first build is dropped from the cache, so the next request tries
// again; a failed rebuild keeps serving the last good one.
func (s *Server) buildTrend(key string, e *trendEntry, ends []time.Time, labels []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	counts, err := s.replayFailing(ctx, ends, labels)
	s.trends.mu.Lock()
	defer s.trends.mu.Unlock()
	e.pending = false
	first := e.built.IsZero()
	if err != nil {
		s.log.Warn("trend build failed", "err", err)
		if first {
			e.err = err
			delete(s.trends.entries, key)
			close(e.ready)
		}
		return
	}
	e.counts, e.built = counts, s.now().UTC()
	if first {
		close(e.ready)
	}
}

// trendEvent is a check moving into (fail) or out of fail on an asset.
type trendEvent struct {
	check string
	at    int64
	fail  bool
}

// replayFailing counts each control's failing assets at each of ends.
func (s *Server) replayFailing(ctx context.Context, ends []time.Time, labels []string) (map[string][]int, error) {
	byAsset := map[string][]trendEvent{}
	err := s.db.FailTransitions(ctx, ends[0], func(t *store.Transition) error {
		byAsset[t.Asset] = append(byAsset[t.Asset], trendEvent{check: t.Check, at: t.At.UnixNano(), fail: t.Status == "fail"})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trend: %w", err)
	}
	endNanos := make([]int64, len(ends))
	for i, e := range ends {
		endNanos[i] = e.UnixNano()
	}
	out := map[string][]int{}
	err = s.withFleet(ctx, func(f *fleetState) error {
		diff := make([][]int, len(f.controls))
		for i := range diff {
			diff[i] = make([]int, len(ends)+1)
		}
		count := make([]int, len(f.controls)) // failing checks per control, for one asset
		failing := map[string]bool{}          // the asset's checks with events: failing now in the replay
		for ai := range f.assets {
			a := &f.assets[ai]
			if len(labels) > 0 && !hasLabels(f.agents[a.agent].labels, labels) {
				continue
			}
			evs := byAsset[a.name]
			clear(failing)
			// The asset's state when the window opened: a check with
			// events was the opposite of its first event; the others are
			// as they are now.
			for _, ev := range evs {
				if _, seen := failing[ev.check]; !seen {
					failing[ev.check] = !ev.fail
				}
			}
			var touched []int
			for _, c := range a.cells {
				ch := &f.checks[c.check]
				fails, ok := failing[ch.id]
				if !ok {
					fails = c.result == resultFail
				}
				if !fails {
					continue
				}
				for _, ci := range ch.controls {
					if count[ci] == 0 {
						touched = append(touched, ci)
						diff[ci][0]++
					}
					count[ci]++
				}
			}
			sort.SliceStable(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
			for _, ev := range evs {
				d := sort.Search(len(endNanos), func(i int) bool { return endNanos[i] >= ev.at })
				if d == len(endNanos) {
					break // after the window's last instant
				}
				if failing[ev.check] == ev.fail {
					continue
				}
				failing[ev.check] = ev.fail
				ci, ok := f.checkIdx[ev.check]
				if !ok {
					continue
				}
				for _, c := range f.checks[ci].controls {
					if ev.fail {
						if count[c] == 0 {
							touched = append(touched, c)
							diff[c][d]++
						}
						count[c]++
					} else if count[c] > 0 {
						count[c]--
						if count[c] == 0 {
							diff[c][d]--
						}
					}
				}
			}
			for _, c := range touched {
				count[c] = 0
			}
		}
		for ci, c := range f.controls {
			series := make([]int, len(ends))
			run := 0
			for d := range ends {
				run += diff[ci][d]
				series[d] = run
			}
			out[c] = series
		}
		return nil
	})
	return out, err
}

// failingNow counts, per control, the assets (of agents with every one of
// labels) whose latest result for one of its checks is fail.
func (f *fleetState) failingNow(labels []string) map[string]int {
	counts := make([]int, len(f.controls))
	seen := make([]int32, len(f.controls))
	for i := range seen {
		seen[i] = -1
	}
	for ai := range f.assets {
		a := &f.assets[ai]
		if len(labels) > 0 && !hasLabels(f.agents[a.agent].labels, labels) {
			continue
		}
		for _, c := range a.cells {
			if c.result != resultFail {
				continue
			}
			for _, ci := range f.checks[c.check].controls {
				if seen[ci] != int32(ai) {
					seen[ci] = int32(ai)
					counts[ci]++
				}
			}
		}
	}
	out := make(map[string]int, len(f.controls))
	for i, c := range f.controls {
		out[c] = counts[i]
	}
	return out
}

// hasLabels says whether an agent's "k=v" labels include every one wanted.
func hasLabels(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
