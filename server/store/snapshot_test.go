package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/server/store"
)

// The state at a past instant answered from snapshots and what changed
// after them is the full scan's answer, whatever the results did: agents
// offline for hours replaying their outboxes after snapshots newer than
// their results, clocks that jump back, an asset two agents report, state
// purged, records in flight while a snapshot is read, checks first seen
// after a snapshot. For each random world, every instant asked (before the
// first snapshot, on one, between them, after the last) and filters by
// check and agent give the same asset, agent, check and status (stale, or
// the result's);
// a filter naming assets gives the full rows, reason and since included.
func TestSnapshotStatesMatchFullScan(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		// PostgreSQL answers the same queries slower, one round trip
		// each: fewer worlds there. Under the race detector (make test)
		// SQLite's transpiled C runs some thirty times slower and this
		// test has no goroutines for it to watch: one smaller world.
		seeds, steps := 4, 300
		switch {
		case raceEnabled && db.Dialect() == store.Postgres:
			seeds, steps = 1, 200
		case db.Dialect() == store.Postgres:
			seeds = 2
		case raceEnabled:
			seeds, steps = 1, 120
		case testing.Short():
			seeds = 2
		}
		for seed := range seeds {
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				if seed > 0 {
					// Each world on an empty database: its own file or schema
					// would cost more than clearing the tables it wrote.
					require.NoError(t, store.ResetForTest(context.Background(), db))
				}
				snapshotWorld(t, db, uint64(seed), steps)
			})
		}
	})
}

func snapshotWorld(t *testing.T, db *store.DB, seed uint64, steps int) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 99))
	checks := []string{"c.fast", "c.mid", "c.slow", "c.new"}
	fresh := map[string]time.Duration{"c.fast": 40 * time.Minute, "c.mid": 3 * time.Hour, "c.slow": 26 * time.Hour, "c.new": time.Hour}
	freshness := func(c string) time.Duration { return fresh[c] }
	statuses := []string{"pass", "fail", "error", "not_applicable", "unknown_status"}

	type pending struct {
		asset, agent string
		rs           []store.Result
	}
	agents := []string{"a0", "a1", "a2", "a3", "a4", "a5"}
	outbox := map[string][]pending{}
	clock := map[string]time.Time{}
	now := t0
	logIdx := int64(0)
	seq := map[string]uint64{}
	var snaps []time.Time
	var collected []time.Time
	deliver := func(agent string) {
		queue := outbox[agent]
		if len(queue) == 0 {
			return
		}
		n := 1 + rng.IntN(len(queue))
		outbox[agent] = queue[n:]
		require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error {
			app, err := tx.NewAppender(ctx)
			if err != nil {
				return err
			}
			b := tx.NewResultBatch(ctx)
			for _, p := range queue[:n] {
				seq[agent]++
				idx, err := app.Append(&store.LogEntry{Kind: store.KindRecord, AgentID: agent, Seq: seq[agent], Digest: fmt.Sprint(logIdx), Envelope: fmt.Appendf(nil, "record %d", logIdx), ReceivedAt: now})
				if err != nil {
					return err
				}
				logIdx = idx + 1
				for i := range p.rs {
					p.rs[i].LogIndex = idx
				}
				if err := b.Add(p.asset, p.rs); err != nil {
					return err
				}
			}
			if err := b.Flush(); err != nil {
				return err
			}
			_, err = app.Finish()
			return err
		}))
	}
	for step := range steps {
		now = now.Add(time.Duration(rng.IntN(20)) * time.Minute)
		agent := agents[rng.IntN(len(agents))]
		c := clock[agent]
		switch {
		case !c.IsZero() && rng.IntN(8) == 0:
			// Two records collected at one instant: the later in the log wins.
		case c.IsZero() || rng.IntN(30) > 0:
			// A clock a little ahead of or behind the server's.
			c = now.Add(time.Duration(rng.IntN(10)-5) * time.Minute)
		default:
			c = c.Add(-time.Duration(1+rng.IntN(120)) * time.Minute) // the clock jumps back
		}
		clock[agent] = c
		asset := "host:" + agent
		if agent <= "a1" && rng.IntN(5) == 0 {
			asset = "aws:123" // two agents report one account
		}
		var rs []store.Result
		for pos, ch := range checks {
			if ch == "c.new" && step < steps/2 {
				continue // a check first seen after snapshots were taken
			}
			if rng.IntN(3) == 0 {
				continue
			}
			rs = append(rs, store.Result{Pos: pos, AgentID: agent, Asset: asset, Check: ch,
				Status: statuses[rng.IntN(len(statuses))*rng.IntN(2)], Reason: fmt.Sprintf("r%d", rng.IntN(3)), CollectedAt: c})
		}
		if len(rs) > 0 {
			outbox[agent] = append(outbox[agent], pending{asset, agent, rs})
			collected = append(collected, c)
		}
		switch r := rng.IntN(20); {
		case r < 12 && agent != "a5":
			deliver(agent) // a5 ships rarely: an outbox replayed late
		case r == 12:
			deliver("a5")
		case r == 13 || r == 14:
			// A snapshot, with an agent's record landing while it is
			// read (after its log size, before its state).
			p, err := db.BeginSnapshot(ctx, now)
			require.NoError(t, err)
			if rng.IntN(2) == 0 {
				deliver(agents[rng.IntN(len(agents))])
			}
			info, err := p.Store(ctx)
			require.NoError(t, err)
			if len(snaps) == 0 || now.After(snaps[len(snaps)-1]) {
				snaps = append(snaps, info.TakenAt)
			}
		case r == 15 && rng.IntN(4) == 0:
			require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error {
				_, err := tx.PurgeState(ctx, agents[rng.IntN(len(agents))])
				return err
			}))
		}
	}
	for _, a := range agents {
		deliver(a)
		deliver(a)
	}
	require.NotEmpty(t, snaps, "the world took snapshots")

	answer := func(f store.StateFilter, full bool) map[string]any {
		out := map[string]any{}
		require.NoError(t, db.States(ctx, f, func(st *store.State) error {
			k := st.Asset + "|" + st.Check
			require.NotContains(t, out, k, "one row per asset and check")
			if full {
				out[k] = *st
			} else {
				// A stale result counts as stale, whatever its status.
				status := st.Status
				if st.CollectedAt.Add(fresh[st.Check]).Before(f.At) {
					status = "stale"
				}
				out[k] = st.AgentID + " " + status
			}
			return nil
		}))
		return out
	}
	instants := []time.Time{t0.Add(-time.Hour), t0, now.Add(time.Hour)}
	for _, s := range snaps {
		instants = append(instants, s, s.Add(-time.Nanosecond), s.Add(2*time.Minute), s.Add(30*time.Minute))
	}
	// The instants a result turns stale at, exactly.
	for range 8 {
		c := collected[rng.IntN(len(collected))]
		instants = append(instants, c.Add(fresh["c.fast"]), c.Add(fresh["c.mid"]))
	}
	for range 8 {
		instants = append(instants, t0.Add(time.Duration(rng.Int64N(int64(now.Sub(t0)+time.Hour)))))
	}
	sort.Slice(instants, func(i, j int) bool { return instants[i].Before(instants[j]) })
	compared := 0
	current := map[string]store.State{}
	require.NoError(t, db.States(ctx, store.StateFilter{}, func(st *store.State) error {
		current[st.Asset+"|"+st.Check] = *st
		return nil
	}))
	numbers := map[string]string{} // numbering and asset number: the asset
	for _, at := range instants {
		filters := []store.StateFilter{
			{At: at},
			{At: at, Checks: []string{"c.mid", "c.new"}},
			{At: at, Agents: []string{"a0", "a5"}},
			{At: at, Checks: []string{"c.fast"}, Agents: []string{"a1"}},
			{At: at, None: true},
		}
		for _, f := range filters {
			want := answer(f, false)
			f.Freshness = freshness
			require.Equal(t, want, answer(f, false), "at %s, filter checks %v agents %v", at, f.Checks, f.Agents)
			// A caller that knows which pairs nothing newer reached.
			f.Current = func(numbering uint64, check string) func(string, int32) (time.Time, string, bool) {
				return func(asset string, n int32) (time.Time, string, bool) {
					// One number, one asset, within a numbering.
					k := fmt.Sprint(numbering, n)
					if a, ok := numbers[k]; ok {
						require.Equal(t, a, asset, "asset number %s", k)
					}
					numbers[k] = asset
					st, ok := current[asset+"|"+check]
					return st.CollectedAt, st.Status, ok
				}
			}
			require.Equal(t, want, answer(f, false), "at %s, filter checks %v agents %v, the current state known", at, f.Checks, f.Agents)
			compared += len(want)
		}
		for _, asset := range []string{"host:a2", "aws:123", "host:a5"} {
			f := store.StateFilter{At: at, Assets: []string{asset}}
			want := map[string]any{}
			for k, v := range answer(store.StateFilter{At: at}, true) {
				if v.(store.State).Asset == asset {
					want[k] = v
				}
			}
			require.Equal(t, want, answer(f, true), "at %s, asset %s", at, asset)
		}
	}
	require.Greater(t, compared, 500, "the worlds' answers were not empty")

	// Questions at once about instants one snapshot answers, its decoded
	// columns dropped first: each check is decoded once, under its lock,
	// and every answer is the one asked alone.
	store.DropSnapshotCacheForTest(db)
	at := snaps[len(snaps)/2].Add(30 * time.Minute)
	want := answer(store.StateFilter{At: at}, false)
	var wg sync.WaitGroup
	got := make([]map[string]any, 4)
	for i := range got {
		wg.Go(func() {
			out := map[string]any{}
			err := db.States(ctx, store.StateFilter{At: at, Freshness: freshness}, func(st *store.State) error {
				status := st.Status
				if st.CollectedAt.Add(fresh[st.Check]).Before(at) {
					status = "stale"
				}
				out[st.Asset+"|"+st.Check] = st.AgentID + " " + status
				return nil
			})
			assert.NoError(t, err)
			got[i] = out
		})
	}
	wg.Wait()
	for _, g := range got {
		require.Equal(t, want, g, "concurrent answers at %s", at)
	}
}
