package agent

import (
	"crypto/ed25519"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/annexa-dev/annexa/agent/outbox"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/internal/keyfile"
)

// RetiredKeyDir keeps the keys a rotation retired, named by the seq of the
// rotation record (the last seq each signs), until the server has
// acknowledged that record. Only a gap record can need one: if the outbox
// overflows before the rotation reaches the server, the gap record at the
// first dropped seq must be signed with the key valid there, and must
// announce the rotation again if the rotation record itself is dropped.
const RetiredKeyDir = "retired-keys"

func (a *Agent) retiredDir() string { return filepath.Join(a.cfg.StateDir, RetiredKeyDir) }

// retire keeps key as the key valid through seq.
func (a *Agent) retire(through uint64, key ed25519.PrivateKey) {
	dir := a.retiredDir()
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		err = keyfile.Save(filepath.Join(dir, fmt.Sprintf("%d.key", through)), key)
	}
	if err != nil {
		// The rotation itself is durable; only a later overflow of the
		// outbox before it ships would miss this key.
		a.log.Warn("retired key not kept", "through_seq", through, "err", err)
	}
}

// retired lists the kept keys' last seqs, ascending.
func (a *Agent) retired() []uint64 {
	names, _ := filepath.Glob(filepath.Join(a.retiredDir(), "*.key"))
	var seqs []uint64
	for _, n := range names {
		if s, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(n), ".key"), 10, 64); err == nil {
			seqs = append(seqs, s)
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs
}

// keyAt is the agent's private key valid at seq: the retired key of the
// first rotation at or after seq, else the current key.
func (a *Agent) keyAt(seq uint64) (ed25519.PrivateKey, error) {
	for _, through := range a.retired() {
		if through >= seq {
			k, err := keyfile.Load(filepath.Join(a.retiredDir(), fmt.Sprintf("%d.key", through)))
			if err != nil {
				return nil, fmt.Errorf("retired key through seq %d: %w", through, err)
			}
			return k, nil
		}
	}
	return a.writer.Key(), nil
}

// pruneRetired drops the retired keys whose rotation the server holds.
func (a *Agent) pruneRetired(acked uint64) {
	for _, through := range a.retired() {
		if through <= acked {
			os.Remove(filepath.Join(a.retiredDir(), fmt.Sprintf("%d.key", through)))
		}
	}
}

// droppedRotation is the newest rotation among records being dropped, and
// the seq of its record.
func droppedRotation(dropped iter.Seq[outbox.Item]) (*evidence.Rotation, uint64) {
	var last *evidence.Rotation
	var at uint64
	for it := range dropped {
		rec, err := parseRaw(it.Raw)
		if err != nil || rec.Predicate.Rotation == nil {
			continue
		}
		r := *rec.Predicate.Rotation
		last, at = &r, rec.Predicate.Seq
	}
	return last, at
}
