package agent

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/agent/outbox"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/internal/atomicfile"
	"github.com/annexa-dev/annexa/internal/keyfile"
)

// RotateRequestFile asks a running agent to rotate its key.
const RotateRequestFile = "rotate.request"

// RotateKey makes a new key and announces it in a record signed with the
// old one. The new key is on disk (agent.key.next) before the record, and
// becomes agent.key after it: a crash in between is finished at the next
// start from what the outbox holds.
func (a *Agent) RotateKey() (string, error) {
	_, next, err := ed25519.GenerateKey(nil)
	if err != nil {
		return "", err
	}
	nextPath := filepath.Join(a.cfg.StateDir, NextKeyFile)
	if err := keyfile.Save(nextPath, next); err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	old, before := a.writer.Key(), a.writer.Head()
	s, err := a.writer.Rotate(evidence.HostAsset(a.id.AgentID), next, time.Now().UTC())
	if err == nil {
		err = a.outbox.Append(outbox.Item{Seq: s.Record.Predicate.Seq, Digest: s.Record.Digest, Raw: s.JSON})
	}
	if err != nil {
		a.writer, _ = chain.NewWriter(a.id.AgentID, old, before)
		os.Remove(nextPath)
		return "", fmt.Errorf("rotation record not stored: %w", err)
	}
	a.retire(s.Record.Predicate.Seq, old)
	if err := os.Rename(nextPath, filepath.Join(a.cfg.StateDir, KeyFile)); err != nil {
		return "", err
	}
	a.notify()
	keyID := dsse.KeyID(next.Public().(ed25519.PublicKey))
	a.log.Info("key rotated", "keyid", keyID, "announced_at_seq", s.Record.Predicate.Seq)
	return keyID, nil
}

// watchRotateRequests lets `annexa-agent rotate-key` reach a running daemon.
func (a *Agent) watchRotateRequests(ctx context.Context) {
	path := filepath.Join(a.cfg.StateDir, RotateRequestFile)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
		if _, err := os.Stat(path); err != nil {
			continue
		}
		keyID, err := a.RotateKey()
		msg := "ok " + keyID
		if err != nil {
			msg = "error " + err.Error()
		}
		_ = atomicfile.Write(path+".done", []byte(msg), 0o600)
		os.Remove(path)
	}
}

// RequestRotation asks the daemon holding the state directory to rotate,
// and waits for its answer.
func RequestRotation(ctx context.Context, stateDir string) (string, error) {
	path := filepath.Join(stateDir, RotateRequestFile)
	os.Remove(path + ".done")
	if err := atomicfile.Write(path, []byte("rotate"), 0o600); err != nil {
		return "", err
	}
	for {
		select {
		case <-ctx.Done():
			return "", errors.New("the running agent did not answer the rotation request within the timeout")
		case <-time.After(500 * time.Millisecond):
		}
		b, err := os.ReadFile(path + ".done")
		if err != nil {
			continue
		}
		os.Remove(path + ".done")
		if s, ok := strings.CutPrefix(string(b), "ok "); ok {
			return s, nil
		}
		return "", errors.New(string(b))
	}
}
