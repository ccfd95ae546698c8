package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/note"

	"github.com/annexa-dev/annexa/evidence/checkpoint"
)

// SignedFile keeps, outside the database, the latest checkpoint this server
// signed and handed out. A database that comes back behind it (a deleted
// or damaged WAL, a restore from an old backup) lost records the agents
// hold receipts for: the server refuses to serve it rather than start
// quietly and let agents blame their own outboxes.
const SignedFile = "checkpoint.latest"

// signedMark writes the latest signed checkpoint to SignedFile after each
// commit. It is replaced by rename, without an fsync of its own: it guards
// against a database losing what it had, and a kill -9 loses no page cache.
type signedMark struct {
	mu   sync.Mutex
	path string
	size int64
}

func (m *signedMark) keep(size int64, note []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.path == "" || size <= m.size {
		return
	}
	tmp := m.path + ".tmp"
	if err := os.WriteFile(tmp, note, 0o644); err != nil {
		return // next commit tries again; the database is the record
	}
	if err := os.Rename(tmp, m.path); err == nil {
		m.size = size
	}
}

// ErrRolledBack is a database behind the checkpoint the server last signed.
var ErrRolledBack = errors.New("the database is behind the checkpoint this server last signed")

// checkNotBehind compares the database's log size with the kept checkpoint,
// verified under the server's own log key.
func (s *Server) checkNotBehind(size int64) error {
	path := filepath.Join(s.cfg.DataDir, SignedFile)
	s.signed.path = path
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // a new server, or one from before this file
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	v, err := note.NewVerifier(s.keys.LogVerifier)
	if err != nil {
		return fmt.Errorf("log key: %w", err)
	}
	cp, err := checkpoint.Open(b, v)
	if err != nil {
		return fmt.Errorf("%s does not verify under this server's log key (%w): move it aside if it belongs to another server", path, err)
	}
	s.signed.size = cp.Size
	if size < cp.Size {
		return fmt.Errorf("%w: the log holds %d entries, the server signed a checkpoint of %d and agents hold receipts up to it. "+
			"Restore the database from a backup at least that new (docs/deploying.md, \"Backups\"); or, accepting that the %d entries are lost, "+
			"move %s aside and start again: the agents will report the loss",
			ErrRolledBack, size, cp.Size, cp.Size-size, strings.TrimSpace(path))
	}
	return nil
}
