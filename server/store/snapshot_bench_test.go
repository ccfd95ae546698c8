package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/server/store"
)

// BenchmarkStatesAt: one control's three checks over 100,000 hosts at a
// past instant, answered from the snapshot before it (the store's share
// of a control page "as of"), beside one plain read of the same state rows
// now: the ratio is what the past costs over the present.
func BenchmarkStatesAt(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, "", b.TempDir())
	require.NoError(b, err)
	defer db.Close()
	const hosts = 100000
	checks := []string{"disk_encryption.system_volume", "disk_encryption.data_volumes", "disk_encryption.swap"}
	t0 := time.Now().UTC().Add(-3 * time.Hour)
	idx := int64(0)
	for start := 0; start < hosts; start += 10000 {
		require.NoError(b, db.InTx(ctx, func(tx *store.Tx) error {
			batch := tx.NewResultBatch(ctx)
			for h := start; h < start+10000; h++ {
				id := fmt.Sprintf("agt-%07d", h)
				rs := make([]store.Result, len(checks))
				for c := range rs {
					rs[c] = store.Result{LogIndex: idx, Pos: c, AgentID: id, Asset: "host:" + id, Check: checks[c], Status: []string{"pass", "fail"}[(h+c)%7/6], Reason: "r", CollectedAt: t0}
				}
				idx++
				if err := batch.Add("host:"+id, rs); err != nil {
					return err
				}
			}
			return batch.Flush()
		}))
	}
	_, err = db.TakeSnapshot(ctx, t0.Add(time.Minute))
	require.NoError(b, err)
	fresh := func(string) time.Duration { return 26 * time.Hour }
	f := store.StateFilter{Checks: checks, At: t0.Add(time.Hour), Freshness: fresh}
	start := time.Now()
	n := 0
	require.NoError(b, db.States(ctx, store.StateFilter{Checks: checks}, func(*store.State) error { n++; return nil }))
	now := time.Since(start)
	require.Equal(b, hosts*len(checks), n)
	b.ResetTimer()
	for range b.N {
		n = 0
		require.NoError(b, db.States(ctx, f, func(*store.State) error { n++; return nil }))
	}
	b.StopTimer()
	require.Equal(b, hosts*len(checks), n)
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(now), "x_read_now")
}
