package evidence

import (
	"errors"
	"fmt"
)

// KeySpan is the seqs one agent key signs: From through To, To 0 while it
// is the agent's current key. Every place that asks "which key signs this
// seq" (ingest, the chain checker, the bundle's key state, the verifier)
// keeps its keys with a KeySpan and asks KeyAt.
type KeySpan struct {
	From uint64 `json:"from_seq"`
	To   uint64 `json:"to_seq,omitempty"`
}

// Span returns the span itself; types that embed a KeySpan satisfy
// Spanned through it.
func (s *KeySpan) Span() *KeySpan { return s }

// Covers says whether seq is in the span.
func (s KeySpan) Covers(seq uint64) bool { return seq >= s.From && (s.To == 0 || seq <= s.To) }

// Spanned is a key with its span.
type Spanned interface{ Span() *KeySpan }

// Revocation says from where an agent's records are no longer valid. The
// zero value is an agent not revoked.
type Revocation struct {
	Revoked bool
	After   uint64 // the last seq still valid
}

// Allows says whether a record at seq is valid under the revocation.
func (r Revocation) Allows(seq uint64) bool { return !r.Revoked || seq <= r.After }

// Errors of KeyAt.
var (
	ErrNoKey   = errors.New("no key of the agent is valid at this seq")
	ErrRevoked = errors.New("record after the agent's revocation")
)

// KeyAt is the rule for which of an agent's keys signs a record at seq:
// none after a revocation; otherwise the newest key whose span covers seq
// (keys are in the order the log announced them, so after a rotation the
// new key wins where an unended old span would still cover). It returns
// the key's position in keys.
func KeyAt[K any, P interface {
	*K
	Spanned
}](keys []K, rev Revocation, seq uint64) (int, error) {
	if !rev.Allows(seq) {
		return -1, fmt.Errorf("%w (revoked after seq %d)", ErrRevoked, rev.After)
	}
	for i := len(keys) - 1; i >= 0; i-- {
		if P(&keys[i]).Span().Covers(seq) {
			return i, nil
		}
	}
	return -1, ErrNoKey
}

// RotateKeys is the rule for a rotation (a rotation record, a rotation key
// event, or a gap record that repeats a dropped rotation): every open key
// ends at fromSeq-1 and next, whose span RotateKeys sets to start at fromSeq,
// is appended. keys itself is not changed.
func RotateKeys[K any, P interface {
	*K
	Spanned
}](keys []K, fromSeq uint64, next K) []K {
	out := make([]K, 0, len(keys)+1)
	for _, k := range keys {
		if sp := P(&k).Span(); sp.To == 0 {
			sp.To = fromSeq - 1
		}
		out = append(out, k)
	}
	*P(&next).Span() = KeySpan{From: fromSeq}
	return append(out, next)
}
