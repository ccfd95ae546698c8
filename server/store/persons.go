package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// Person is someone registered to attest, and where their chain stands:
// like an agent's, last_seq and link (the digest the next attestation's prev
// must equal; the registration's at first).
type Person struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Role         string    `json:"role,omitempty"`
	KeyID        string    `json:"keyid"`
	PublicKey    []byte    `json:"public_key"`
	CreatedAt    time.Time `json:"created_at"`
	CreatedBy    string    `json:"created_by,omitempty"`
	LastSeq      uint64    `json:"last_seq"`
	Link         string    `json:"link"`
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
	RevokedAfter uint64    `json:"revoked_after,omitempty"`
}

// Revocation is the person's removal as the key rule takes it.
func (p *Person) Revocation() evidence.Revocation {
	return evidence.Revocation{Revoked: !p.RevokedAt.IsZero(), After: p.RevokedAfter}
}

const personCols = `id, name, role, keyid, public_key, created_at, created_by, last_seq, link, revoked_at, revoked_after`

func scanPerson(sc interface{ Scan(...any) error }) (*Person, error) {
	var p Person
	var created, revoked, seq, after int64
	if err := sc.Scan(&p.ID, &p.Name, &p.Role, &p.KeyID, &p.PublicKey, &created, &p.CreatedBy, &seq, &p.Link, &revoked, &after); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	p.CreatedAt, p.RevokedAt, p.LastSeq, p.RevokedAfter = fromNanos(created), fromNanos(revoked), uint64(seq), uint64(after)
	return &p, nil
}

// ErrDuplicateKey is a person registration with a key another person has.
var ErrDuplicateKey = errors.New("key already registered")

// InsertPerson registers a person.
func (t *Tx) InsertPerson(ctx context.Context, p *Person) error {
	var n int
	if err := t.queryRow(ctx, `SELECT COUNT(*) FROM persons WHERE keyid = ?`, p.KeyID).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return ErrDuplicateKey
	}
	_, err := t.exec(ctx, `INSERT INTO persons (`+personCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		p.ID, p.Name, p.Role, p.KeyID, p.PublicKey, nanos(p.CreatedAt), p.CreatedBy, int64(p.LastSeq), p.Link, int64(0), int64(0))
	if err != nil {
		return fmt.Errorf("insert person: %w", err)
	}
	return nil
}

// LockPerson reads a person and holds the row until the transaction ends.
func (t *Tx) LockPerson(ctx context.Context, id string) (*Person, error) {
	return scanPerson(t.queryRow(ctx, `SELECT `+personCols+` FROM persons WHERE id = ?`+t.dialect.forUpdate(), id))
}

// Person reads a person by id.
func (s *DB) Person(ctx context.Context, id string) (*Person, error) {
	return scanPerson(s.queryRow(ctx, `SELECT `+personCols+` FROM persons WHERE id = ?`, id))
}

// PersonByKey reads the person whose key has keyid.
func (s *DB) PersonByKey(ctx context.Context, keyid string) (*Person, error) {
	return scanPerson(s.queryRow(ctx, `SELECT `+personCols+` FROM persons WHERE keyid = ?`, keyid))
}

// Persons lists everyone registered, by name.
func (s *DB) Persons(ctx context.Context) ([]Person, error) {
	rows, err := s.query(ctx, `SELECT `+personCols+` FROM persons ORDER BY name, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Person
	for rows.Next() {
		p, err := scanPerson(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, rows.Err()
}

// AdvancePerson moves a person's chain head after an attestation.
func (t *Tx) AdvancePerson(ctx context.Context, id string, seq uint64, link string) error {
	_, err := t.exec(ctx, `UPDATE persons SET last_seq = ?, link = ? WHERE id = ?`, int64(seq), link, id)
	return err
}

// RevokePerson removes a person: no attestation after seq after is valid.
func (t *Tx) RevokePerson(ctx context.Context, id string, at time.Time, after uint64) error {
	_, err := t.exec(ctx, `UPDATE persons SET revoked_at = ?, revoked_after = ? WHERE id = ?`, nanos(at), int64(after), id)
	return err
}

// Attestation is apiv1.AttestationEntry: the API shows it as the store
// keeps it.
type Attestation = apiv1.AttestationEntry

const attestationCols = `log_index, person_id, seq, digest, controls, statement, subject_sha256, file_name, file_size, media_type, attested_at, valid_until, received_at`

func scanAttestation(sc interface{ Scan(...any) error }) (*Attestation, error) {
	var a Attestation
	var seq, at, until, recv int64
	var controls string
	if err := sc.Scan(&a.LogIndex, &a.PersonID, &seq, &a.Digest, &controls, &a.Statement, &a.SHA256, &a.FileName, &a.FileSize, &a.MediaType, &at, &until, &recv); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	a.Seq, a.AttestedAt, a.ValidUntil, a.ReceivedAt = uint64(seq), fromNanos(at), fromNanos(until), fromNanos(recv)
	a.Controls = strings.Split(controls, ",")
	return &a, nil
}

// InsertAttestation indexes an attestation the log now holds.
func (t *Tx) InsertAttestation(ctx context.Context, a *Attestation) error {
	_, err := t.exec(ctx, `INSERT INTO attestations (`+attestationCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		a.LogIndex, a.PersonID, int64(a.Seq), a.Digest, strings.Join(a.Controls, ","), a.Statement, a.SHA256, a.FileName, a.FileSize, a.MediaType,
		nanos(a.AttestedAt), nanos(a.ValidUntil), nanos(a.ReceivedAt))
	if err != nil {
		return fmt.Errorf("insert attestation: %w", err)
	}
	return nil
}

// Attestations lists the attestations accepted before log index end (-1:
// all), in log order. An organisation has hundreds, not millions: the
// callers filter in memory.
func (s *DB) Attestations(ctx context.Context, end int64) ([]Attestation, error) {
	q, args := `SELECT `+attestationCols+` FROM attestations`, []any{}
	if end >= 0 {
		q, args = q+` WHERE log_index < ?`, append(args, end)
	}
	rows, err := s.query(ctx, q+` ORDER BY log_index`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Attestation
	for rows.Next() {
		a, err := scanAttestation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	return out, rows.Err()
}

// AttestationCiting is the first attestation whose subject is sha256.
func (s *DB) AttestationCiting(ctx context.Context, sha256 string) (*Attestation, error) {
	return scanAttestation(s.queryRow(ctx, `SELECT `+attestationCols+` FROM attestations WHERE subject_sha256 = ? AND file_name <> '' ORDER BY log_index LIMIT 1`, sha256))
}

// Reminder is an attestation about to lapse, with its person's name.
type Reminder struct {
	Attestation
	Person string
}

// RemindAttestations marks, and returns, the attestations that lapse before
// `before` and have had no reminder: each is announced once.
func (t *Tx) RemindAttestations(ctx context.Context, before time.Time) ([]Reminder, error) {
	rows, err := t.query(ctx, `SELECT `+prefixed("a.", attestationCols)+`, p.name FROM attestations a JOIN persons p ON p.id = a.person_id
		WHERE a.reminded = 0 AND a.valid_until < ? ORDER BY a.log_index LIMIT 1000`, nanos(before))
	if err != nil {
		return nil, err
	}
	var out []Reminder
	for rows.Next() {
		var name string
		a, err := scanAttestation(scanWith{rows, &name})
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, Reminder{*a, name})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, r := range out {
		if _, err := t.exec(ctx, `UPDATE attestations SET reminded = 1 WHERE log_index = ?`, r.LogIndex); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// scanWith scans a row's leading columns with a scanner written for them
// and the trailing ones into extra.
type scanWith struct {
	rows  interface{ Scan(...any) error }
	extra any
}

func (s scanWith) Scan(dst ...any) error { return s.rows.Scan(append(dst, s.extra)...) }

func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = prefix + parts[i]
	}
	return strings.Join(parts, ", ")
}

// PutAttestedFile stores a document by its sha256; storing it again is a
// no-op.
func (s *DB) PutAttestedFile(ctx context.Context, sha256 string, data []byte, at time.Time) error {
	return s.InTx(ctx, func(t *Tx) error {
		var n int
		if err := t.queryRow(ctx, `SELECT COUNT(*) FROM attested_files WHERE sha256 = ?`, sha256).Scan(&n); err != nil || n > 0 {
			return err
		}
		_, err := t.exec(ctx, `INSERT INTO attested_files (sha256, size, data, uploaded_at) VALUES (?,?,?,?)`, sha256, int64(len(data)), data, nanos(at))
		return err
	})
}

// AttestedFile reads a document by its sha256.
func (s *DB) AttestedFile(ctx context.Context, sha256 string) ([]byte, error) {
	var data []byte
	err := s.queryRow(ctx, `SELECT data FROM attested_files WHERE sha256 = ?`, sha256).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return data, err
}

// AttestedFiles says which of the digests have a stored document.
func (s *DB) AttestedFiles(ctx context.Context) (map[string]int64, error) {
	rows, err := s.query(ctx, `SELECT sha256, size FROM attested_files`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var d string
		var n int64
		if err := rows.Scan(&d, &n); err != nil {
			return nil, err
		}
		out[d] = n
	}
	return out, rows.Err()
}
