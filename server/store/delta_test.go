package store_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/server/store"
)

// signedRecords is n signed records of one agent's collector, hour after
// hour, each mostly the one before (a package list where one version moves
// now and then), as a real patch_level collector sends them.
func signedRecords(t *testing.T, agent, collector string, n int) [][]byte {
	_, key, _ := ed25519.GenerateKey(nil)
	w, err := chain.NewWriter(agent, key, chain.Head{Digest: strings.Repeat("0", 64)})
	require.NoError(t, err)
	var out [][]byte
	for i := range n {
		var pkgs []string
		for p := range 60 {
			pkgs = append(pkgs, fmt.Sprintf(`{"package":"lib%03d","installed":"1.%d.0-1","candidate":"1.%d.1-1"}`, p, p, p+(i/5)))
		}
		rs := []evidence.Result{{Check: collector + ".pending", Status: "fail", Reason: fmt.Sprintf("%d updates pending", 60), Observations: []byte("[" + strings.Join(pkgs, ",") + "]")}}
		s, err := w.Append(chain.Entry{Asset: evidence.HostAsset(agent), Collector: collector, CollectorVersion: "1", CollectedAt: t0.Add(time.Duration(i) * time.Hour), Results: rs})
		require.NoError(t, err)
		out = append(out, s.JSON)
	}
	return out
}

// Records of one agent and collector are stored as deltas from an earlier
// one, and every one reads back byte for byte: by index, by range, by the
// agent's sequence inside a transaction, after the cache is dropped (a
// restart), across a rolled-back transaction that used the same indexes,
// and mixed with other agents' and collectors' records.
func TestRecordsStoredAsDeltas(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		type rec struct {
			agent string
			seq   int
			env   []byte
		}
		var log []rec
		a := signedRecords(t, "agt-a", "patch_level", 40)
		b := signedRecords(t, "agt-b", "patch_level", 10)
		c := signedRecords(t, "agt-a", "inventory", 10)
		appendAll := func(rs []rec, fail bool) error {
			return db.InTx(ctx, func(tx *store.Tx) error {
				app, err := tx.NewAppender(ctx)
				if err != nil {
					return err
				}
				for _, r := range rs {
					if _, err := app.Append(&store.LogEntry{Kind: store.KindRecord, AgentID: r.agent, Seq: uint64(r.seq), Digest: evidence.Digest(r.env), Envelope: r.env, ReceivedAt: t0}); err != nil {
						return err
					}
				}
				if _, err := app.Finish(); err != nil {
					return err
				}
				if fail {
					return errors.New("rolled back")
				}
				return nil
			})
		}
		// A transaction that fails after making references for agt-c:
		// its indexes go to other entries next, which must not be read
		// as agt-c's references.
		cc := signedRecords(t, "agt-c", "patch_level", 3)
		require.Error(t, appendAll([]rec{{"agt-c", 1, cc[0]}, {"agt-c", 2, cc[1]}}, true))
		for i := range 10 {
			// Several records a transaction, interleaved.
			batch := []rec{{"agt-a", 4*i + 1, a[4*i]}, {"agt-b", i + 1, b[i]}, {"agt-a", 4*i + 2, a[4*i+1]}, {"agt-a", 4*i + 3, a[4*i+2]}}
			batch = append(batch, rec{"agt-a", 4*i + 4, a[4*i+3]})
			require.NoError(t, appendAll(batch, false))
			require.NoError(t, appendAll([]rec{{"agt-a", 100 + i, c[i]}}, false))
			log = append(log, batch...)
			log = append(log, rec{"agt-a", 100 + i, c[i]})
			if i == 3 {
				store.DropRefCacheForTest(db)
			}
		}
		require.NoError(t, appendAll([]rec{{"agt-c", 1, cc[0]}, {"agt-c", 2, cc[1]}, {"agt-c", 3, cc[2]}}, false))
		log = append(log, rec{"agt-c", 1, cc[0]}, rec{"agt-c", 2, cc[1]}, rec{"agt-c", 3, cc[2]})

		check := func() {
			deltas := 0
			for i, r := range log {
				e, err := db.Entry(ctx, int64(i))
				require.NoError(t, err)
				require.Equal(t, string(r.env), string(e.Envelope), "entry %d byte for byte", i)
				stored, err := store.StoredEnvelopeForTest(ctx, db, int64(i))
				require.NoError(t, err)
				if store.IsDeltaForTest(stored) {
					deltas++
				}
			}
			require.Greater(t, deltas, len(log)/2, "most records are deltas")
			i := 0
			require.NoError(t, db.Entries(ctx, 0, int64(len(log)), func(e *store.LogEntry) error {
				require.Equal(t, string(log[i].env), string(e.Envelope), "range entry %d", i)
				i++
				return nil
			}))
			require.Equal(t, len(log), i)
			require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error {
				e, err := tx.RecordAt(ctx, "agt-a", 39)
				require.NoError(t, err)
				require.Equal(t, string(a[38]), string(e.Envelope))
				return nil
			}))
		}
		check()
		store.DropRefCacheForTest(db)
		check()

		var raw, alone int64
		for _, r := range log {
			raw += int64(len(r.env))
		}
		stored, _, err := db.StoredBytes(ctx)
		require.NoError(t, err)
		for _, r := range log {
			alone += int64(len(store.PackEnvelopeForTest(r.env)))
		}
		t.Logf("%d records: %d bytes received, %d stored each alone, %d stored as deltas", len(log), raw, alone, stored)
		require.Less(t, stored*3, alone*2, "deltas store less than two thirds of what compressing each alone does")
	})
}

// A damaged reference makes its deltas unreadable with an error that says
// so, never another record's bytes; records after it are stored against a
// new reference.
func TestDeltaDamagedReference(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		recs := signedRecords(t, "agt-a", "patch_level", 6)
		app := func(from, to int) {
			require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error {
				app, err := tx.NewAppender(ctx)
				if err != nil {
					return err
				}
				for i := from; i < to; i++ {
					if _, err := app.Append(&store.LogEntry{Kind: store.KindRecord, AgentID: "agt-a", Seq: uint64(i + 1), Digest: evidence.Digest(recs[i]), Envelope: recs[i], ReceivedAt: t0}); err != nil {
						return err
					}
				}
				_, err = app.Finish()
				return err
			}))
		}
		app(0, 3)
		ref, err := store.StoredEnvelopeForTest(ctx, db, 0)
		require.NoError(t, err)
		require.False(t, store.IsDeltaForTest(ref), "the first record is the reference")
		for i := 1; i < 3; i++ {
			stored, err := store.StoredEnvelopeForTest(ctx, db, int64(i))
			require.NoError(t, err)
			require.True(t, store.IsDeltaForTest(stored), "record %d a delta", i)
		}
		// The reference replaced by another record's bytes: its deltas'
		// checksums no longer match.
		other := signedRecords(t, "agt-x", "patch_level", 1)[0]
		require.NoError(t, store.SetStoredEnvelopeForTest(ctx, db, 0, store.PackEnvelopeForTest(other)))
		store.DropRefCacheForTest(db)
		_, err = db.Entry(ctx, 1)
		require.ErrorContains(t, err, "damaged")
		// The reference made a delta: unreadable, not a loop.
		d, err := store.StoredEnvelopeForTest(ctx, db, 2)
		require.NoError(t, err)
		require.NoError(t, store.SetStoredEnvelopeForTest(ctx, db, 0, d))
		store.DropRefCacheForTest(db)
		_, err = db.Entry(ctx, 1)
		require.ErrorContains(t, err, "itself a delta")
		// Appending goes on against a new reference, read back exactly.
		app(3, 6)
		for i := 3; i < 6; i++ {
			e, err := db.Entry(ctx, int64(i))
			require.NoError(t, err)
			require.Equal(t, string(recs[i]), string(e.Envelope))
		}
	})
}

// Replicas sharing one database append one agent's records in turn (an
// agent's requests land on either) and each reads every record back byte
// for byte: a reference one made serves the other's deltas, and neither's
// cache of references can stand for another entry.
func TestDeltasAcrossReplicas(t *testing.T) {
	eachShared(t, 2, func(t *testing.T, dbs []*store.DB) {
		ctx := context.Background()
		recs := signedRecords(t, "agt-a", "patch_level", 24)
		other := signedRecords(t, "agt-b", "patch_level", 24)
		var log [][]byte
		for i := range recs {
			db := dbs[i%2]
			if i%5 == 4 {
				db = dbs[(i+1)%2] // now and then twice in a row on one
			}
			require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error {
				app, err := tx.NewAppender(ctx)
				if err != nil {
					return err
				}
				for _, e := range []*store.LogEntry{
					{Kind: store.KindRecord, AgentID: "agt-a", Seq: uint64(i + 1), Digest: evidence.Digest(recs[i]), Envelope: recs[i], ReceivedAt: t0},
					{Kind: store.KindRecord, AgentID: "agt-b", Seq: uint64(i + 1), Digest: evidence.Digest(other[i]), Envelope: other[i], ReceivedAt: t0},
				} {
					if _, err := app.Append(e); err != nil {
						return err
					}
				}
				_, err = app.Finish()
				return err
			}))
			log = append(log, recs[i], other[i])
			if i%6 != 5 {
				continue
			}
			// Both read everything so far, each through its own cache.
			for _, rd := range dbs {
				for j, env := range log {
					e, err := rd.Entry(ctx, int64(j))
					require.NoError(t, err)
					require.Equal(t, string(env), string(e.Envelope), "entry %d after round %d", j, i)
				}
			}
		}
		deltas := 0
		for j := range log {
			stored, err := store.StoredEnvelopeForTest(ctx, dbs[0], int64(j))
			require.NoError(t, err)
			if store.IsDeltaForTest(stored) {
				deltas++
			}
		}
		require.Greater(t, deltas, len(log)/2, "replicas made deltas of each other's references")
	})
}
