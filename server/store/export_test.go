package store

import "context"

// ResetForTest empties what the log, results and snapshots wrote, so one
// database serves several generated worlds in a test.
func ResetForTest(ctx context.Context, db *DB) error {
	db.refs.reset() // the log's indexes will name other entries
	db.snaps.reset()
	return db.InTx(ctx, func(tx *Tx) error {
		for _, q := range []string{
			`DELETE FROM results`, `DELETE FROM transitions`, `DELETE FROM state`, `DELETE FROM late_transitions`,
			`DELETE FROM exact_pairs`, `DELETE FROM state_snapshots`, `DELETE FROM state_snapshot_checks`,
			`DELETE FROM log_entries`, `DELETE FROM log_hashes`, `DELETE FROM envelope_refs`, `DELETE FROM meta WHERE k = 'late_before'`,
			`UPDATE log_head SET size = 0 WHERE id = 1`,
		} {
			if _, err := tx.exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
}

// DropRefCacheForTest forgets the delta references read so far: the next
// reads find them in the database, as after a restart.
func DropRefCacheForTest(db *DB) { db.refs.reset() }

// SetStoredEnvelopeForTest overwrites an entry's stored bytes (damage).
func SetStoredEnvelopeForTest(ctx context.Context, db *DB, idx int64, stored []byte) error {
	_, err := db.db.ExecContext(ctx, db.dialect.rebind(`UPDATE log_entries SET envelope = ? WHERE idx = ?`), stored, idx)
	return err
}

// StoredEnvelopeForTest is an entry's stored bytes.
func StoredEnvelopeForTest(ctx context.Context, db *DB, idx int64) ([]byte, error) {
	var b []byte
	err := db.queryRow(ctx, `SELECT envelope FROM log_entries WHERE idx = ?`, idx).Scan(&b)
	return b, err
}

// IsDeltaForTest says whether a stored value is a delta.
func IsDeltaForTest(stored []byte) bool {
	plain, err := storedPlain(stored)
	if err != nil {
		return false
	}
	_, ok, _ := deltaRef(plain)
	return ok
}

// PackEnvelopeForTest is an envelope's stored form on its own.
func PackEnvelopeForTest(env []byte) []byte { return packEnvelope(env) }

// DropSnapshotCacheForTest forgets the decoded snapshot.
func DropSnapshotCacheForTest(db *DB) { db.snaps.reset() }
