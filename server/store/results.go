package store

import (
	"context"
	"strings"
	"time"
)

// Result is one check result of one record, as the server indexes it.
type Result struct {
	LogIndex    int64     `json:"log_index"`
	Pos         int       `json:"pos"`
	AgentID     string    `json:"agent_id"`
	Asset       string    `json:"asset"`
	Check       string    `json:"check"`
	Status      string    `json:"status"`
	Reason      string    `json:"reason"`
	CollectedAt time.Time `json:"collected_at"`
}

// State is the latest result of one check on one asset, and since when its
// status has held.
type State struct {
	Result
	Since time.Time `json:"since"`
}

// Transition is a change of an asset's status for a check.
type Transition struct {
	Asset    string    `json:"asset"`
	Check    string    `json:"check"`
	Status   string    `json:"status"`
	Previous string    `json:"previous,omitempty"`
	At       time.Time `json:"at"`
	LogIndex int64     `json:"log_index"`
}

// AddResults indexes a record's results and moves the state of its asset
// forward. A result older than the state it would replace (a late resend)
// is indexed but does not move the state back.
func (t *Tx) AddResults(ctx context.Context, asset string, rs []Result) error {
	if len(rs) == 0 {
		return nil
	}
	cur := map[string]State{}
	rows, err := t.query(ctx, `SELECT check_id, status, collected_at, since FROM state WHERE asset = ?`, asset)
	if err != nil {
		return err
	}
	for rows.Next() {
		var s State
		var c, since int64
		if err := rows.Scan(&s.Check, &s.Status, &c, &since); err != nil {
			rows.Close()
			return err
		}
		s.CollectedAt, s.Since = fromNanos(c), fromNanos(since)
		cur[s.Check] = s
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range rs {
		at := nanos(r.CollectedAt)
		if _, err := t.exec(ctx, `INSERT INTO results (log_idx, pos, agent_id, asset, check_id, status, reason, collected_at) VALUES (?,?,?,?,?,?,?,?)`,
			r.LogIndex, r.Pos, r.AgentID, asset, r.Check, r.Status, r.Reason, at); err != nil {
			return err
		}
		old, ok := cur[r.Check]
		switch {
		case !ok:
			if _, err := t.exec(ctx, `INSERT INTO state (asset, check_id, agent_id, status, reason, collected_at, log_idx, since) VALUES (?,?,?,?,?,?,?,?)`,
				asset, r.Check, r.AgentID, r.Status, r.Reason, at, r.LogIndex, at); err != nil {
				return err
			}
			if err := t.transition(ctx, asset, r, ""); err != nil {
				return err
			}
		case r.CollectedAt.Before(old.CollectedAt):
			continue
		default:
			since := old.Since
			if old.Status != r.Status {
				since = r.CollectedAt
				if err := t.transition(ctx, asset, r, old.Status); err != nil {
					return err
				}
			}
			if _, err := t.exec(ctx, `UPDATE state SET agent_id = ?, status = ?, reason = ?, collected_at = ?, log_idx = ?, since = ? WHERE asset = ? AND check_id = ?`,
				r.AgentID, r.Status, r.Reason, at, r.LogIndex, nanos(since), asset, r.Check); err != nil {
				return err
			}
		}
		cur[r.Check] = State{Result: r, Since: r.CollectedAt}
	}
	return nil
}

func (t *Tx) transition(ctx context.Context, asset string, r Result, prev string) error {
	_, err := t.exec(ctx, `INSERT INTO transitions (asset, check_id, status, prev_status, at, log_idx) VALUES (?,?,?,?,?,?)`,
		asset, r.Check, r.Status, prev, nanos(r.CollectedAt), r.LogIndex)
	return err
}

// StateFilter narrows state queries. Empty fields match everything.
type StateFilter struct {
	Checks []string
	Assets []string
	Agents []string
	// At, when set, asks for the state as it was at that instant: the latest
	// result per asset and check collected at or before it.
	At time.Time
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
	conds, args := f.StateFilter.where("", []string{"log_idx > ?"}, []any{f.After})
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

// Transitions lists status changes matching f in time order, at most limit.
func (s *DB) Transitions(ctx context.Context, f StateFilter, from, to time.Time, limit int) ([]Transition, error) {
	conds, args := f.where("", nil, nil)
	if !from.IsZero() {
		conds, args = append(conds, "at >= ?"), append(args, nanos(from))
	}
	if !to.IsZero() {
		conds, args = append(conds, "at < ?"), append(args, nanos(to))
	}
	args = append(args, limit)
	rows, err := s.query(ctx, `SELECT asset, check_id, status, prev_status, at, log_idx FROM transitions`+whereClause(conds)+` ORDER BY at, log_idx LIMIT ?`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Transition
	for rows.Next() {
		var tr Transition
		var at int64
		if err := rows.Scan(&tr.Asset, &tr.Check, &tr.Status, &tr.Previous, &at, &tr.LogIndex); err != nil {
			return nil, err
		}
		tr.At = fromNanos(at)
		out = append(out, tr)
	}
	return out, rows.Err()
}

// Meta reads a server setting.
func (s *DB) Meta(ctx context.Context, k string) (string, error) {
	var v string
	err := s.queryRow(ctx, `SELECT v FROM meta WHERE k = ?`, k).Scan(&v)
	if err != nil {
		return "", ErrNotFound
	}
	return v, nil
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
