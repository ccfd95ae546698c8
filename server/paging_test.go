package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/servertest"
)

// walk follows a list's cursors to the end, calling each for every page,
// and returns how many pages it took.
func walk[P any](t *testing.T, s *servertest.Server, path string, q url.Values, next func(*P) string, each func(*P)) int {
	t.Helper()
	c := s.Client(s.Admin)
	pages := 0
	for {
		var p P
		require.NoError(t, c.Do(context.Background(), http.MethodGet, path, q, nil, &p))
		each(&p)
		pages++
		require.Less(t, pages, 10000, "paging does not end")
		n := next(&p)
		if n == "" {
			return pages
		}
		q.Set("cursor", n)
	}
}

// Every list pages with opaque cursors, and a walk sees each item exactly
// once while ingest keeps running: hosts, a control's assets, evidence and
// history. A cursor of one list is refused by another.
func TestEveryListPagesWhileIngestRuns(t *testing.T) {
	s := servertest.New(t, server.Config{})
	var agents []*servertest.Agent
	for i := range 40 {
		a := s.Enrol("", fmt.Sprintf("h%02d", i))
		st := evidence.Pass
		if i%3 == 0 {
			st = evidence.Fail
		}
		_, err := a.Ship(a.Record(t0, map[string]evidence.Status{"disk_encryption.system_volume": st, "firewall.enabled": evidence.Pass}))
		require.NoError(t, err)
		agents = append(agents, a)
	}

	// Ingest keeps running: statuses flip, new transitions and results are
	// indexed while the walks below page.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 1; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			a := agents[n%len(agents)]
			st := evidence.Status([]string{"pass", "fail"}[n%2])
			if _, err := a.Ship(a.Record(t0.Add(time.Duration(n)*time.Second), map[string]evidence.Status{"disk_encryption.system_volume": st, "firewall.enabled": evidence.Pass})); err != nil {
				t.Error(err)
				return
			}
		}
	}()

	hosts := map[string]int{}
	walk(t, s, "/v1/hosts", url.Values{"limit": {"7"}}, func(p *apiv1.Page[apiv1.Host]) string { return p.Next },
		func(p *apiv1.Page[apiv1.Host]) {
			for _, h := range p.Items {
				hosts[h.AgentID]++
			}
		})
	require.Len(t, hosts, 40)

	assets := map[string]int{}
	var total int
	walk(t, s, "/v1/controls/8.24", url.Values{"limit": {"6"}}, func(p *apiv1.ControlDetail) string { return p.Next },
		func(p *apiv1.ControlDetail) {
			total = p.Assets
			require.LessOrEqual(t, len(p.AssetsDetail), 6, "a page holds at most limit assets")
			for _, a := range p.AssetsDetail {
				assets[a.Asset]++
			}
		})
	require.Equal(t, 40, total)
	// Statuses flip while paging (worst first): an asset may move across
	// the cursor, but none is listed twice within a status.
	require.LessOrEqual(t, len(assets), 40)

	results := map[string]int{}
	walk(t, s, "/v1/evidence", url.Values{"limit": {"9"}}, func(p *apiv1.Page[apiv1.Result]) string { return p.Next },
		func(p *apiv1.Page[apiv1.Result]) {
			for _, r := range p.Items {
				results[fmt.Sprintf("%d/%d", r.LogIndex, r.Pos)]++
			}
		})
	history := map[string]int{}
	walk(t, s, "/v1/history", url.Values{"limit": {"5"}}, func(p *apiv1.Page[apiv1.Transition]) string { return p.Next },
		func(p *apiv1.Page[apiv1.Transition]) {
			for _, tr := range p.Items {
				history[fmt.Sprintf("%s %s %d %s", tr.Asset, tr.Check, tr.LogIndex, tr.Status)]++
			}
		})
	close(stop)
	wg.Wait()

	for name, seen := range map[string]map[string]int{"hosts": hosts, "evidence": results, "history": history} {
		require.NotEmpty(t, seen, name)
		for k, n := range seen {
			require.Equal(t, 1, n, "%s: %s seen %d times", name, k, n)
		}
	}
	require.GreaterOrEqual(t, len(results), 80, "the first 40 records' results at least")

	// Cursors are the list's own: another list's is refused, not read.
	c := s.Client(s.Admin)
	var hp apiv1.Page[apiv1.Host]
	require.NoError(t, c.Do(context.Background(), http.MethodGet, "/v1/hosts", url.Values{"limit": {"2"}}, nil, &hp))
	require.NotEmpty(t, hp.Next)
	for _, path := range []string{"/v1/evidence", "/v1/history", "/v1/controls/8.24"} {
		err := c.Do(context.Background(), http.MethodGet, path, url.Values{"cursor": {hp.Next}}, nil, nil)
		require.ErrorContains(t, err, "is not one this list gave", path)
	}
	err := c.Do(context.Background(), http.MethodGet, "/v1/hosts", url.Values{"cursor": {"1000"}}, nil, nil)
	require.ErrorContains(t, err, "is not one this list gave")
}
