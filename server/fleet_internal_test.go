package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/configs"
	"github.com/annexa-dev/annexa/evidence/compliance"
	"github.com/annexa-dev/annexa/server/store"
)

// The incremental counts equal a full recomputation, for any stream of
// results, agents moving assets, stale times and sweeps: random streams
// go through both and every count of every control, for the fleet and for
// each label, is compared after each step.
func TestFleetStateMatchesFullRecomputation(t *testing.T) {
	cat, err := configs.Catalog()
	require.NoError(t, err)
	mapping, err := configs.Mapping(cat, "")
	require.NoError(t, err)
	checks := mapping.CheckIDs()
	fresh := 26 * time.Hour
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 7))
		labels := map[string][]string{}
		for i := range 8 {
			labels[fmt.Sprintf("agt-%d", i)] = []string{fmt.Sprintf("env=%s", []string{"prod", "dev"}[i%2]), fmt.Sprintf("site=%d", i%3)}
		}
		f := newFleetState(mapping, fresh, func(_ context.Context, id string) ([]string, error) { return labels[id], nil })
		rows := map[[2]string]store.State{}
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for step := range 300 {
			switch rng.IntN(10) {
			case 0:
				// time passes: some results go stale
				now = now.Add(time.Duration(rng.IntN(40)) * time.Hour)
				f.sweep(now)
			default:
				agent := fmt.Sprintf("agt-%d", rng.IntN(8))
				asset := "host:" + agent
				if rng.IntN(5) == 0 {
					asset = fmt.Sprintf("aws-account:%d", rng.IntN(3)) // reported by whichever agent
				}
				st := store.State{}
				st.Asset, st.AgentID, st.Check = asset, agent, checks[rng.IntN(len(checks))]
				if rng.IntN(20) == 0 {
					st.Check = "plugin.unmapped_check"
				}
				st.Status = []string{"pass", "fail", "error", "not_applicable"}[rng.IntN(4)]
				st.CollectedAt = now.Add(-time.Duration(rng.IntN(60)) * time.Hour)
				st.LogIndex = int64(step)
				require.NoError(t, f.apply(context.Background(), &st))
				rows[[2]string{st.Asset, st.Check}] = st
			}
			// A control's pages, walked, list its assets in the rollup's
			// order, each once.
			if step%50 == 0 {
				roll := compliance.NewRollup[struct{}](false)
				for _, st := range rows {
					stale := !st.CollectedAt.Add(mapping.Freshness(st.Check, fresh)).After(time.Unix(0, f.sweptTo))
					roll.Add(mapping.Controls(st.Check), st.Asset, compliance.Of(st.Status, stale), struct{}{})
				}
				for _, c := range roll.Controls() {
					var walked []string
					afterRank, after := int64(-1), ""
					for {
						page := f.controlPage(c, "", afterRank, after, 2)
						for _, a := range page {
							walked = append(walked, a.Asset)
						}
						if len(page) < 2 {
							break
						}
						afterRank, after = int64(page[len(page)-1].Rank), page[len(page)-1].Asset
					}
					var want []string
					for _, a := range roll.Assets(c) {
						want = append(want, a.Asset)
					}
					require.Equal(t, want, walked, "control %s", c)
				}
			}
			// The full recomputation: every row through the one rollup.
			for _, label := range []string{"", "env=prod", "site=1"} {
				roll := compliance.NewRollup[struct{}](false)
				for _, st := range rows {
					if label != "" && !contains(labels[latestAgent(rows, st.Asset)], label) {
						continue
					}
					stale := !st.CollectedAt.Add(mapping.Freshness(st.Check, fresh)).After(time.Unix(0, f.sweptTo))
					roll.Add(mapping.Controls(st.Check), st.Asset, compliance.Of(st.Status, stale), struct{}{})
				}
				got := f.controlCounts(label)
				for _, c := range f.controls {
					require.Equal(t, roll.Counts(c), got[c], "seed %d step %d label %q control %s", seed, step, label, c)
				}
			}
		}
		require.LessOrEqual(t, f.stale.Len(), len(rows), "one heap entry per result at most")
	}
}

// latestAgent is the agent of an asset's newest row: the one it now
// reports through.
func latestAgent(rows map[[2]string]store.State, asset string) string {
	var best store.State
	for k, st := range rows {
		if k[0] == asset && (best.AgentID == "" || st.LogIndex > best.LogIndex) {
			best = st
		}
	}
	return best.AgentID
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
