package store

import "context"

// ResetForTest empties what the log, results and snapshots wrote, so one
// database serves several generated worlds in a test.
func ResetForTest(ctx context.Context, db *DB) error {
	return db.InTx(ctx, func(tx *Tx) error {
		for _, q := range []string{
			`DELETE FROM results`, `DELETE FROM transitions`, `DELETE FROM state`, `DELETE FROM late_transitions`,
			`DELETE FROM exact_pairs`, `DELETE FROM state_snapshots`, `DELETE FROM state_snapshot_checks`,
			`DELETE FROM log_entries`, `DELETE FROM log_hashes`, `DELETE FROM meta WHERE k = 'late_before'`,
			`UPDATE log_head SET size = 0 WHERE id = 1`,
		} {
			if _, err := tx.exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
}
