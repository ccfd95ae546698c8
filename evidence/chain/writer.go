// Package chain keeps an agent's records in one hash chain: every record
// carries seq (1, 2, 3, … across key rotations) and prev, the digest of the
// record before it. The Writer assigns them; the Checker finds every way a
// sequence of records can fail to be that chain.
package chain

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/dsse"
)

// Head is the position of the last record written: its seq and digest. A
// new agent's head is {0, genesis}, genesis being the digest of its
// enrollment statement, so the first record links to the enrollment.
type Head struct {
	Seq    uint64 `json:"seq"`
	Digest string `json:"digest"`
}

// Signed is a record as the writer produced it.
type Signed struct {
	Envelope *dsse.Envelope
	// JSON is the envelope as it is stored and shipped, verbatim.
	JSON   []byte
	Record *evidence.Record
}

// Writer signs records and chains them. It is safe for concurrent use:
// collectors finishing at the same moment still get distinct, consecutive
// seqs.
type Writer struct {
	mu      sync.Mutex
	agentID string
	key     ed25519.PrivateKey
	head    Head
}

// NewWriter continues the chain of agentID from head.
func NewWriter(agentID string, key ed25519.PrivateKey, head Head) (*Writer, error) {
	if agentID == "" {
		return nil, errors.New("chain writer: empty agent id")
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("chain writer: %w", dsse.ErrBadPrivateKey)
	}
	if len(head.Digest) != 64 {
		return nil, fmt.Errorf("chain writer: head digest %q is not a hex sha256", head.Digest)
	}
	return &Writer{agentID: agentID, key: key, head: head}, nil
}

// Head returns the position of the last record written.
func (w *Writer) Head() Head {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.head
}

// Entry is what a collector run contributes to a record.
type Entry struct {
	Asset            evidence.Asset
	Collector        string
	CollectorVersion string
	CollectedAt      time.Time
	Results          []evidence.Result
}

// Append signs e as the next record of the chain.
func (w *Writer) Append(e Entry) (*Signed, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, err := w.sign(e.Asset, evidence.Predicate{
		Collector:        e.Collector,
		CollectorVersion: e.CollectorVersion,
		CollectedAt:      e.CollectedAt,
		Results:          e.Results,
	}, w.key)
	if err != nil {
		return nil, err
	}
	w.head = Head{Seq: s.Record.Predicate.Seq, Digest: s.Record.Digest}
	return s, nil
}

// Rotate writes the record that announces next, signed with the current key,
// and makes next the key of every later record.
func (w *Writer) Rotate(asset evidence.Asset, next ed25519.PrivateKey, at time.Time) (*Signed, error) {
	if len(next) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("rotate: %w", dsse.ErrBadPrivateKey)
	}
	pub := next.Public().(ed25519.PublicKey)
	w.mu.Lock()
	defer w.mu.Unlock()
	s, err := w.sign(asset, evidence.Predicate{
		Collector:   evidence.RotationCollector,
		CollectedAt: at,
		Rotation:    &evidence.Rotation{NewKeyID: dsse.KeyID(pub), NewPublic: pub},
	}, w.key)
	if err != nil {
		return nil, err
	}
	w.head = Head{Seq: s.Record.Predicate.Seq, Digest: s.Record.Digest}
	w.key = next
	return s, nil
}

func (w *Writer) sign(asset evidence.Asset, p evidence.Predicate, key ed25519.PrivateKey) (*Signed, error) {
	p.AgentID = w.agentID
	p.Seq = w.head.Seq + 1
	p.Prev = w.head.Digest
	return signPredicate(asset, p, key)
}

// SignGap signs the record that explains dropped records from..to. It stands
// in the chain at seq from (so prev is the digest of record from-1), and the
// record after the hole links to lastDigest, the digest of the dropped record
// to. It does not move the writer's head: the hole lies behind it.
//
// key must be the agent's key valid at seq from. If the dropped range held
// a rotation record, rot repeats its announcement (the newest), so that the
// key the records after the gap are signed with is still announced, by the
// gap record, valid from from+1.
func SignGap(key ed25519.PrivateKey, agentID string, asset evidence.Asset, from, to uint64, prev, lastDigest, reason string, at time.Time, rot *evidence.Rotation) (*Signed, error) {
	if from == 0 || to < from {
		return nil, fmt.Errorf("gap record: bad range %d-%d", from, to)
	}
	return signPredicate(asset, evidence.Predicate{
		AgentID:     agentID,
		Seq:         from,
		Prev:        prev,
		Collector:   evidence.GapCollector,
		CollectedAt: at,
		Gap:         &evidence.Gap{From: from, To: to, LastDigest: lastDigest, Reason: reason},
		Rotation:    rot,
	}, key)
}

func signPredicate(asset evidence.Asset, p evidence.Predicate, key ed25519.PrivateKey) (*Signed, error) {
	st, err := evidence.NewStatement(asset, p)
	if err != nil {
		return nil, fmt.Errorf("record %d: %w", p.Seq, err)
	}
	env, err := evidence.SignStatement(key, st)
	if err != nil {
		return nil, fmt.Errorf("record %d: %w", p.Seq, err)
	}
	raw, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("record %d: %w", p.Seq, err)
	}
	// Parse back what was signed: the record the rest of the system sees is
	// the one in the bytes, and a writer bug shows here rather than at ingest.
	rec, err := evidence.ParseRecord(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("record %d: %w", p.Seq, err)
	}
	return &Signed{Envelope: env, JSON: raw, Record: rec}, nil
}

// Reset moves the head back, after a signed record could not be stored
// durably: that record never existed, and its seq is used again.
func (w *Writer) Reset(h Head) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.head = h
}

// Key returns the key the writer signs with.
func (w *Writer) Key() ed25519.PrivateKey {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.key
}
