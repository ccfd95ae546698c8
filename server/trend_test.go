package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server"
	"github.com/annexa-dev/annexa/server/servertest"
	"github.com/annexa-dev/annexa/server/store"
)

// The trend replayed from fail transitions equals, for every day and
// control, a count made the plain way: each asset's latest result for each
// check at the day's end, from every transition, rolled up per control.
func TestFailingTrendMatchesPlainCount(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	now := start.Add(12 * 24 * time.Hour)
	s := servertest.New(t, server.Config{Now: func() time.Time { return now }})
	checks := []string{"disk_encryption.system_volume", "disk_encryption.swap", "ssh.root_login", "patch_level.security_updates", "firewall.enabled"}
	rng := rand.New(rand.NewPCG(3, 9))
	var agents []*servertest.Agent
	for i := range 6 {
		agents = append(agents, s.Enrol("", fmt.Sprintf("host-%d", i)))
	}
	// Results spread over twelve days, oldest first per agent (a chain
	// moves forward), some before the trend's window opens.
	for i, a := range agents {
		at := start.Add(time.Duration(i) * time.Hour)
		for at.Before(now) {
			rs := map[string]evidence.Status{}
			for range 1 + rng.IntN(3) {
				rs[checks[rng.IntN(len(checks))]] = []evidence.Status{evidence.Pass, evidence.Fail, evidence.Error, evidence.NotApplicable}[rng.IntN(4)]
			}
			_, err := a.Ship(a.Record(at, rs))
			require.NoError(t, err)
			at = at.Add(time.Duration(4+rng.IntN(30)) * time.Hour)
		}
	}
	ctx := context.Background()
	var all []store.Transition
	var after *store.TransitionKey
	for {
		page, err := s.DB().Transitions(ctx, store.StateFilter{}, time.Time{}, time.Time{}, 1000, after)
		require.NoError(t, err)
		all = append(all, page...)
		if len(page) < 1000 {
			break
		}
		last := page[len(page)-1]
		after = &store.TransitionKey{At: last.At.UnixNano(), LogIndex: last.LogIndex, Asset: last.Asset, Check: last.Check}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].At.Before(all[j].At) })
	plain := func(end time.Time, control string) int {
		latest := map[[2]string]string{}
		for _, tr := range all {
			if !tr.At.After(end) {
				latest[[2]string{tr.Asset, tr.Check}] = tr.Status
			}
		}
		failing := map[string]bool{}
		for k, st := range latest {
			if st != "fail" {
				continue
			}
			for _, c := range s.Mapping().Controls(k[1]) {
				if c == control {
					failing[k[0]] = true
				}
			}
		}
		return len(failing)
	}
	varied := false
	for _, at := range []time.Time{now, now.Add(-3*24*time.Hour - 5*time.Hour)} {
		days := 10
		got, err := s.FailingTrend(ctx, at, days, nil)
		require.NoError(t, err)
		today := at.Truncate(24 * time.Hour)
		for _, control := range []string{"8.24", "8.1", "8.5", "8.20"} {
			series := got[control]
			require.Len(t, series, days, control)
			for d := range days {
				end := today.Add(-time.Duration(days-2-d) * 24 * time.Hour)
				if d == days-1 {
					end = at
				}
				require.Equal(t, plain(end, control), series[d], "control %s, day %d ending %s (trend at %s)", control, d, end, at)
				varied = varied || series[d] != series[0]
			}
		}
		// Served again from the kept rebuild: the same.
		again, err := s.FailingTrend(ctx, at, days, nil)
		require.NoError(t, err)
		require.Equal(t, got, again)
	}
	require.True(t, varied, "the random history should move some control's count over the days")
}
