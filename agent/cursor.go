package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/internal/atomicfile"
)

// CursorDir holds incremental collectors' cursors (collectors.Incremental).
const CursorDir = "cursors"

// cursorStore keeps each incremental collector's cursor so that its events
// are counted exactly once. The cursor a run reached is written as
// <name>.pending, tagged with the seq and digest of the record carrying
// that run's results, before the record is appended to the outbox; once
// the append is durable it is renamed over <name>.json. If the agent dies in
// between, the next start settles it: a pending cursor whose record is in
// the chain (seq at or below the durable head) is committed, any other is
// discarded, and the run is simply repeated from the old cursor.
type cursorStore struct {
	dir string
}

type storedCursor struct {
	Seq    uint64          `json:"seq"`
	Digest string          `json:"digest"`
	Cursor json.RawMessage `json:"cursor"`
}

func (s cursorStore) path(name, ext string) string { return filepath.Join(s.dir, name+ext) }

// load returns the committed cursor of a collector (nil if none).
func (s cursorStore) load(name string) ([]byte, error) {
	b, err := os.ReadFile(s.path(name, ".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c storedCursor
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("cursor %s: %w", name, err)
	}
	return c.Cursor, nil
}

// prepare records the cursor a record will commit.
func (s cursorStore) prepare(name string, seq uint64, digest string, cur []byte) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(storedCursor{Seq: seq, Digest: digest, Cursor: cur})
	if err != nil {
		return err
	}
	return atomicfile.Write(s.path(name, ".pending"), b, 0o600)
}

// commit makes the prepared cursor the collector's cursor.
func (s cursorStore) commit(name string) error {
	if err := os.Rename(s.path(name, ".pending"), s.path(name, ".json")); err != nil {
		return err
	}
	return atomicfile.SyncDir(s.dir)
}

// abort drops the prepared cursor: its record was not stored.
func (s cursorStore) abort(name string) {
	_ = os.Remove(s.path(name, ".pending"))
}

// settle resolves cursors left pending by a crash, against the chain's
// durable head. Called at start, before any record is appended.
func (s cursorStore) settle(head chain.Head) ([]string, error) {
	pend, err := filepath.Glob(filepath.Join(s.dir, "*.pending"))
	if err != nil {
		return nil, err
	}
	var notes []string
	for _, p := range pend {
		name := filepath.Base(p[:len(p)-len(".pending")])
		b, err := os.ReadFile(p)
		var c storedCursor
		if err == nil {
			err = json.Unmarshal(b, &c)
		}
		stored := err == nil && c.Seq <= head.Seq && (c.Seq != head.Seq || c.Digest == head.Digest)
		if stored {
			if err := s.commit(name); err != nil {
				return notes, err
			}
			notes = append(notes, fmt.Sprintf("%s: committed the cursor of stored record %d", name, c.Seq))
			continue
		}
		s.abort(name)
		notes = append(notes, fmt.Sprintf("%s: dropped the cursor of record %d, which was never stored; that run is repeated", name, c.Seq))
	}
	return notes, nil
}
