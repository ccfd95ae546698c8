// Package store keeps the server's state in SQL: SQLite (pure Go, the
// default, in the data directory) or PostgreSQL (for several stateless
// replicas). Both run the same schema and the same queries; the few dialect
// differences (placeholders, row locks, types) are handled here and nowhere
// else.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"
	_ "modernc.org/sqlite"             // SQLite driver "sqlite"
)

// Dialect is the SQL flavour of a database.
type Dialect int

// The two supported databases.
const (
	SQLite Dialect = iota
	Postgres
)

func (d Dialect) String() string {
	if d == Postgres {
		return "postgres"
	}
	return "sqlite"
}

// DB is an open store.
type DB struct {
	db      *sql.DB
	dialect Dialect
	path    string // the SQLite file; empty on PostgreSQL
	// refs holds the plain forms of recently used delta references
	// (envelope.go): committed log entries, which never change.
	refs refCache
	// snaps holds the snapshot read last, decoded (snapcache.go).
	snaps snapCache
}

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// Open opens the database at url, or SQLite in dataDir when url is empty,
// and runs the schema migrations.
func Open(ctx context.Context, url, dataDir string) (*DB, error) {
	var s *DB
	switch {
	case url == "" || strings.HasPrefix(url, "sqlite:"):
		path := strings.TrimPrefix(url, "sqlite:")
		if path == "" {
			path = filepath.Join(dataDir, "annexa.db")
		}
		// WAL with synchronous=FULL: a commit is on disk before it returns,
		// which is what "durable before acknowledged" needs. Transactions
		// take the write lock at BEGIN, so two writers queue instead of
		// failing half-way.
		dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(30000)&_pragma=foreign_keys(ON)&_txlock=immediate"
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		s = &DB{db: db, dialect: SQLite, path: path}
	case strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://"):
		db, err := sql.Open("pgx", url)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		db.SetMaxOpenConns(32)
		db.SetConnMaxIdleTime(5 * time.Minute)
		s = &DB{db: db, dialect: Postgres}
	default:
		return nil, fmt.Errorf("database %q: want postgres://… or sqlite:PATH", url)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := s.db.PingContext(pingCtx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("connect to %s: %w", s.dialect, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	if s.dialect == SQLite {
		// The evidence of the whole fleet: readable by the server's user
		// only, like its keys.
		for _, p := range []string{s.path, s.path + "-wal", s.path + "-shm"} {
			if err := os.Chmod(p, 0o600); err != nil && !os.IsNotExist(err) {
				s.db.Close()
				return nil, fmt.Errorf("sqlite %s: %w", p, err)
			}
		}
		if err := s.quickCheck(ctx); err != nil {
			s.db.Close()
			return nil, err
		}
	}
	return s, nil
}

// quickCheck is SQLite's own integrity check, run at start: a damaged
// database is refused with what SQLite found, not served half-readable.
func (s *DB) quickCheck(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `PRAGMA quick_check`)
	if err != nil {
		return fmt.Errorf("sqlite %s: integrity check: %w", s.path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("sqlite %s: integrity check: %w", s.path, err)
		}
		if line != "ok" && len(problems) < 5 {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite %s: integrity check: %w", s.path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("sqlite %s is damaged (%s): restore it from a backup (docs/deploying.md)", s.path, strings.Join(problems, "; "))
	}
	return nil
}

// Dialect says which database this is.
func (s *DB) Dialect() Dialect { return s.dialect }

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

// Ping checks the database answers (readiness).
func (s *DB) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// rebind turns ? placeholders into $1, $2 … for PostgreSQL.
func (d Dialect) rebind(q string) string {
	if d != Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// forUpdate is the row-lock suffix: SQLite has no row locks, but its
// transactions already hold the database's write lock from BEGIN.
func (d Dialect) forUpdate() string {
	if d == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// Tx is a transaction.
type Tx struct {
	tx      *sql.Tx
	db      *DB
	dialect Dialect
	after   []func()
}

// AfterCommit runs fn once the transaction has committed durably (never if
// it rolls back).
func (t *Tx) AfterCommit(fn func()) { t.after = append(t.after, fn) }

func (t *Tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.dialect.rebind(q), args...)
}

func (t *Tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.dialect.rebind(q), args...)
}

func (t *Tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.dialect.rebind(q), args...)
}

func (s *DB) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, s.dialect.rebind(q), args...)
}

func (s *DB) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.dialect.rebind(q), args...)
}

// InTx runs fn in a transaction and commits it, or rolls back if fn fails.
// The commit is durable when InTx returns nil.
func (s *DB) InTx(ctx context.Context, fn func(*Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	t := &Tx{tx: tx, db: s, dialect: s.dialect}
	if err := fn(t); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for _, f := range t.after {
		f()
	}
	return nil
}

// nanos and fromNanos store times as integer nanoseconds since the epoch in
// UTC: the same in both databases, and ordered.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
