package store

import (
	"context"
	"strings"
)

// maxParams keeps a multi-row statement under SQLite's and PostgreSQL's
// bind-parameter limits with room to spare.
const maxParams = 900

// insertRows writes rows with as few multi-row INSERT statements as the
// parameter limit allows. Per-statement overhead, not data, is what bounds
// ingest on one writer, so a batch of records costs a handful of statements.
func (t *Tx) insertRows(ctx context.Context, prefix string, ncols int, rows [][]any, suffix string) error {
	per := max(1, maxParams/ncols)
	one := "(?" + strings.Repeat(",?", ncols-1) + ")"
	for len(rows) > 0 {
		n := min(per, len(rows))
		chunk := rows[:n]
		rows = rows[n:]
		var b strings.Builder
		b.WriteString(prefix)
		b.WriteString(" VALUES ")
		args := make([]any, 0, n*ncols)
		for i, r := range chunk {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(one)
			args = append(args, r...)
		}
		b.WriteString(suffix)
		if _, err := t.exec(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}
