package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/server/apiv1"
)

// Result is apiv1.Result: the API shows it as the store keeps it.
type Result = apiv1.Result

// State is the latest result of one check on one asset, and since when its
// status has held.
type State struct {
	Result
	Since time.Time `json:"since"`
}

// Transition is apiv1.Transition: the API shows it as the store keeps it.
type Transition = apiv1.Transition

// ResultBatch indexes the results of a batch of records and moves their
// assets' state forward, writing each (asset, check) state once however
// many records of the batch touched it. Results must be added in log order.
type ResultBatch struct {
	t           *Tx
	ctx         context.Context
	results     [][]any
	transitions [][]any
	state       map[stateKey]*stateRow
	loaded      map[string]bool
	// exact are the pairs a snapshot cannot answer for from now on (see
	// snapshot.go): a result collected before the one it follows in the
	// log, or from another agent.
	exact map[stateKey]bool
}

type stateKey struct{ asset, check string }

type stateRow struct {
	State
	dirty bool
}

// NewResultBatch starts a batch in t.
func (t *Tx) NewResultBatch(ctx context.Context) *ResultBatch {
	return &ResultBatch{t: t, ctx: ctx, state: map[stateKey]*stateRow{}, loaded: map[string]bool{}, exact: map[stateKey]bool{}}
}

// Add indexes one record's results. State advances in log order: a later
// record replaces the state whatever collected_at it claims (an agent
// chooses collected_at; the log's order it cannot).
func (b *ResultBatch) Add(asset string, rs []Result) error {
	if err := b.load(asset); err != nil {
		return err
	}
	for _, r := range rs {
		b.results = append(b.results, []any{r.LogIndex, r.Pos, r.AgentID, asset, r.Check, r.Status, r.Reason, nanos(r.CollectedAt)})
		k := stateKey{asset, r.Check}
		old, ok := b.state[k]
		switch {
		case !ok:
			b.transition(asset, r, "")
			b.state[k] = &stateRow{State: State{Result: r, Since: r.CollectedAt}, dirty: true}
		case r.LogIndex < old.LogIndex:
			// Never: results come in log order. Kept so a caller's mistake
			// cannot move the state back.
		default:
			if r.CollectedAt.Before(old.CollectedAt) || r.AgentID != old.AgentID {
				b.exact[k] = true
			}
			since := old.Since
			if old.Status != r.Status {
				since = r.CollectedAt
				b.transition(asset, r, old.Status)
			}
			old.Result, old.Since, old.dirty = r, since, true
		}
	}
	return nil
}

func (b *ResultBatch) transition(asset string, r Result, prev string) {
	b.transitions = append(b.transitions, []any{asset, r.Check, r.Status, prev, nanos(r.CollectedAt), r.LogIndex})
}

func (b *ResultBatch) load(asset string) error {
	if b.loaded[asset] {
		return nil
	}
	b.loaded[asset] = true
	rows, err := b.t.query(b.ctx, `SELECT check_id, agent_id, status, reason, collected_at, log_idx, since FROM state WHERE asset = ?`, asset)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		st := &stateRow{}
		var c, since int64
		if err := rows.Scan(&st.Check, &st.AgentID, &st.Status, &st.Reason, &c, &st.LogIndex, &since); err != nil {
			return err
		}
		st.Asset, st.CollectedAt, st.Since = asset, fromNanos(c), fromNanos(since)
		b.state[stateKey{asset, st.Check}] = st
	}
	return rows.Err()
}

// NewKeys loads asset's state and counts the checks of rs it holds no state
// for yet: what indexing rs would add to the state table.
func (b *ResultBatch) NewKeys(asset string, rs []Result) (int, error) {
	if err := b.load(asset); err != nil {
		return 0, err
	}
	n := 0
	seen := map[string]bool{}
	for _, r := range rs {
		if _, ok := b.state[stateKey{asset, r.Check}]; !ok && !seen[r.Check] {
			seen[r.Check] = true
			n++
		}
	}
	return n, nil
}

// StateRows counts the state rows an agent's records made.
func (t *Tx) StateRows(ctx context.Context, agentID string) (int, error) {
	var n int
	err := t.queryRow(ctx, `SELECT COUNT(*) FROM state WHERE agent_id = ?`, agentID).Scan(&n)
	return n, err
}

// PurgeState removes an agent's rows from the current state (its log
// entries and indexed results stay) and bumps the purge generation, so
// every replica's state mirror reloads.
func (t *Tx) PurgeState(ctx context.Context, agentID string) (int64, error) {
	// A snapshot taken after the purge no longer holds these pairs; the
	// results at instants before it still do.
	if _, err := t.exec(ctx, `INSERT INTO exact_pairs (asset, check_id) SELECT asset, check_id FROM state WHERE agent_id = ? ON CONFLICT DO NOTHING`, agentID); err != nil {
		return 0, err
	}
	r, err := t.exec(ctx, `DELETE FROM state WHERE agent_id = ?`, agentID)
	if err != nil {
		return 0, err
	}
	n, _ := r.RowsAffected()
	if _, err := t.exec(ctx, `INSERT INTO meta (k, v) VALUES ('purge_gen', '1') ON CONFLICT (k) DO UPDATE SET v = CAST(CAST(meta.v AS INTEGER) + 1 AS TEXT)`); err != nil {
		return 0, err
	}
	return n, nil
}

// Flush writes what the batch gathered.
func (b *ResultBatch) Flush() error {
	if err := b.t.insertRows(b.ctx, `INSERT INTO results (log_idx, pos, agent_id, asset, check_id, status, reason, collected_at)`, 8, b.results, ""); err != nil {
		return err
	}
	if err := b.t.insertRows(b.ctx, `INSERT INTO transitions (asset, check_id, status, prev_status, at, log_idx)`, 6, b.transitions, ""); err != nil {
		return err
	}
	if len(b.transitions) > 0 {
		// Changes collected at or before the newest snapshot's instant
		// are late: the snapshot's reader finds them here.
		lateBefore, err := b.t.lateBefore(b.ctx)
		if err != nil {
			return err
		}
		var late [][]any
		for _, tr := range b.transitions {
			if tr[4].(int64) <= lateBefore {
				late = append(late, tr)
			}
		}
		if err := b.t.insertRows(b.ctx, `INSERT INTO late_transitions (asset, check_id, status, prev_status, at, log_idx)`, 6, late, ""); err != nil {
			return err
		}
	}
	if len(b.exact) > 0 {
		var ex [][]any
		for k := range b.exact {
			ex = append(ex, []any{k.asset, k.check})
		}
		clear(b.exact)
		if err := b.t.insertRows(b.ctx, `INSERT INTO exact_pairs (asset, check_id)`, 2, ex, ` ON CONFLICT DO NOTHING`); err != nil {
			return err
		}
	}
	var up [][]any
	for k, st := range b.state {
		if st.dirty {
			up = append(up, []any{k.asset, k.check, st.AgentID, st.Status, st.Reason, nanos(st.CollectedAt), st.LogIndex, nanos(st.Since)})
			st.dirty = false
		}
	}
	b.results, b.transitions = nil, nil
	return b.t.insertRows(b.ctx, `INSERT INTO state (asset, check_id, agent_id, status, reason, collected_at, log_idx, since)`, 8, up,
		` ON CONFLICT (asset, check_id) DO UPDATE SET agent_id = excluded.agent_id, status = excluded.status, reason = excluded.reason,
		collected_at = excluded.collected_at, log_idx = excluded.log_idx, since = excluded.since`)
}

// AddResults indexes one record's results (a batch of one).
func (t *Tx) AddResults(ctx context.Context, asset string, rs []Result) error {
	b := t.NewResultBatch(ctx)
	if err := b.Add(asset, rs); err != nil {
		return err
	}
	return b.Flush()
}

// StateFilter narrows state queries. Empty fields match everything.
type StateFilter struct {
	Checks []string
	Assets []string
	Agents []string
	// At, when set, asks for the state as it was at that instant: the latest
	// result per asset and check collected at or before it.
	At time.Time
	// Freshness, with At and no Assets, lets the answer come from a state
	// snapshot (snapshot.go) for a caller that rolls statuses up: each
	// row's asset, agent and check are exact, its CollectedAt is fresh at
	// At (CollectedAt + Freshness(check) not before At) exactly when the
	// newest result's is, and a fresh row's status is exact (a stale one's
	// may be an earlier result's: stale is all a rollup says of it);
	// Reason, Since and LogIndex may be empty, rows come in no particular
	// order, and fn must not keep a *State past its return (one is reused
	// for the millions a fleet's snapshot holds).
	Freshness func(check string) time.Duration
	// Current, with Freshness, gives for a check a function that says a
	// pair's newest result now as the caller knows it (its collection time
	// and status; ok false if unknown). A pair the snapshot holds stale at
	// At needs no lookup when nothing newer arrived (stale it stays) or
	// when the newest arrived since but was collected at or before At (it
	// is the answer). A caller that keeps the current state in memory
	// knows it without a query. n numbers the asset in the numbering
	// named (the same numbering and n, the same asset; dense from 0, and
	// kept across questions a snapshot answers): a caller may keep what it
	// found by it rather than look the name up again.
	Current func(numbering uint64, check string) func(asset string, n int32) (collected time.Time, status string, ok bool)
	// None matches nothing: a filter that resolved to no check or agent
	// (a control without automated checks, a label no agent has).
	None bool
}

func (f StateFilter) where(prefix string, conds []string, args []any) ([]string, []any) {
	if f.None {
		conds = append(conds, "1 = 0")
	}
	conds, args = in(prefix+"check_id", f.Checks, conds, args)
	conds, args = in(prefix+"asset", f.Assets, conds, args)
	conds, args = in(prefix+"agent_id", f.Agents, conds, args)
	return conds, args
}

func in(col string, vals []string, conds []string, args []any) ([]string, []any) {
	if len(vals) == 0 {
		return conds, args
	}
	conds = append(conds, col+" IN (?"+strings.Repeat(",?", len(vals)-1)+")")
	for _, v := range vals {
		args = append(args, v)
	}
	return conds, args
}

func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// States calls fn for every state row matching f.
func (s *DB) States(ctx context.Context, f StateFilter, fn func(*State) error) error {
	if !f.At.IsZero() && len(f.Assets) > 0 {
		return s.statesOfAssets(ctx, f, fn)
	}
	if !f.At.IsZero() && f.Freshness != nil {
		if ok, err := s.statesFromSnapshot(ctx, f, fn); ok || err != nil {
			return err
		}
	}
	var q string
	var args []any
	if f.At.IsZero() {
		conds, a := f.where("", nil, nil)
		q = `SELECT asset, check_id, agent_id, status, reason, collected_at, log_idx, since FROM state` + whereClause(conds)
		args = a
	} else {
		// Point in time: the newest result at or before At per asset and
		// check; since is when that status began, from the transitions.
		conds, a := f.where("", []string{"collected_at <= ?"}, []any{nanos(f.At)})
		q = `SELECT r.asset, r.check_id, r.agent_id, r.status, r.reason, r.collected_at, r.log_idx,
			COALESCE((SELECT MAX(t.at) FROM transitions t WHERE t.asset = r.asset AND t.check_id = r.check_id AND t.at <= r.collected_at), r.collected_at)
			FROM results r JOIN (SELECT asset, check_id, MAX(collected_at) AS c FROM results` + whereClause(conds) + ` GROUP BY asset, check_id) m
			ON r.asset = m.asset AND r.check_id = m.check_id AND r.collected_at = m.c
			ORDER BY r.asset, r.check_id, r.log_idx DESC`
		args = a
	}
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var lastAsset, lastCheck string
	for rows.Next() {
		var st State
		var c, since int64
		if err := rows.Scan(&st.Asset, &st.Check, &st.AgentID, &st.Status, &st.Reason, &c, &st.LogIndex, &since); err != nil {
			return err
		}
		// Two results with the same collection time: the later in the log wins.
		if !f.At.IsZero() && st.Asset == lastAsset && st.Check == lastCheck {
			continue
		}
		lastAsset, lastCheck = st.Asset, st.Check
		st.CollectedAt, st.Since = fromNanos(c), fromNanos(since)
		if err := fn(&st); err != nil {
			return err
		}
	}
	return rows.Err()
}

// StatesAfter calls fn for every state row last moved by a record at a log
// index above after: what changed since a mirror last looked.
func (s *DB) StatesAfter(ctx context.Context, after int64, fn func(*State) error) error {
	rows, err := s.query(ctx, `SELECT asset, check_id, agent_id, status, reason, collected_at, log_idx, since FROM state WHERE log_idx > ?`, after)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var st State
		var c, since int64
		if err := rows.Scan(&st.Asset, &st.Check, &st.AgentID, &st.Status, &st.Reason, &c, &st.LogIndex, &since); err != nil {
			return err
		}
		st.CollectedAt, st.Since = fromNanos(c), fromNanos(since)
		if err := fn(&st); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ResultFilter narrows evidence queries.
type ResultFilter struct {
	StateFilter
	Statuses []string
	From, To time.Time
	After    int64 // cursor: log index; results after it
	Limit    int
}

// Results lists results in log order, a page at a time.
func (s *DB) Results(ctx context.Context, f ResultFilter) ([]Result, error) {
	conds, args := f.where("", []string{"log_idx > ?"}, []any{f.After})
	conds, args = in("status", f.Statuses, conds, args)
	if !f.From.IsZero() {
		conds, args = append(conds, "collected_at >= ?"), append(args, nanos(f.From))
	}
	if !f.To.IsZero() {
		conds, args = append(conds, "collected_at < ?"), append(args, nanos(f.To))
	}
	args = append(args, f.Limit)
	rows, err := s.query(ctx, `SELECT log_idx, pos, agent_id, asset, check_id, status, reason, collected_at FROM results`+whereClause(conds)+` ORDER BY log_idx, pos LIMIT ?`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Result
	for rows.Next() {
		var r Result
		var c int64
		if err := rows.Scan(&r.LogIndex, &r.Pos, &r.AgentID, &r.Asset, &r.Check, &r.Status, &r.Reason, &c); err != nil {
			return nil, err
		}
		r.CollectedAt = fromNanos(c)
		out = append(out, r)
	}
	return out, rows.Err()
}

// TransitionKey is a transition's place in Transitions' order.
type TransitionKey struct {
	At       int64 // nanoseconds
	LogIndex int64
	Asset    string
	Check    string
}

// Transitions lists status changes matching f in time order (time, log
// index, asset, check), at most limit, after the one at key after (nil:
// from the first).
func (s *DB) Transitions(ctx context.Context, f StateFilter, from, to time.Time, limit int, after *TransitionKey) ([]Transition, error) {
	conds, args := f.where("", nil, nil)
	if after != nil {
		conds = append(conds, "(at > ? OR (at = ? AND (log_idx > ? OR (log_idx = ? AND (asset > ? OR (asset = ? AND check_id > ?))))))")
		args = append(args, after.At, after.At, after.LogIndex, after.LogIndex, after.Asset, after.Asset, after.Check)
	}
	if !from.IsZero() {
		conds, args = append(conds, "at >= ?"), append(args, nanos(from))
	}
	if !to.IsZero() {
		conds, args = append(conds, "at < ?"), append(args, nanos(to))
	}
	args = append(args, limit)
	return collectTransitions(s.query(ctx, `SELECT `+transitionCols+` FROM transitions`+whereClause(conds)+` ORDER BY at, log_idx, asset, check_id LIMIT ?`, args...))
}

// collectTransitions reads a query's transition rows (transitionCols).
func collectTransitions(rows *sql.Rows, err error) ([]Transition, error) {
	if err != nil {
		return nil, err
	}
	var out []Transition
	err = eachTransition(rows, func(tr *Transition) error {
		out = append(out, *tr)
		return nil
	})
	return out, err
}

const transitionCols = `asset, check_id, status, prev_status, at, log_idx`

// eachTransition scans transition rows (transitionCols) into fn, and
// closes them.
func eachTransition(rows *sql.Rows, fn func(*Transition) error) error {
	defer rows.Close()
	for rows.Next() {
		var tr Transition
		var at int64
		if err := rows.Scan(&tr.Asset, &tr.Check, &tr.Status, &tr.Previous, &at, &tr.LogIndex); err != nil {
			return err
		}
		tr.At = fromNanos(at)
		if err := fn(&tr); err != nil {
			return err
		}
	}
	return rows.Err()
}

// FailTransitions streams, in time order, the transitions after from that
// move a check into or out of fail: the only ones a count of failing
// assets over time needs.
func (s *DB) FailTransitions(ctx context.Context, from time.Time, fn func(*Transition) error) error {
	rows, err := s.query(ctx, `SELECT `+transitionCols+` FROM transitions
		WHERE at > ? AND (status = 'fail' OR prev_status = 'fail') AND status <> prev_status ORDER BY at, log_idx`, nanos(from))
	if err != nil {
		return err
	}
	return eachTransition(rows, fn)
}

// Meta reads a server setting.
func (s *DB) Meta(ctx context.Context, k string) (string, error) {
	var v string
	err := s.queryRow(ctx, `SELECT v FROM meta WHERE k = ?`, k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return v, err
}

// SetMetaOnce stores a server setting unless one is there, and returns the
// value that holds: replicas starting together agree on the first.
func (s *DB) SetMetaOnce(ctx context.Context, k, v string) (string, error) {
	err := s.InTx(ctx, func(t *Tx) error {
		_, err := t.exec(ctx, `INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING`, k, v)
		return err
	})
	if err != nil {
		return "", err
	}
	return s.Meta(ctx, k)
}
