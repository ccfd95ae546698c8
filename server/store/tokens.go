package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// Token is apiv1.Token: the API shows it as the store keeps it.
type Token = apiv1.Token

// Errors of token use.
var (
	ErrTokenExpired = errors.New("token expired")
	ErrTokenUsedUp  = errors.New("token has no uses left")
	ErrTokenRevoked = errors.New("token revoked")
	// ErrTokenRole is a token of another role than the use asks for.
	ErrTokenRole = errors.New("token of another role")
)

const tokenCols = `id, role, name, created_at, expires_at, max_uses, uses, labels, revoked, assets, selector`

func scanToken(sc interface{ Scan(...any) error }) (*Token, error) {
	var t Token
	var created, expires int64
	var labels, assets string
	var revoked int
	if err := sc.Scan(&t.ID, &t.Role, &t.Name, &created, &expires, &t.MaxUses, &t.Uses, &labels, &revoked, &assets, &t.Selector); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	t.CreatedAt, t.ExpiresAt, t.Revoked = fromNanos(created), fromNanos(expires), revoked != 0
	if err := json.Unmarshal([]byte(labels), &t.Labels); err != nil {
		return nil, fmt.Errorf("token %s labels: %w", t.ID, err)
	}
	if err := json.Unmarshal([]byte(assets), &t.Assets); err != nil {
		return nil, fmt.Errorf("token %s assets: %w", t.ID, err)
	}
	return &t, nil
}

// CreateToken stores a token under the hash of its secret.
func (s *DB) CreateToken(ctx context.Context, t *Token, hash string) error {
	labels, _ := json.Marshal(nonNil(t.Labels))
	assets, _ := json.Marshal(evidence.NonNil(t.Assets))
	return s.InTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, `INSERT INTO tokens (id, hash, role, name, created_at, expires_at, max_uses, uses, labels, revoked, assets, selector) VALUES (?,?,?,?,?,?,?,0,?,0,?,?)`,
			t.ID, hash, t.Role, t.Name, nanos(t.CreatedAt), nanos(t.ExpiresAt), t.MaxUses, string(labels), string(assets), t.Selector)
		return err
	})
}

// TokenByHash finds a token by the hash of its secret.
func (s *DB) TokenByHash(ctx context.Context, hash string) (*Token, error) {
	return scanToken(s.queryRow(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = ?`, hash))
}

// TokenByID finds a token by its id.
func (s *DB) TokenByID(ctx context.Context, id string) (*Token, error) {
	return scanToken(s.queryRow(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = ?`, id))
}

// Tokens lists every token, newest first.
func (s *DB) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.query(ctx, `SELECT `+tokenCols+` FROM tokens ORDER BY created_at DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *t)
	}
	return out, rows.Err()
}

// RevokeToken revokes a token by id.
func (s *DB) RevokeToken(ctx context.Context, id string) error {
	return s.InTx(ctx, func(tx *Tx) error {
		r, err := tx.exec(ctx, `UPDATE tokens SET revoked = 1 WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// UseToken takes one use of the token with hash, checking role, expiry and
// uses under a row lock, so a token with one use left enrols one agent even
// when two race for it.
func (t *Tx) UseToken(ctx context.Context, hash, role string, now time.Time) (*Token, error) {
	tok, err := scanToken(t.queryRow(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = ?`+t.dialect.forUpdate(), hash))
	if err != nil {
		return nil, err
	}
	switch {
	case tok.Role != role:
		return nil, fmt.Errorf("%w: its role is %s, not %s", ErrTokenRole, tok.Role, role)
	case tok.Revoked:
		return nil, ErrTokenRevoked
	case !tok.ExpiresAt.IsZero() && now.After(tok.ExpiresAt):
		return nil, ErrTokenExpired
	case tok.MaxUses > 0 && tok.Uses >= tok.MaxUses:
		return nil, ErrTokenUsedUp
	}
	if _, err := t.exec(ctx, `UPDATE tokens SET uses = uses + 1 WHERE id = ?`, tok.ID); err != nil {
		return nil, err
	}
	tok.Uses++
	return tok, nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
