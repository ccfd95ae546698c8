package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Point in time at scale.
//
// The state at a past instant is, per asset and check, the newest result
// collected at or before it. Reading that from the results table costs a
// pass over every pair's history; at 100,000 hosts × 30 checks with a year
// of hourly results no index makes that fast. So the server snapshots the
// state table periodically (TakeSnapshot, one compact blob per check) and
// answers a fleet-wide question about instant At from the newest snapshot
// taken at or before it plus what changed after it:
//
//   - status changes collected in (taken_at, At] that arrived after the
//     snapshot (the transitions table, by its at index: at most one
//     snapshot interval of them);
//   - status changes collected before the snapshot that arrived after it
//     (late: an outbox replayed after a week offline, a record in flight
//     while the snapshot was read). Ingest files them in late_transitions
//     too, because the time index above cannot find them: a snapshot
//     marks the instant before which anything arriving is late
//     (meta late_before) under the log's lock, so no commit can miss it;
//   - a pair the snapshot and those changes leave stale at At is looked up
//     in the results index (its newest result at or before At): it may have
//     reported since without changing status, which no transition records
//     (unless the caller knows the pair's newest result now: nothing since,
//     or one collected by At, answers without a lookup);
//   - pairs no snapshot can answer for (results that went back in time,
//     an asset reported by another agent, state purged) are kept in
//     exact_pairs and always looked up.
//
// Within a pair, results arrive in collected_at order except in the cases
// exact_pairs catches, so the newest change at or before At in log order is
// the status at At. A property test holds the snapshot's answers to the
// full scan's (TestSnapshotStatesMatchFullScan).

// metaLateBefore is the meta key under which the newest snapshot's instant
// is kept: a status change collected at or before it and arriving now is
// late.
const metaLateBefore = "late_before"

// SnapshotInfo describes a stored snapshot.
type SnapshotInfo struct {
	TakenAt time.Time
	// LogSize is the log's size when the snapshot began: every change at
	// a log index at or above it may be missing from the snapshot.
	LogSize int64
	Pairs   int64
	// Bytes is the snapshot's stored size, all checks.
	Bytes int64
}

// TakeSnapshot stores the state as of at (normally now). It reads the whole
// state table once, one check at a time; ingest goes on meanwhile.
func (s *DB) TakeSnapshot(ctx context.Context, at time.Time) (SnapshotInfo, error) {
	p, err := s.BeginSnapshot(ctx, at)
	if err != nil {
		return SnapshotInfo{}, err
	}
	return p.Store(ctx)
}

// PendingSnapshot is a snapshot begun: its log size and its instant are
// fixed, the state is not read yet.
type PendingSnapshot struct {
	db   *DB
	info SnapshotInfo
}

// BeginSnapshot fixes a snapshot's start. Under the log's lock it reads the
// log size the snapshot starts from and marks at as the instant before
// which changes arriving from now on are late: a commit after this one sees
// both, one before it is in the state Store reads.
func (s *DB) BeginSnapshot(ctx context.Context, at time.Time) (*PendingSnapshot, error) {
	p := &PendingSnapshot{db: s, info: SnapshotInfo{TakenAt: at.UTC()}}
	t := nanos(at)
	err := s.InTx(ctx, func(tx *Tx) error {
		size, err := tx.LockLog(ctx)
		if err != nil {
			return err
		}
		p.info.LogSize = size
		late, err := tx.lateBefore(ctx)
		if err != nil {
			return err
		}
		if t <= late {
			return nil
		}
		_, err = tx.exec(ctx, `INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, metaLateBefore, strconv.FormatInt(t, 10))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return p, nil
}

// Store reads the state table and stores the snapshot.
func (p *PendingSnapshot) Store(ctx context.Context) (SnapshotInfo, error) {
	s, info, t := p.db, p.info, nanos(p.info.TakenAt)
	rows, err := s.query(ctx, `SELECT check_id, asset, agent_id, status, collected_at FROM state ORDER BY check_id, asset`)
	if err != nil {
		return info, fmt.Errorf("snapshot: %w", err)
	}
	defer rows.Close()
	type blob struct {
		check string
		data  []byte
	}
	var blobs []blob
	var cur string
	var entries []snapEntry
	flush := func() {
		if len(entries) > 0 {
			blobs = append(blobs, blob{cur, encodeSnapshot(entries, t)})
			info.Pairs += int64(len(entries))
			info.Bytes += int64(len(blobs[len(blobs)-1].data))
		}
		entries = entries[:0]
	}
	for rows.Next() {
		var check string
		var e snapEntry
		if err := rows.Scan(&check, &e.asset, &e.agent, &e.status, &e.collected); err != nil {
			return info, fmt.Errorf("snapshot: %w", err)
		}
		if check != cur {
			flush()
			cur = check
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return info, fmt.Errorf("snapshot: %w", err)
	}
	flush()
	rows.Close()
	err = s.InTx(ctx, func(tx *Tx) error {
		r, err := tx.exec(ctx, `INSERT INTO state_snapshots (taken_at, log_size, pairs, bytes) VALUES (?, ?, ?, ?) ON CONFLICT (taken_at) DO NOTHING`,
			t, info.LogSize, info.Pairs, info.Bytes)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return nil // another replica took this one
		}
		rows := make([][]any, 0, len(blobs))
		for _, b := range blobs {
			rows = append(rows, []any{t, b.check, b.data})
		}
		return tx.insertRows(ctx, `INSERT INTO state_snapshot_checks (taken_at, check_id, data)`, 3, rows, "")
	})
	if err != nil {
		return info, fmt.Errorf("snapshot: %w", err)
	}
	return info, nil
}

// LatestSnapshot is the newest snapshot, or ErrNotFound.
func (s *DB) LatestSnapshot(ctx context.Context) (SnapshotInfo, error) {
	var info SnapshotInfo
	var t int64
	err := s.queryRow(ctx, `SELECT taken_at, log_size, pairs, bytes FROM state_snapshots ORDER BY taken_at DESC LIMIT 1`).Scan(&t, &info.LogSize, &info.Pairs, &info.Bytes)
	if errors.Is(err, sql.ErrNoRows) {
		return info, ErrNotFound
	}
	info.TakenAt = fromNanos(t)
	return info, err
}

func (t *Tx) lateBefore(ctx context.Context) (int64, error) {
	var v string
	err := t.queryRow(ctx, `SELECT v FROM meta WHERE k = ?`, metaLateBefore).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// snapEntry is one pair of a snapshot's check.
type snapEntry struct {
	asset, agent, status string
	collected            int64
}

// The snapshot's statuses by their code; any other is stored literally.
var snapStatuses = []string{"pass", "fail", "error", "not_applicable"}

const (
	snapVersion      = 1
	snapAgentSame    = 0 // the previous entry's agent
	snapAgentOfHost  = 1 // the asset is "host:" + the agent
	snapAgentLiteral = 2
	snapStatusOther  = 255
)

// encodeSnapshot is a check's entries, in asset order, zstd-compressed:
// a version byte, the count, then per entry the asset front-coded against
// the previous one, the agent (as a form or literally), the status (a code
// or literally) and collected_at as nanoseconds from the snapshot's instant.
func encodeSnapshot(es []snapEntry, t int64) []byte {
	b := []byte{snapVersion}
	b = binary.AppendUvarint(b, uint64(len(es)))
	prevAsset, prevAgent := "", ""
	for _, e := range es {
		p := 0
		for p < len(prevAsset) && p < len(e.asset) && prevAsset[p] == e.asset[p] {
			p++
		}
		b = binary.AppendUvarint(b, uint64(p))
		b = appendString(b, e.asset[p:])
		switch {
		case e.agent == prevAgent:
			b = append(b, snapAgentSame)
		case "host:"+e.agent == e.asset:
			b = append(b, snapAgentOfHost)
		default:
			b = append(b, snapAgentLiteral)
			b = appendString(b, e.agent)
		}
		code := snapStatusOther
		for i, s := range snapStatuses {
			if s == e.status {
				code = i
			}
		}
		b = append(b, byte(code))
		if code == snapStatusOther {
			b = appendString(b, e.status)
		}
		b = binary.AppendVarint(b, e.collected-t)
		prevAsset, prevAgent = e.asset, e.agent
	}
	return zenc.EncodeAll(b, nil)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errBadSnapshot = errors.New("snapshot blob is corrupt")

// scanSnapshot reverses encodeSnapshot: it calls fn with each entry of a
// check's blob, in order. The
// asset's name comes from intern, given its bytes (valid only during the
// call): a caller that already holds the name returns its string, and a
// fleet's snapshot costs no allocation per pair. An agent of the asset's
// own host is a substring of the asset, one as the previous entry's its
// string: only names stored literally are allocated here.
func scanSnapshot(data []byte, t int64, intern func([]byte) string, fn func(*snapEntry)) error {
	b, err := zdec.DecodeAll(data, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", errBadSnapshot, err)
	}
	if len(b) == 0 || b[0] != snapVersion {
		return fmt.Errorf("%w: unknown version", errBadSnapshot)
	}
	b = b[1:]
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	str := func() (string, bool) {
		n, ok := uv()
		if !ok || n > uint64(len(b)) {
			return "", false
		}
		s := string(b[:n])
		b = b[n:]
		return s, true
	}
	n, ok := uv()
	if !ok || n > uint64(len(b)) {
		return errBadSnapshot
	}
	var prev snapEntry
	var buf []byte
	for range n {
		var e snapEntry
		p, ok := uv()
		if !ok || p > uint64(len(prev.asset)) {
			return errBadSnapshot
		}
		sl, ok := uv()
		if !ok || sl >= uint64(len(b)) {
			return errBadSnapshot
		}
		buf = append(append(buf[:0], prev.asset[:p]...), b[:sl]...)
		b = b[sl:]
		e.asset = intern(buf)
		form := b[0]
		b = b[1:]
		switch form {
		case snapAgentSame:
			e.agent = prev.agent
		case snapAgentOfHost:
			e.agent = strings.TrimPrefix(e.asset, "host:")
		case snapAgentLiteral:
			if e.agent, ok = str(); !ok {
				return errBadSnapshot
			}
		default:
			return errBadSnapshot
		}
		if len(b) == 0 {
			return errBadSnapshot
		}
		code := int(b[0])
		b = b[1:]
		switch {
		case code < len(snapStatuses):
			e.status = snapStatuses[code]
		case code == snapStatusOther:
			if e.status, ok = str(); !ok {
				return errBadSnapshot
			}
		default:
			return errBadSnapshot
		}
		d, m := binary.Varint(b)
		if m <= 0 {
			return errBadSnapshot
		}
		b = b[m:]
		e.collected = t + d
		fn(&e)
		prev = e
	}
	return nil
}

// change is the newest status change of a pair after a snapshot.
type change struct {
	status string
	at     int64
	logIdx int64
}

// statesFromSnapshot answers a point-in-time filter from the newest
// snapshot at or before f.At; ok is false when there is none.
func (s *DB) statesFromSnapshot(ctx context.Context, f StateFilter, fn func(*State) error) (ok bool, err error) {
	if f.None {
		return true, nil
	}
	at := nanos(f.At)
	var t, logSize int64
	err = s.queryRow(ctx, `SELECT taken_at, log_size FROM state_snapshots WHERE taken_at <= ? ORDER BY taken_at DESC LIMIT 1`, at).Scan(&t, &logSize)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// The checks to read: the filter's, else every check the snapshot
	// holds (a check first seen after it arrives as changes, below).
	checks := f.Checks
	if len(checks) == 0 {
		rows, err := s.query(ctx, `SELECT check_id FROM state_snapshot_checks WHERE taken_at = ?`, t)
		if err != nil {
			return true, err
		}
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				rows.Close()
				return true, err
			}
			checks = append(checks, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return true, err
		}
	}
	var maxFresh time.Duration
	for _, c := range checks {
		maxFresh = max(maxFresh, f.Freshness(c))
	}

	// The newest change per pair after the snapshot, at or before At, by
	// check then asset: a snapshot's entry asks its own check's map.
	changes := map[string]map[string]change{}
	collect := func(q string, args ...any) error {
		conds, a := in("check_id", f.Checks, nil, args)
		for _, c := range conds {
			q += " AND " + c
		}
		rows, err := s.query(ctx, q, a...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k stateKey
			var c change
			if err := rows.Scan(&k.asset, &k.check, &c.status, &c.at, &c.logIdx); err != nil {
				return err
			}
			m := changes[k.check]
			if m == nil {
				m = map[string]change{}
				changes[k.check] = m
			}
			if old, ok := m[k.asset]; !ok || c.logIdx > old.logIdx {
				m[k.asset] = c
			}
		}
		return rows.Err()
	}
	// The time range is the one to search by ("+ 0" keeps a planner off
	// the log index, which after an old snapshot selects most rows).
	const cols = `SELECT asset, check_id, status, at, log_idx FROM `
	if err := collect(cols+`transitions WHERE at > ? AND at <= ? AND log_idx + 0 >= ?`, t, at, logSize); err != nil {
		return true, err
	}
	// Late changes of pairs the snapshot holds matter only if they can be
	// the newest at At of a pair fresh at At: collected within the longest
	// freshness before it. A stale pair is looked up below anyway.
	if err := collect(cols+`late_transitions WHERE at > ? AND at <= ? AND log_idx + 0 >= ?`, at-int64(maxFresh), at, logSize); err != nil {
		return true, err
	}
	if err := collect(cols+`late_transitions WHERE prev_status = '' AND log_idx >= ? AND at <= ?`, logSize, at); err != nil {
		return true, err
	}
	conds, args := in("check_id", f.Checks, nil, nil)
	exactPairs, err := s.pairs(ctx, `SELECT asset, check_id FROM exact_pairs`+whereClause(conds), args...)
	if err != nil {
		return true, err
	}
	exact := map[string]map[string]bool{}
	for _, k := range exactPairs {
		if exact[k.check] == nil {
			exact[k.check] = map[string]bool{}
		}
		exact[k.check][k.asset] = true
	}
	agents := map[string]bool{}
	for _, a := range f.Agents {
		agents[a] = true
	}
	var lookups []stateKey
	// A fresh pair's state goes to fn in one reused State (the filter's
	// contract): three million allocations fewer for a fleet's overview.
	var cur State
	sort.Strings(checks)
	snap := s.snaps.get(t, logSize)
	for _, check := range checks {
		cc, assets, err := snap.check(ctx, s, check)
		if err != nil {
			return true, err
		}
		if cc == nil {
			continue
		}
		fresh := int64(f.Freshness(check))
		var current func(string, int32) (time.Time, string, bool)
		if f.Current != nil {
			current = f.Current(snap.numbering, check)
		}
		// This check's changes and exact pairs by asset number, and a bit
		// per asset number saying it has either: most pairs have neither
		// and pass with a bit test.
		changed, exactHere := changes[check], exact[check]
		var changedAt map[int32]change
		var exactAt map[int32]bool
		var marked []uint64
		if len(changed) > 0 || len(exactHere) > 0 {
			marked = make([]uint64, len(assets)/64+1)
			snap.mu.Lock()
			for a, ch := range changed {
				if ai, ok := snap.idx[a]; ok && int(ai) < len(assets) {
					if changedAt == nil {
						changedAt = map[int32]change{}
					}
					changedAt[ai] = ch
					marked[ai/64] |= 1 << (ai % 64)
				}
			}
			for a := range exactHere {
				if ai, ok := snap.idx[a]; ok && int(ai) < len(assets) {
					if exactAt == nil {
						exactAt = map[int32]bool{}
					}
					exactAt[ai] = true
					marked[ai/64] |= 1 << (ai % 64)
				}
			}
			snap.mu.Unlock()
		}
		// Pairs stale by the snapshot and the changes: stale at At unless
		// they reported since without a change, which the results index
		// says for many of them in one query.
		var stale []*State
		for i, ai := range cc.asset {
			c := cc.collected[i]
			var ch change
			var moved bool
			if marked != nil && marked[ai/64]&(1<<(ai%64)) != 0 {
				if exactAt[ai] {
					continue
				}
				if ch, moved = changedAt[ai]; moved {
					// Found here: not a pair first seen after the snapshot.
					delete(changed, assets[ai])
				}
			}
			asset, agent, status := cc.at(i, assets)
			if c > at {
				// The snapshot holds a result newer than At (collected
				// after the snapshot's instant): the one before it is
				// the answer.
				lookups = append(lookups, stateKey{asset, check})
				continue
			}
			if moved {
				status, c = ch.status, max(c, ch.at)
			}
			if len(agents) > 0 && !agents[agent] {
				continue
			}
			if c+fresh < at {
				st := &State{Result: Result{Asset: asset, AgentID: agent, Check: check, Status: status, CollectedAt: fromNanos(c)}}
				if current != nil {
					if now, nowStatus, ok := current(asset, ai); ok {
						switch n := nanos(now); {
						case n == c:
							// Nothing arrived since: stale it stays.
							if err := fn(st); err != nil {
								return true, err
							}
							continue
						case n > c && n <= at:
							// Its newest result so far was collected by
							// At: the newest at At.
							st.Status, st.CollectedAt = nowStatus, now
							if err := fn(st); err != nil {
								return true, err
							}
							continue
						}
					}
				}
				stale = append(stale, st)
				continue
			}
			cur = State{Result: Result{Asset: asset, AgentID: agent, Check: check, Status: status, CollectedAt: fromNanos(c)}}
			if err := fn(&cur); err != nil {
				return true, err
			}
		}
		newest, err := s.newestWithin(ctx, check, stale, at-fresh, at)
		if err != nil {
			return true, err
		}
		for _, st := range stale {
			if n, ok := newest[st.Asset]; ok {
				st = n // fresh after all: its newest result decides
			}
			if err := fn(st); err != nil {
				return true, err
			}
		}
	}
	// Pairs first seen after the snapshot, and those no snapshot answers.
	for check, m := range changes {
		for asset := range m {
			if !exact[check][asset] {
				lookups = append(lookups, stateKey{asset, check})
			}
		}
	}
	for check, m := range exact {
		for asset := range m {
			lookups = append(lookups, stateKey{asset, check})
		}
	}
	sort.Slice(lookups, func(i, j int) bool {
		if lookups[i].asset != lookups[j].asset {
			return lookups[i].asset < lookups[j].asset
		}
		return lookups[i].check < lookups[j].check
	})
	for _, k := range lookups {
		st, err := s.stateAt(ctx, k.asset, k.check, f.At, f.Agents, false)
		if err != nil {
			return true, err
		}
		if st != nil {
			if err := fn(st); err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

// newestWithin is, for each of the states' assets that has a result of
// check collected in [from, to], the newest of those (the later in the log
// of two collected at once): index range scans batched in one query per
// 500 assets, where a query per pair would cost a round trip each. The
// range is a freshness long, so it holds a few results per asset.
func (s *DB) newestWithin(ctx context.Context, check string, states []*State, from, to int64) (map[string]*State, error) {
	out := map[string]*State{}
	const chunk = 500
	for len(states) > 0 {
		n := min(chunk, len(states))
		assets := make([]string, n)
		for i, st := range states[:n] {
			assets[i] = st.Asset
		}
		states = states[n:]
		conds, args := in("asset", assets, []string{"check_id = ?"}, []any{check})
		args = append(args, from, to)
		rows, err := s.query(ctx, `SELECT asset, agent_id, status, collected_at, log_idx FROM results WHERE `+strings.Join(conds, " AND ")+
			` AND collected_at >= ? AND collected_at <= ?`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			st := &State{Result: Result{Check: check}}
			var c int64
			if err := rows.Scan(&st.Asset, &st.AgentID, &st.Status, &c, &st.LogIndex); err != nil {
				rows.Close()
				return nil, err
			}
			st.CollectedAt = fromNanos(c)
			if old, ok := out[st.Asset]; !ok || c > nanos(old.CollectedAt) || (c == nanos(old.CollectedAt) && st.LogIndex > old.LogIndex) {
				out[st.Asset] = st
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// stateAt is the newest result of one pair collected at or before at (the
// later in the log of two collected at once), by one of agents if any are
// given; nil if there is none. With since, Since is when its status began.
func (s *DB) stateAt(ctx context.Context, asset, check string, at time.Time, agents []string, since bool) (*State, error) {
	conds, args := in("agent_id", agents, []string{"asset = ?", "check_id = ?"}, []any{asset, check})
	where := strings.Join(conds, " AND ")
	args = append(append(args, args...), nanos(at))
	var st State
	var c int64
	err := s.queryRow(ctx, `SELECT agent_id, status, reason, collected_at, log_idx, pos FROM results WHERE `+where+
		` AND collected_at = (SELECT MAX(collected_at) FROM results WHERE `+where+` AND collected_at <= ?) ORDER BY log_idx DESC, pos DESC LIMIT 1`, args...).
		Scan(&st.AgentID, &st.Status, &st.Reason, &c, &st.LogIndex, new(int))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st.Asset, st.Check, st.CollectedAt, st.Since = asset, check, fromNanos(c), fromNanos(c)
	if since {
		var sn sql.NullInt64
		if err := s.queryRow(ctx, `SELECT MAX(at) FROM transitions WHERE asset = ? AND check_id = ? AND at <= ?`, asset, check, c).Scan(&sn); err != nil {
			return nil, err
		}
		if sn.Valid {
			st.Since = fromNanos(sn.Int64)
		}
	}
	return &st, nil
}

// statesOfAssets answers a point-in-time filter naming assets: every pair
// those assets ever had (from the transitions, where each pair's first
// result is), each looked up on its own. Its cost is the pairs', not their
// history's.
func (s *DB) statesOfAssets(ctx context.Context, f StateFilter, fn func(*State) error) error {
	if f.None {
		return nil
	}
	conds, args := in("asset", f.Assets, nil, nil)
	conds, args = in("check_id", f.Checks, conds, args)
	pairs, err := s.pairs(ctx, `SELECT DISTINCT asset, check_id FROM transitions`+whereClause(conds)+` ORDER BY asset, check_id`, args...)
	if err != nil {
		return err
	}
	for _, k := range pairs {
		st, err := s.stateAt(ctx, k.asset, k.check, f.At, f.Agents, true)
		if err != nil {
			return err
		}
		if st != nil {
			if err := fn(st); err != nil {
				return err
			}
		}
	}
	return nil
}

// PruneSnapshots deletes the snapshots taken before t: a past instant
// before the oldest one left is answered from the results alone.
func (s *DB) PruneSnapshots(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	err := s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `DELETE FROM state_snapshot_checks WHERE taken_at < ?`, nanos(t)); err != nil {
			return err
		}
		r, err := tx.exec(ctx, `DELETE FROM state_snapshots WHERE taken_at < ?`, nanos(t))
		if err != nil {
			return err
		}
		n, _ = r.RowsAffected()
		// Late changes below every remaining snapshot's log size are read
		// by no query any more.
		_, err = tx.exec(ctx, `DELETE FROM late_transitions WHERE log_idx < COALESCE((SELECT MIN(log_size) FROM state_snapshots), (SELECT size FROM log_head WHERE id = 1))`)
		return err
	})
	return n, err
}

// pairs reads the (asset, check) pairs a query selects.
func (s *DB) pairs(ctx context.Context, q string, args ...any) ([]stateKey, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []stateKey
	for rows.Next() {
		var k stateKey
		if err := rows.Scan(&k.asset, &k.check); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}
