package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"
)

// SoAEntry is one control's line of the Statement of Applicability as an
// admin set it.
type SoAEntry struct {
	Control       string    `json:"control"`
	Applicable    bool      `json:"applicable"`
	Status        string    `json:"status,omitempty"`
	Owner         string    `json:"owner,omitempty"`
	Justification string    `json:"justification,omitempty"`
	UpdatedAt     time.Time `json:"updated_at,omitzero"`
	UpdatedBy     string    `json:"updated_by,omitempty"`
}

// SoAChange is one edit: the fields it changed, each [before, after].
type SoAChange struct {
	At      time.Time            `json:"at"`
	Control string               `json:"control"`
	By      string               `json:"by"`
	Changes map[string][2]string `json:"changes"`
}

// SoA reads every entry set so far, by control.
func (s *DB) SoA(ctx context.Context) (map[string]SoAEntry, error) {
	rows, err := s.query(ctx, `SELECT control_id, applicable, status, owner, justification, updated_at, updated_by FROM soa`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]SoAEntry{}
	for rows.Next() {
		var e SoAEntry
		var applicable int
		var at int64
		if err := rows.Scan(&e.Control, &applicable, &e.Status, &e.Owner, &e.Justification, &at, &e.UpdatedBy); err != nil {
			return nil, err
		}
		e.Applicable, e.UpdatedAt = applicable != 0, fromNanos(at)
		out[e.Control] = e
	}
	return out, rows.Err()
}

// UpdateSoA applies change to a control's entry (from def when it has none
// yet) and records what changed, by whom, in one transaction. It returns
// the entry as it now stands.
//
// logged, when set, runs in the same transaction after a change was made,
// with the entry after it and the fields it changed: the server appends
// the change to the transparency log there.
func (s *DB) UpdateSoA(ctx context.Context, control string, def SoAEntry, change func(*SoAEntry) error, by string, at time.Time,
	logged func(*Tx, SoAEntry, map[string][2]string) error) (SoAEntry, error) {
	var e SoAEntry
	err := s.InTx(ctx, func(t *Tx) error {
		var applicable int
		var upd int64
		err := t.queryRow(ctx, `SELECT control_id, applicable, status, owner, justification, updated_at, updated_by FROM soa WHERE control_id = ?`+t.dialect.forUpdate(), control).
			Scan(&e.Control, &applicable, &e.Status, &e.Owner, &e.Justification, &upd, &e.UpdatedBy)
		exists := err == nil
		switch {
		case errors.Is(err, sql.ErrNoRows):
			e = def
			e.Control = control
		case err != nil:
			return err
		default:
			e.Applicable, e.UpdatedAt = applicable != 0, fromNanos(upd)
		}
		before := e
		if err := change(&e); err != nil {
			return err
		}
		diff := map[string][2]string{}
		note := func(field, a, b string) {
			if a != b {
				diff[field] = [2]string{a, b}
			}
		}
		yn := map[bool]string{true: "applicable", false: "excluded"}
		note("applicable", yn[before.Applicable], yn[e.Applicable])
		note("status", before.Status, e.Status)
		note("owner", before.Owner, e.Owner)
		note("justification", before.Justification, e.Justification)
		if len(diff) == 0 {
			return nil
		}
		e.UpdatedAt, e.UpdatedBy = at, by
		app := 0
		if e.Applicable {
			app = 1
		}
		if exists {
			_, err = t.exec(ctx, `UPDATE soa SET applicable = ?, status = ?, owner = ?, justification = ?, updated_at = ?, updated_by = ? WHERE control_id = ?`,
				app, e.Status, e.Owner, e.Justification, nanos(at), by, control)
		} else {
			_, err = t.exec(ctx, `INSERT INTO soa (control_id, applicable, status, owner, justification, updated_at, updated_by) VALUES (?,?,?,?,?,?,?)`,
				control, app, e.Status, e.Owner, e.Justification, nanos(at), by)
		}
		if err != nil {
			return err
		}
		b, _ := json.Marshal(diff)
		if _, err = t.exec(ctx, `INSERT INTO soa_changes (at, control_id, changed_by, change) VALUES (?,?,?,?)`, nanos(at), control, by, string(b)); err != nil {
			return err
		}
		if logged != nil {
			return logged(t, e, diff)
		}
		return nil
	})
	return e, err
}

// SoAChanges lists the edits, newest first, of one control ("" for all),
// at most limit.
func (s *DB) SoAChanges(ctx context.Context, control string, limit int) ([]SoAChange, error) {
	q, args := `SELECT at, control_id, changed_by, change FROM soa_changes`, []any{}
	if control != "" {
		q, args = q+` WHERE control_id = ?`, append(args, control)
	}
	rows, err := s.query(ctx, q+` ORDER BY at DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SoAChange
	for rows.Next() {
		var c SoAChange
		var at int64
		var raw string
		if err := rows.Scan(&at, &c.Control, &c.By, &raw); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(raw), &c.Changes); err != nil {
			return nil, err
		}
		c.At = fromNanos(at)
		out = append(out, c)
	}
	return out, rows.Err()
}
