package store_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server/store"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// each runs fn on a fresh SQLite database and, when ANNEXA_TEST_POSTGRES is
// set (make test sets it), on a fresh PostgreSQL database: the same
// behaviour on both.
func each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	eachShared(t, 1, func(t *testing.T, dbs []*store.DB) { fn(t, dbs[0]) })
}

// eachShared is each with n handles on one database: on PostgreSQL, n
// replicas sharing it; on SQLite, n handles on one file.
func eachShared(t *testing.T, n int, fn func(t *testing.T, dbs []*store.DB)) {
	open := func(t *testing.T, url, dir string) []*store.DB {
		var dbs []*store.DB
		for range n {
			db, err := store.Open(context.Background(), url, dir)
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })
			dbs = append(dbs, db)
		}
		return dbs
	}
	t.Run("sqlite", func(t *testing.T) {
		fn(t, open(t, "", t.TempDir()))
	})
	base := os.Getenv("ANNEXA_TEST_POSTGRES")
	if base == "" {
		t.Log("ANNEXA_TEST_POSTGRES not set: PostgreSQL half skipped (make test sets it)")
		return
	}
	t.Run("postgres", func(t *testing.T) {
		admin, err := sql.Open("pgx", base)
		require.NoError(t, err)
		defer admin.Close()
		name := fmt.Sprintf("annexa_store_%d", time.Now().UnixNano())
		_, err = admin.Exec("CREATE DATABASE " + name)
		require.NoError(t, err)
		t.Cleanup(func() {
			if a, err := sql.Open("pgx", base); err == nil {
				_, _ = a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
				a.Close()
			}
		})
		fn(t, open(t, strings.Replace(base, "/postgres?", "/"+name+"?", 1), t.TempDir()))
	})
}

// A token is used under a lock: expired, revoked, used up or of another
// role, it enrols nothing, and a use is counted only when it succeeds.
func TestTokenUse(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mk := func(id, role string, expires time.Time, max int64) {
			require.NoError(t, db.CreateToken(ctx, &store.Token{ID: id, Role: role, Name: id, CreatedAt: t0, ExpiresAt: expires, MaxUses: max}, "hash-"+id))
		}
		mk("two", "enroll", time.Time{}, 2)
		mk("old", "enroll", t0.Add(-time.Hour), 0)
		mk("adm", "admin", time.Time{}, 0)
		use := func(id, role string) error {
			return db.InTx(ctx, func(tx *store.Tx) error {
				_, err := tx.UseToken(ctx, "hash-"+id, role, t0)
				return err
			})
		}
		require.NoError(t, use("two", "enroll"))
		require.NoError(t, use("two", "enroll"))
		require.ErrorIs(t, use("two", "enroll"), store.ErrTokenUsedUp)
		require.ErrorIs(t, use("old", "enroll"), store.ErrTokenExpired)
		require.ErrorIs(t, use("adm", "enroll"), store.ErrTokenRole, "an admin token enrols nothing")
		require.ErrorIs(t, use("none", "enroll"), store.ErrNotFound)
		require.NoError(t, db.RevokeToken(ctx, "adm"))
		tok, err := db.TokenByHash(ctx, "hash-adm")
		require.NoError(t, err)
		assert.True(t, tok.Revoked)
		require.ErrorIs(t, db.RevokeToken(ctx, "nope"), store.ErrNotFound)
		toks, err := db.Tokens(ctx)
		require.NoError(t, err)
		uses := map[string]int64{}
		for _, tk := range toks {
			uses[tk.ID] = tk.Uses
		}
		assert.Equal(t, map[string]int64{"two": 2, "old": 0, "adm": 0}, uses, "failed uses are not counted")
	})
}

// The log is an RFC 6962 tree: the root the store reports is the one
// tlog computes from the leaves, appends across transactions extend it,
// and a transaction that fails appends nothing.
func TestLogAppend(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var leaves [][]byte
		appendN := func(n int, fail bool) (tlog.Hash, error) {
			var root tlog.Hash
			err := db.InTx(ctx, func(tx *store.Tx) error {
				app, err := tx.NewAppender(ctx)
				if err != nil {
					return err
				}
				for i := 0; i < n; i++ {
					env := fmt.Appendf(nil, `{"leaf":%d}`, len(leaves)+i)
					if _, err := app.Append(&store.LogEntry{Kind: store.KindRecord, AgentID: "agt-a", Seq: uint64(len(leaves) + i + 1), Digest: evidence.Digest(env), Envelope: env, ReceivedAt: t0.Add(time.Duration(len(leaves)+i) * time.Minute)}); err != nil {
						return err
					}
				}
				if root, err = app.Finish(); err != nil {
					return err
				}
				if fail {
					return errors.New("boom")
				}
				return tx.SaveCheckpoint(ctx, app.Size(), []byte(fmt.Sprintf("size %d", app.Size())), t0)
			})
			if err == nil {
				for i := 0; i < n; i++ {
					leaves = append(leaves, fmt.Appendf(nil, `{"leaf":%d}`, len(leaves)))
				}
			}
			return root, err
		}
		_, err := appendN(3, false)
		require.NoError(t, err)
		_, err = appendN(4, true)
		require.Error(t, err)
		size, err := db.LogSize(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(3), size, "the failed transaction appended nothing")
		root, err := appendN(5, false)
		require.NoError(t, err)

		// The same tree, computed independently from the leaves.
		var hs []tlog.Hash
		for i, l := range leaves {
			s, err := tlog.StoredHashes(int64(i), l, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
				out := make([]tlog.Hash, len(idx))
				for j, x := range idx {
					out[j] = hs[x]
				}
				return out, nil
			}))
			require.NoError(t, err)
			hs = append(hs, s...)
		}
		want, err := tlog.TreeHash(int64(len(leaves)), tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for j, x := range idx {
				out[j] = hs[x]
			}
			return out, nil
		}))
		require.NoError(t, err)
		assert.Equal(t, want, root)

		// Proofs from the store's hashes check against that root.
		p, err := tlog.ProveRecord(8, 6, db.HashReader(ctx))
		require.NoError(t, err)
		require.NoError(t, tlog.CheckRecord(p, 8, want, 6, tlog.RecordHash(leaves[6])))
		e, err := db.Entry(ctx, 6)
		require.NoError(t, err)
		assert.Equal(t, leaves[6], e.Envelope, "stored verbatim")
		_, err = db.Entry(ctx, 8)
		require.ErrorIs(t, err, store.ErrNotFound)
		n, note, err := db.Checkpoint(ctx, -1)
		require.NoError(t, err)
		assert.Equal(t, int64(8), n)
		assert.Equal(t, "size 8", string(note))
		at, err := db.IndexAt(ctx, t0.Add(150*time.Second))
		require.NoError(t, err)
		assert.Equal(t, int64(3), at, "entries received up to the instant")
	})
}

// State moves forward in log order: a later record replaces the state
// whatever collected_at it claims; a
// change of status is a transition, a repeat is not.
func TestResultState(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		idx := int64(0)
		add := func(at time.Time, status string) {
			idx++
			require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error {
				b := tx.NewResultBatch(ctx)
				if err := b.Add("host:a", []store.Result{{LogIndex: idx, AgentID: "a", Asset: "host:a", Check: "c.one", Status: status, Reason: status, CollectedAt: at}}); err != nil {
					return err
				}
				return b.Flush()
			}))
		}
		add(t0, "pass")
		add(t0.Add(time.Hour), "pass")
		add(t0.Add(2*time.Hour), "fail")
		// A later record says pass with an earlier collected_at: the log's
		// order decides, not the time an agent chose.
		add(t0.Add(30*time.Minute), "pass")
		states := map[string]store.State{}
		require.NoError(t, db.States(ctx, store.StateFilter{}, func(s *store.State) error { states[s.Check] = *s; return nil }))
		require.Len(t, states, 1)
		st := states["c.one"]
		assert.Equal(t, "pass", st.Status)
		assert.Equal(t, int64(4), st.LogIndex)

		var past []store.State
		require.NoError(t, db.States(ctx, store.StateFilter{At: t0.Add(90 * time.Minute)}, func(s *store.State) error { past = append(past, *s); return nil }))
		require.Len(t, past, 1)
		assert.Equal(t, "pass", past[0].Status, "as it was then")

		trs, err := db.Transitions(ctx, store.StateFilter{}, time.Time{}, time.Time{}, 100, nil)
		require.NoError(t, err)
		var seq []string
		for _, tr := range trs {
			seq = append(seq, tr.Previous+">"+tr.Status)
		}
		// History lists transitions by the time they claim.
		assert.Equal(t, []string{">pass", "fail>pass", "pass>fail"}, seq)

		rs, err := db.Results(ctx, store.ResultFilter{After: -1, Limit: 100})
		require.NoError(t, err)
		assert.Len(t, rs, 4, "every result is evidence")
	})
}

// Envelopes are stored compressed and read back byte for byte; the bytes
// a bundle announces are the envelopes' own.
func TestEnvelopesStoredCompressed(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var envs [][]byte
		for i := range 20 {
			// A record-like envelope: JSON with a base64 payload of JSON.
			payload := strings.Repeat(fmt.Sprintf(`{"check":"patch_level.pending_updates","package":"libssl3","version":"3.0.%d"},`, i), 60)
			envs = append(envs, fmt.Appendf(nil, `{"payloadType":"application/vnd.in-toto+json","payload":"%s","signatures":[{"keyid":"k","sig":"c2ln"}]}`,
				base64.StdEncoding.EncodeToString([]byte(payload))))
		}
		envs = append(envs, []byte(`{"x":1}`)) // too small to gain: kept as is
		require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error {
			app, err := tx.NewAppender(ctx)
			if err != nil {
				return err
			}
			for i, env := range envs {
				if _, err := app.Append(&store.LogEntry{Kind: store.KindRecord, AgentID: "agt-a", Seq: uint64(i + 1), Digest: evidence.Digest(env), Envelope: env, ReceivedAt: t0}); err != nil {
					return err
				}
			}
			_, err = app.Finish()
			return err
		}))
		raw := int64(0)
		for i, env := range envs {
			e, err := db.Entry(ctx, int64(i))
			require.NoError(t, err)
			require.Equal(t, env, e.Envelope, "entry %d byte for byte", i)
			raw += int64(len(env))
		}
		stored, rawSeen, err := db.StoredBytes(ctx)
		require.NoError(t, err)
		require.Equal(t, raw, rawSeen)
		require.Less(t, stored*2, raw, "stored compressed")
		n, err := db.EntriesBytes(ctx, 0, int64(len(envs)))
		require.NoError(t, err)
		require.Equal(t, raw, n, "a bundle announces the envelopes' own bytes")
	})
}
