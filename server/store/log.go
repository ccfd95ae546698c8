package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Entry kinds of the transparency log.
const (
	KindRecord   = "record"
	KindKeyEvent = "key_event"
	// KindSoAChange is a Statement of Applicability change, signed by the
	// enrollment authority.
	KindSoAChange = "soa_change"
)

// LogEntry is one leaf of the transparency log. Envelope is the leaf's data:
// the DSSE envelope exactly as it was received (records) or signed (key
// events).
type LogEntry struct {
	Index      int64     `json:"index"`
	Kind       string    `json:"kind"`
	AgentID    string    `json:"agent_id"`
	Seq        uint64    `json:"seq,omitempty"`
	Digest     string    `json:"digest"`
	Envelope   []byte    `json:"-"`
	ReceivedAt time.Time `json:"received_at"`
}

// LockLog takes the log's sequencer lock and returns its size. Everything
// else scales out; this is the one serialised step.
func (t *Tx) LockLog(ctx context.Context) (int64, error) {
	var size int64
	err := t.queryRow(ctx, `SELECT size FROM log_head WHERE id = 1`+t.dialect.forUpdate()).Scan(&size)
	return size, err
}

// txHashes reads stored hashes inside a transaction, remembering those
// written by it, so a batch of appends reads each hash from the database at
// most once.
type txHashes struct {
	ctx     context.Context
	t       *Tx
	pending map[int64]tlog.Hash
}

func (r *txHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var missing []int64
	for i, idx := range indexes {
		if h, ok := r.pending[idx]; ok {
			out[i] = h
		} else {
			missing = append(missing, idx)
		}
	}
	if len(missing) > 0 {
		got, err := readHashes(r.ctx, r.t.query, missing)
		if err != nil {
			return nil, err
		}
		for i, idx := range indexes {
			if h, ok := r.pending[idx]; ok {
				out[i] = h
			} else if h, ok := got[idx]; ok {
				out[i] = h
				r.pending[idx] = h
			} else {
				return nil, fmt.Errorf("log hash %d missing", idx)
			}
		}
	}
	return out, nil
}

func readHashes(ctx context.Context, query func(context.Context, string, ...any) (*sql.Rows, error), idx []int64) (map[int64]tlog.Hash, error) {
	got := make(map[int64]tlog.Hash, len(idx))
	for len(idx) > 0 {
		n := min(len(idx), 500)
		chunk := idx[:n]
		idx = idx[n:]
		args := make([]any, len(chunk))
		for i, v := range chunk {
			args[i] = v
		}
		rows, err := query(ctx, `SELECT idx, hash FROM log_hashes WHERE idx IN (?`+strings.Repeat(",?", len(chunk)-1)+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var i int64
			var b []byte
			if err := rows.Scan(&i, &b); err != nil {
				rows.Close()
				return nil, err
			}
			var h tlog.Hash
			copy(h[:], b)
			got[i] = h
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return got, nil
}

// Appender appends leaves to the log within one transaction that holds the
// sequencer lock.
type Appender struct {
	t      *Tx
	ctx    context.Context
	size   int64
	hashes *txHashes
	// Rows waiting for Finish: written in a few multi-row statements.
	hashRows  [][]any
	entryRows [][]any
	// start is the log's size when the lock was taken: entries below it
	// are committed.
	start int64
	// keyframes are the delta references this appender made, by agent
	// and collector: written at Finish, cached once committed. refs are
	// the references it found in the database: an agent's batch of one
	// collector's records reads its reference once.
	keyframes map[refKey]keyframe
	refs      map[refKey]keyframe
}

// refKey names whose records deltas are made between: an agent's, of one
// collector.
type refKey struct{ agent, key string }

type keyframe struct {
	idx   int64
	plain []byte
	index *deltaIndex // built the first time a record is made against it
}

// NewAppender takes the sequencer lock and starts appending at the log's end.
func (t *Tx) NewAppender(ctx context.Context) (*Appender, error) {
	size, err := t.LockLog(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock log: %w", err)
	}
	return &Appender{t: t, ctx: ctx, size: size, start: size, hashes: &txHashes{ctx: ctx, t: t, pending: map[int64]tlog.Hash{}}, keyframes: map[refKey]keyframe{}, refs: map[refKey]keyframe{}}, nil
}

// Size is the log's size including what this appender added.
func (a *Appender) Size() int64 { return a.size }

// Append adds e as the next leaf and returns its index.
func (a *Appender) Append(e *LogEntry) (int64, error) {
	n := a.size
	hs, err := tlog.StoredHashes(n, e.Envelope, a.hashes)
	if err != nil {
		return 0, fmt.Errorf("log append: %w", err)
	}
	base := tlog.StoredHashCount(n)
	for i, h := range hs {
		idx := base + int64(i)
		a.hashes.pending[idx] = h
		a.hashRows = append(a.hashRows, []any{idx, h[:]})
	}
	stored, err := a.pack(e)
	if err != nil {
		return 0, fmt.Errorf("log append: %w", err)
	}
	a.entryRows = append(a.entryRows, []any{n, e.Kind, e.AgentID, int64(e.Seq), e.Digest, stored, nanos(e.ReceivedAt), int64(len(e.Envelope))})
	e.Index = n
	a.size++
	return n, nil
}

// pack is e's stored form at the next index: a record is a delta from
// its agent's last reference for the same collector when that holds most
// of it, else stored on its own and the reference for the next ones.
func (a *Appender) pack(e *LogEntry) ([]byte, error) {
	plain := plainForm(e.Envelope)
	key := deltaKey(e.Kind, plain)
	if key == "" {
		return packPlain(plain, e.Envelope), nil
	}
	k := refKey{e.AgentID, key}
	kf, ok := a.keyframes[k]
	if !ok {
		kf, ok = a.refs[k]
	}
	if !ok {
		var idx int64
		err := a.t.queryRow(a.ctx, `SELECT idx FROM envelope_refs WHERE agent_id = ? AND ref_key = ?`, k.agent, k.key).Scan(&idx)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, err
		default:
			refPlain, err := a.t.db.refPlain(a.ctx, a.t.queryRow, idx, idx < a.start)
			switch {
			case errors.Is(err, errDamaged):
				// A reference that cannot be read is replaced, not used.
			case err != nil:
				return nil, err
			default:
				kf, ok = keyframe{idx: idx, plain: refPlain}, true
				a.refs[k] = kf
			}
		}
	}
	if ok {
		if kf.index == nil {
			kf.index = newDeltaIndex(kf.plain)
			if _, made := a.keyframes[k]; made {
				a.keyframes[k] = kf
			} else {
				a.refs[k] = kf
			}
		}
		if stored, worth := packDelta(kf.idx, kf.index, plain); worth {
			return stored, nil
		}
	}
	stored := packPlain(plain, e.Envelope)
	if !bytes.HasPrefix(stored, zstdMagic) {
		plain = rawPlain(stored) // kept as received: what a delta reads
	}
	a.keyframes[k] = keyframe{idx: a.size, plain: plain}
	return stored, nil
}

// deltaKey is what a log entry's deltas are keyed by besides its agent:
// a record's collector; "" for entries never stored as deltas (key
// events, SoA changes: few, and unlike each other).
func deltaKey(kind string, plain []byte) string {
	if kind != KindRecord {
		return ""
	}
	const field = `"collector":"`
	i := bytes.Index(plain, []byte(field))
	if i < 0 {
		return ""
	}
	rest := plain[i+len(field):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || j > 128 {
		return ""
	}
	return string(rest[:j])
}

// Finish writes the appended leaves and the new size, and returns the root
// hash, for the checkpoint.
func (a *Appender) Finish() (tlog.Hash, error) {
	if err := a.t.insertRows(a.ctx, `INSERT INTO log_hashes (idx, hash)`, 2, a.hashRows, ""); err != nil {
		return tlog.Hash{}, fmt.Errorf("log append: %w", err)
	}
	if err := a.t.insertRows(a.ctx, `INSERT INTO log_entries (idx, kind, agent_id, seq, digest, envelope, received_at, size)`, 8, a.entryRows, ""); err != nil {
		return tlog.Hash{}, fmt.Errorf("log append: %w", err)
	}
	a.hashRows, a.entryRows = nil, nil
	if len(a.keyframes) > 0 {
		rows := make([][]any, 0, len(a.keyframes))
		for k, kf := range a.keyframes {
			rows = append(rows, []any{k.agent, k.key, kf.idx})
		}
		if err := a.t.insertRows(a.ctx, `INSERT INTO envelope_refs (agent_id, ref_key, idx)`, 3, rows,
			` ON CONFLICT (agent_id, ref_key) DO UPDATE SET idx = excluded.idx`); err != nil {
			return tlog.Hash{}, fmt.Errorf("log append: %w", err)
		}
		kfs, db := a.keyframes, a.t.db
		a.t.AfterCommit(func() {
			for _, kf := range kfs {
				db.refs.put(kf.idx, kf.plain)
			}
		})
		a.keyframes = map[refKey]keyframe{}
	}
	if _, err := a.t.exec(a.ctx, `UPDATE log_head SET size = ? WHERE id = 1`, a.size); err != nil {
		return tlog.Hash{}, err
	}
	return tlog.TreeHash(a.size, a.hashes)
}

// SaveCheckpoint stores a signed checkpoint.
func (t *Tx) SaveCheckpoint(ctx context.Context, size int64, note []byte, at time.Time) error {
	_, err := t.exec(ctx, `INSERT INTO checkpoints (size, note, created_at) VALUES (?,?,?)`, size, string(note), nanos(at))
	return err
}

// Checkpoint returns the latest signed checkpoint, or the one at size when
// size ≥ 0.
func (s *DB) Checkpoint(ctx context.Context, size int64) (int64, []byte, error) {
	var row *sql.Row
	if size < 0 {
		row = s.queryRow(ctx, `SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1`)
	} else {
		row = s.queryRow(ctx, `SELECT size, note FROM checkpoints WHERE size = ?`, size)
	}
	var n int64
	var note string
	if err := row.Scan(&n, &note); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil, ErrNotFound
		}
		return 0, nil, err
	}
	return n, []byte(note), nil
}

// LogSize is the committed size of the log.
func (s *DB) LogSize(ctx context.Context) (int64, error) {
	var n int64
	err := s.queryRow(ctx, `SELECT size FROM log_head WHERE id = 1`).Scan(&n)
	return n, err
}

// HashReader reads committed stored hashes, for proofs.
func (s *DB) HashReader(ctx context.Context) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		got, err := readHashes(ctx, s.query, idx)
		if err != nil {
			return nil, err
		}
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			h, ok := got[x]
			if !ok {
				return nil, fmt.Errorf("log hash %d missing", x)
			}
			out[i] = h
		}
		return out, nil
	})
}

const entryCols = `idx, kind, agent_id, seq, digest, envelope, received_at`

// scanEntry reads an entry's row; its envelope is left stored, for the
// caller to resolve (a delta needs its reference read).
func scanEntry(sc interface{ Scan(...any) error }) (*LogEntry, []byte, error) {
	var e LogEntry
	var seq, at int64
	var stored []byte
	if err := sc.Scan(&e.Index, &e.Kind, &e.AgentID, &seq, &e.Digest, &stored, &at); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil, ErrNotFound
		}
		return nil, nil, err
	}
	e.Seq, e.ReceivedAt = uint64(seq), fromNanos(at)
	return &e, stored, nil
}

// readEntry is the committed entry row holds, its envelope as received.
func (s *DB) readEntry(ctx context.Context, row *sql.Row) (*LogEntry, error) {
	e, stored, err := scanEntry(row)
	if err != nil {
		return nil, err
	}
	if e.Envelope, err = s.envelope(ctx, s.queryRow, stored, true); err != nil {
		return nil, fmt.Errorf("log entry %d: %w", e.Index, err)
	}
	return e, nil
}

// readEntry is the entry row holds, as this transaction sees it.
func (t *Tx) readEntry(ctx context.Context, row *sql.Row) (*LogEntry, error) {
	e, stored, err := scanEntry(row)
	if err != nil {
		return nil, err
	}
	if e.Envelope, err = t.db.envelope(ctx, t.queryRow, stored, false); err != nil {
		return nil, fmt.Errorf("log entry %d: %w", e.Index, err)
	}
	return e, nil
}

// Entries calls fn for each log entry with start ≤ index < end, in order,
// reading in pages so that a long range never sits in memory. A page's
// rows are read before their deltas are resolved (which reads their
// references) and fn is called: no query waits on another's open rows.
func (s *DB) Entries(ctx context.Context, start, end int64, fn func(*LogEntry) error) error {
	type row struct {
		e      *LogEntry
		stored []byte
	}
	for start < end {
		rows, err := s.query(ctx, `SELECT `+entryCols+` FROM log_entries WHERE idx >= ? AND idx < ? ORDER BY idx LIMIT 256`, start, end)
		if err != nil {
			return err
		}
		var page []row
		for rows.Next() {
			e, stored, err := scanEntry(rows)
			if err != nil {
				rows.Close()
				return err
			}
			page = append(page, row{e, stored})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, r := range page {
			if r.e.Envelope, err = s.envelope(ctx, s.queryRow, r.stored, true); err != nil {
				return fmt.Errorf("log entry %d: %w", r.e.Index, err)
			}
			start = r.e.Index + 1
			if err := fn(r.e); err != nil {
				return err
			}
		}
	}
	return nil
}

// Entry reads one log entry.
func (s *DB) Entry(ctx context.Context, idx int64) (*LogEntry, error) {
	return s.readEntry(ctx, s.queryRow(ctx, `SELECT `+entryCols+` FROM log_entries WHERE idx = ?`, idx))
}

// RecordAt finds an agent's record at seq (for duplicates and forks).
func (t *Tx) RecordAt(ctx context.Context, agentID string, seq uint64) (*LogEntry, error) {
	return t.readEntry(ctx, t.queryRow(ctx, `SELECT `+entryCols+` FROM log_entries WHERE agent_id = ? AND seq = ? AND kind = ?`, agentID, int64(seq), KindRecord))
}

// FirstEntry is an agent's first log entry of kind (its enrollment, for
// key events).
func (t *Tx) FirstEntry(ctx context.Context, agentID, kind string) (*LogEntry, error) {
	return t.readEntry(ctx, t.queryRow(ctx, `SELECT `+entryCols+` FROM log_entries WHERE agent_id = ? AND kind = ? ORDER BY idx LIMIT 1`, agentID, kind))
}

// RecordBefore is an agent's record with the highest seq below seq.
func (t *Tx) RecordBefore(ctx context.Context, agentID string, seq uint64) (*LogEntry, error) {
	return t.readEntry(ctx, t.queryRow(ctx, `SELECT `+entryCols+` FROM log_entries WHERE agent_id = ? AND seq < ? AND kind = ? ORDER BY seq DESC LIMIT 1`, agentID, int64(seq), KindRecord))
}

// IndexAt is the first log index received at or after t (the log's size if
// none): a period's boundary in the log.
func (s *DB) IndexAt(ctx context.Context, t time.Time) (int64, error) {
	var idx sql.NullInt64
	if err := s.queryRow(ctx, `SELECT MIN(idx) FROM log_entries WHERE received_at >= ?`, nanos(t)).Scan(&idx); err != nil {
		return 0, err
	}
	if !idx.Valid {
		return s.LogSize(ctx)
	}
	return idx.Int64, nil
}

// EntriesBytes is the total size of the entries in [start, end).
func (s *DB) EntriesBytes(ctx context.Context, start, end int64) (int64, error) {
	var n sql.NullInt64
	// size is the envelope's own length; rows from before it was kept
	// hold the envelope as is.
	err := s.queryRow(ctx, `SELECT SUM(CASE WHEN size >= 0 THEN size ELSE LENGTH(envelope) END) FROM log_entries WHERE idx >= ? AND idx < ?`, start, end).Scan(&n)
	return n.Int64, err
}

// Neighbours returns, per agent, the index of its last record before start
// (before) and its first record at or after end (after).
func (s *DB) Neighbours(ctx context.Context, start, end int64) (before, after map[string]int64, err error) {
	before, after = map[string]int64{}, map[string]int64{}
	for _, q := range []struct {
		sql string
		arg int64
		dst map[string]int64
	}{
		{`SELECT agent_id, MAX(idx) FROM log_entries WHERE kind = 'record' AND idx < ? GROUP BY agent_id`, start, before},
		{`SELECT agent_id, MIN(idx) FROM log_entries WHERE kind = 'record' AND idx >= ? GROUP BY agent_id`, end, after},
	} {
		rows, err := s.query(ctx, q.sql, q.arg)
		if err != nil {
			return nil, nil, err
		}
		for rows.Next() {
			var a string
			var i int64
			if err := rows.Scan(&a, &i); err != nil {
				rows.Close()
				return nil, nil, err
			}
			q.dst[a] = i
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
	}
	return before, after, nil
}

// KeyEventIndexes lists the key events' indexes below end, in order.
func (s *DB) KeyEventIndexes(ctx context.Context, end int64) ([]int64, error) {
	rows, err := s.query(ctx, `SELECT idx FROM log_entries WHERE kind = ? AND idx < ? ORDER BY idx`, KindKeyEvent, end)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var i int64
		if err := rows.Scan(&i); err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

// StoredBytes is what the log's entries take in the database (compressed)
// and as received, for the benchmarks' bytes per record.
func (s *DB) StoredBytes(ctx context.Context) (stored, raw int64, err error) {
	var a, b sql.NullInt64
	err = s.queryRow(ctx, `SELECT SUM(LENGTH(envelope)), SUM(CASE WHEN size >= 0 THEN size ELSE LENGTH(envelope) END) FROM log_entries`).Scan(&a, &b)
	return a.Int64, b.Int64, err
}

// DatabaseBytes is the database's size in use: SQLite's pages less its
// free ones (what the file holds once checkpointed), PostgreSQL's database
// size. The benchmarks divide its growth by what was stored.
func (s *DB) DatabaseBytes(ctx context.Context) (int64, error) {
	if s.dialect == Postgres {
		var n int64
		err := s.queryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&n)
		return n, err
	}
	var pages, free, size int64
	for q, v := range map[string]*int64{`PRAGMA page_count`: &pages, `PRAGMA freelist_count`: &free, `PRAGMA page_size`: &size} {
		if err := s.queryRow(ctx, q).Scan(v); err != nil {
			return 0, err
		}
	}
	return (pages - free) * size, nil
}
