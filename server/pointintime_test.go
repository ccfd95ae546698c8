package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/servertest"
)

// A past instant's answer over HTTP is the same from a snapshot and the
// changes after it as from the results alone, with what makes snapshots
// hard: a status change after the snapshot, a record collected before it
// that arrives after it, a host first seen after it (one collected before
// it, too), a change after the instant asked, a host stale by then.
func TestPointInTimeFromSnapshots(t *testing.T) {
	now := t0
	s := servertest.New(t, server.Config{Now: func() time.Time { return now }, SnapshotInterval: -1})
	ctx := context.Background()
	const sysVol = "disk_encryption.system_volume"
	ship := func(a *servertest.Agent, at time.Time, st evidence.Status) {
		t.Helper()
		_, err := a.Ship(a.Record(at, map[string]evidence.Status{sysVol: st, "disk_encryption.swap": evidence.Pass}))
		require.NoError(t, err)
	}
	var agents []*servertest.Agent
	for i := range 12 {
		a := s.Enrol("", fmt.Sprintf("host-%02d", i))
		agents = append(agents, a)
		ship(a, t0, map[bool]evidence.Status{true: evidence.Fail, false: evidence.Pass}[i%3 == 0])
	}
	stale := s.Enrol("", "stale")
	ship(stale, t0.Add(-27*time.Hour), evidence.Pass)
	// Two more stale at the snapshot, reporting again after it without a
	// change of status: one collected before the instant asked (fresh
	// then: the fleet's current result answers), one after it (stale
	// then: its results say so).
	back := s.Enrol("", "back")
	ship(back, t0.Add(-27*time.Hour), evidence.Pass)
	later := s.Enrol("", "later")
	ship(later, t0.Add(-27*time.Hour), evidence.Pass)

	now = t0.Add(5 * time.Minute)
	info, err := s.DB().TakeSnapshot(ctx, now)
	require.NoError(t, err)
	require.Equal(t, int64(30), info.Pairs)
	now = t0.Add(time.Hour)

	for _, a := range agents[:4] {
		ship(a, t0.Add(20*time.Minute), evidence.Fail) // changed after the snapshot
	}
	ship(agents[11], t0.Add(2*time.Minute), evidence.Fail) // collected before it, arriving after
	ship(s.Enrol("", "new"), t0.Add(10*time.Minute), evidence.Pass)
	ship(s.Enrol("", "new-late"), t0.Add(time.Minute), evidence.Fail)
	ship(agents[5], t0.Add(50*time.Minute), evidence.Fail) // after the instant asked
	ship(back, t0.Add(10*time.Minute), evidence.Pass)
	ship(later, t0.Add(50*time.Minute), evidence.Pass)

	at := url.Values{"at": {t0.Add(30 * time.Minute).Format(time.RFC3339)}}
	api := s.Client(s.Admin)
	answer := func() (apiv1.ControlsResponse, []apiv1.ControlDetail) {
		var all apiv1.ControlsResponse
		require.NoError(t, api.Do(ctx, http.MethodGet, "/v1/controls", at, nil, &all))
		var pages []apiv1.ControlDetail
		q := url.Values{"at": at["at"], "limit": {"4"}}
		for {
			var d apiv1.ControlDetail
			require.NoError(t, api.Do(ctx, http.MethodGet, "/v1/controls/8.24", q, nil, &d))
			pages = append(pages, d)
			if d.Next == "" {
				return all, pages
			}
			q.Set("cursor", d.Next)
		}
	}
	all, pages := answer()
	cs := pages[0].ControlSummary
	require.Equal(t, 17, cs.Assets)
	require.Equal(t, 8, cs.Failing, "hosts 0-3, 6, 9, 11 (late) and new-late")
	require.Equal(t, 7, cs.Passing, "hosts 4, 5 (failing only later), 7, 8, 10, new and back")
	require.Equal(t, 2, cs.Stale, "stale and later")
	seen := 0
	for _, p := range pages {
		seen += len(p.AssetsDetail)
	}
	require.Equal(t, 17, seen)

	// The same questions with no snapshot: the results alone.
	n, err := s.DB().PruneSnapshots(ctx, now)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	all2, pages2 := answer()
	require.Equal(t, all, all2)
	require.Equal(t, pages, pages2)
}
