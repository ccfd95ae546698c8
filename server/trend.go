package server

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/annexa-dev/annexa/server/store"
)

// failingTrend counts, for each control with checks, the assets failing it
// at the end of each of days days ending at at (oldest first): an asset
// fails a control at an instant when its latest result then for one of
// the control's checks is fail. Staleness is not replayed: a trend shows
// what the evidence said, day by day.
//
// It costs one pass over the fleet's current results (in memory) and the
// transitions since the window opened, not a point-in-time query per day:
// an asset whose results did not change in the window fails or passes on
// every day as it does now, and only the assets with transitions are
// replayed, backwards from now.
func (s *Server) failingTrend(ctx context.Context, at time.Time, days int, labels []string) (map[string][]int, error) {
	if days <= 0 {
		return nil, nil
	}
	ends := make([]time.Time, days)
	for i := range ends {
		ends[i] = at.Add(-time.Duration(days-1-i) * 24 * time.Hour)
	}
	// Transitions after the window opened, per asset and check, in time
	// order (the store lists them so).
	type key struct{ asset, check string }
	moved := map[key][]store.Transition{}
	var filter store.StateFilter
	if len(labels) > 0 {
		agents, err := s.agentsWithLabels(ctx, labels)
		if err != nil {
			return nil, err
		}
		if len(agents) == 0 {
			return map[string][]int{}, nil
		}
		for _, a := range agents {
			filter.Assets = append(filter.Assets, "host:"+a)
		}
	}
	var after *store.TransitionKey
	for {
		page, err := s.db.Transitions(ctx, filter, ends[0], time.Time{}, 5000, after)
		if err != nil {
			return nil, fmt.Errorf("trend: %w", err)
		}
		for _, t := range page {
			k := key{t.Asset, t.Check}
			moved[k] = append(moved[k], t)
		}
		if len(page) < 5000 {
			break
		}
		last := page[len(page)-1]
		after = &store.TransitionKey{At: last.At.UnixNano(), LogIndex: last.LogIndex, Asset: last.Asset, Check: last.Check}
	}
	for _, ts := range moved {
		sort.SliceStable(ts, func(i, j int) bool { return ts[i].At.Before(ts[j].At) })
	}
	// statusAt is a check's result on an asset at t: the result a later
	// transition moved away from, else the current one.
	statusAt := func(k key, now string, t time.Time) string {
		for _, tr := range moved[k] {
			if tr.At.After(t) {
				return tr.Previous
			}
		}
		return now
	}
	out := map[string][]int{}
	err := s.withFleet(ctx, func(f *fleetState) error {
		for _, c := range f.controls {
			out[c] = make([]int, days)
		}
		touched := map[int32]bool{}
		for k := range moved {
			if ai, ok := f.assetIdx[k.asset]; ok {
				touched[ai] = true
			}
		}
		failing := make([]bool, len(f.controls))
		for ai := range f.assets {
			a := &f.assets[ai]
			if len(labels) > 0 && !hasLabels(f.agents[a.agent].labels, labels) {
				continue
			}
			if !touched[int32(ai)] {
				// Unchanged in the window: as it is now, every day.
				clear(failing)
				for _, c := range a.cells {
					if c.result == resultFail {
						for _, ci := range f.checks[c.check].controls {
							failing[ci] = true
						}
					}
				}
				for ci, yes := range failing {
					if yes {
						for d := range out[f.controls[ci]] {
							out[f.controls[ci]][d]++
						}
					}
				}
				continue
			}
			for d, end := range ends {
				clear(failing)
				for _, c := range a.cells {
					ch := &f.checks[c.check]
					if statusAt(key{a.name, ch.id}, resultNames[c.result], end) == "fail" {
						for _, ci := range ch.controls {
							failing[ci] = true
						}
					}
				}
				for ci, yes := range failing {
					if yes {
						out[f.controls[ci]][d]++
					}
				}
			}
		}
		return nil
	})
	return out, err
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
