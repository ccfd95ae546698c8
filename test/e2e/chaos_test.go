package e2e

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// Chaos, bounded: agents ship while the server is killed (-9) and
// restarted; after each restart every record any agent holds a receipt for
// is still there. Then the WAL is removed after a kill: the server refuses
// to start on the shorter database, so the loss is noticed, not served.
func TestChaosKillAndRestart(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	tok := s.token("enroll", apiv1.TokenRequest{})
	type shipper struct {
		a       *simAgent
		mu      sync.Mutex
		acked   uint64
		pending []json.RawMessage
	}
	var shippers []*shipper
	for i := 0; i < 3; i++ {
		shippers = append(shippers, &shipper{a: s.enrol(tok, "chaos")})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, sh := range shippers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sh.mu.Lock()
				if len(sh.pending) == 0 {
					for j := 0; j < 5; j++ {
						sh.pending = append(sh.pending, sh.a.record(time.Now().UTC(), map[string]evidence.Status{sysVol: evidence.Pass}))
					}
				}
				batch := sh.pending
				sh.mu.Unlock()
				resp, err := sh.a.ship(batch...)
				sh.mu.Lock()
				if err == nil && resp.NextSeq > 0 {
					// Receipts say what is in the log; the rest is resent.
					sh.acked = max(sh.acked, resp.NextSeq-1)
					sh.pending = sh.pending[len(resp.Receipts):]
				}
				sh.mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	check := func() {
		t.Helper()
		for _, sh := range shippers {
			sh.mu.Lock()
			acked := sh.acked
			sh.mu.Unlock()
			var hd apiv1.HostDetail
			require.NoError(t, s.client(s.Admin).Do(context.Background(), http.MethodGet, "/v1/hosts/"+sh.a.ID, nil, nil, &hd))
			require.GreaterOrEqual(t, hd.LastSeq, acked, "agent %s holds receipts up to seq %d", sh.a.ID, acked)
		}
	}
	for round := 0; round < 4; round++ {
		time.Sleep(time.Duration(150+rand.IntN(300)) * time.Millisecond)
		require.NoError(t, s.cmd.Process.Kill())
		_ = s.cmd.Wait()
		s.start()
		check()
	}
	close(stop)
	wg.Wait()
	total := uint64(0)
	for _, sh := range shippers {
		total += sh.acked
	}
	require.Positive(t, total, "the agents shipped through the chaos")
	t.Logf("%d records acknowledged across 4 kill -9 restarts, none lost", total)
	verifyLog(t, s)

	// The WAL removed after a kill: the loss is refused, not served. A
	// graceful restart first folds the WAL into the database, so the one
	// record shipped next lives in the WAL alone.
	s.stop()
	s.start()
	sh := shippers[0]
	batch := append(sh.pending, sh.a.record(time.Now().UTC(), map[string]evidence.Status{sysVol: evidence.Fail})) // what it had signed, then one more
	_, err := sh.a.ship(batch...)
	require.NoError(t, err)
	require.NoError(t, s.cmd.Process.Kill())
	_ = s.cmd.Wait()
	s.stopped = true
	require.NoError(t, os.Remove(filepath.Join(s.Data, "annexa.db-wal")))
	_ = os.Remove(filepath.Join(s.Data, "annexa.db-shm"))
	out, err := execOut(bin("annexa-server"), s.args...)
	require.Error(t, err, out)
	require.Contains(t, out, "the database is behind the checkpoint this server last signed")
}
