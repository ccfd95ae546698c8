package chain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/dsse"
)

// Kind names a problem the checker can find.
type Kind string

// The problems a chain can have. Each is reported with the seq (and for a
// gap, the seq range) it concerns.
const (
	Malformed        Kind = "malformed"         // not an envelope, or not a record
	WrongAgent       Kind = "wrong_agent"       // a record of another agent
	UnknownKey       Kind = "unknown_key"       // no key was valid for this seq
	BadSignature     Kind = "bad_signature"     // signature does not verify under the key valid for this seq
	Gap              Kind = "gap"               // seqs missing with no gap record to explain them
	Reorder          Kind = "reorder"           // a seq arrived after a higher one
	Replay           Kind = "replay"            // the same record again
	Fork             Kind = "fork"              // same seq, different record
	BrokenLink       Kind = "broken_link"       // prev does not match the record before
	RotationMismatch Kind = "rotation_mismatch" // a rotation record announces a key the key list does not show from the next seq
)

// Problem is one finding, with enough to locate it: the position in the
// input (Index), the seq (and To for a range) and a sentence.
type Problem struct {
	Kind   Kind   `json:"kind"`
	Index  int    `json:"index"` // position in the input; -1 for a range found at the end
	Seq    uint64 `json:"seq"`
	To     uint64 `json:"to,omitempty"`
	Detail string `json:"detail"`
}

func (p Problem) String() string {
	if p.To > p.Seq {
		return fmt.Sprintf("%s at seq %d-%d: %s", p.Kind, p.Seq, p.To, p.Detail)
	}
	return fmt.Sprintf("%s at seq %d: %s", p.Kind, p.Seq, p.Detail)
}

// Key is an agent key with the seqs it was valid for (To 0: still valid).
type Key struct {
	Public ed25519.PublicKey
	evidence.KeySpan
}

// Report is the outcome of checking one agent's records.
type Report struct {
	AgentID   string         `json:"agent_id"`
	Records   int            `json:"records"`
	First     uint64         `json:"first_seq"`
	Last      uint64         `json:"last_seq"`
	Head      Head           `json:"head"`
	Explained []evidence.Gap `json:"explained_gaps,omitempty"`
	Problems  []Problem      `json:"problems,omitempty"`
}

// OK reports whether the chain had no problem. Explained gaps are not problems.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Err returns an error listing the problems, or nil.
func (r *Report) Err() error {
	if r.OK() {
		return nil
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "agent %s: %d chain problem(s)", r.AgentID, len(r.Problems))
	for _, p := range r.Problems {
		b.WriteString("; ")
		b.WriteString(p.String())
	}
	return errors.New(b.String())
}

const (
	slotEmpty byte = iota
	slotRecord
	slotCovered // inside a gap record's range
)

// Checker checks one agent's records as they come, in the order given. It
// keeps 9 bytes per seq (a state byte and an 8-byte digest prefix: enough to
// tell a replay from a fork, since nobody can forge an agent-signed record
// whose digest collides) and the full digest of the last record, against
// which links are checked on arrival. A million-record chain costs 9 MB.
type Checker struct {
	agentID string
	keys    []Key
	start   Head

	base    uint64 // seq of slot 0 (start.Seq+1)
	digests [][8]byte
	state   []byte
	maxSeq  uint64
	// The full digest of the record tracked last, for the in-order case.
	lastSeq    uint64
	lastDigest [32]byte

	links   map[uint64][32]byte // digest the record after seq must link to, where it is not digest(seq): gap ends
	pending map[uint64]pendingLink
	gaps    []evidence.Gap
	// rotations maps the seq after a rotation record to the key it announced.
	rotations  map[uint64]ed25519.PublicKey
	rotationAt map[uint64]int

	records  int
	problems []Problem
}

type pendingLink struct {
	prev  [32]byte
	index int
}

// NewChecker checks the records of agentID under keys. start is the last
// record known before the ones to check ({0, genesis} for a whole chain); an
// empty start.Digest means the first record's link is not checked.
func NewChecker(agentID string, keys []Key, start Head) *Checker {
	return &Checker{
		agentID:    agentID,
		keys:       keys,
		start:      start,
		base:       start.Seq + 1,
		links:      map[uint64][32]byte{},
		pending:    map[uint64]pendingLink{},
		rotations:  map[uint64]ed25519.PublicKey{},
		rotationAt: map[uint64]int{},
	}
}

// Rotate ends the open key at fromSeq-1 and adds pub from fromSeq, as a
// rotation key event says: a caller replaying a log learns keys as it goes.
func (c *Checker) Rotate(fromSeq uint64, pub ed25519.PublicKey) {
	c.keys = evidence.RotateKeys(c.keys, fromSeq, Key{Public: pub})
}

// KeyFor returns the key valid at seq.
func (c *Checker) KeyFor(seq uint64) (ed25519.PublicKey, bool) {
	i, err := evidence.KeyAt(c.keys, evidence.Revocation{}, seq)
	if err != nil {
		return nil, false
	}
	return c.keys[i].Public, true
}

// Add verifies env and tracks its record. index is its position in the
// input, used in reports.
func (c *Checker) Add(index int, env *dsse.Envelope) {
	rec, err := evidence.ParseRecord(env.Payload)
	if err != nil {
		c.problem(Malformed, index, 0, 0, err.Error())
		return
	}
	seq := rec.Predicate.Seq
	if rec.Predicate.AgentID != c.agentID {
		c.problem(WrongAgent, index, seq, 0, fmt.Sprintf("record of agent %s", rec.Predicate.AgentID))
		return
	}
	key, ok := c.KeyFor(seq)
	if !ok {
		c.problem(UnknownKey, index, seq, 0, "no key of agent "+c.agentID+" is valid at this seq")
		return
	}
	if err := evidence.VerifyRecord(env, key); err != nil {
		c.problem(BadSignature, index, seq, 0, err.Error())
		return
	}
	c.Track(index, rec)
}

// AddJSON parses and adds an envelope in its JSON form.
func (c *Checker) AddJSON(index int, raw []byte) {
	env, err := dsse.Parse(raw)
	if err != nil {
		c.problem(Malformed, index, 0, 0, err.Error())
		return
	}
	c.Add(index, env)
}

// Track adds a record whose signature the caller has already verified under
// KeyFor(its seq), e.g. in parallel.
func (c *Checker) Track(index int, rec *evidence.Record) {
	p := &rec.Predicate
	seq := p.Seq
	if p.AgentID != c.agentID {
		c.problem(WrongAgent, index, seq, 0, fmt.Sprintf("record of agent %s", p.AgentID))
		return
	}
	var d [32]byte
	if _, err := hex.Decode(d[:], []byte(rec.Digest)); err != nil {
		c.problem(Malformed, index, seq, 0, "bad digest")
		return
	}
	if seq < c.base {
		c.problem(Replay, index, seq, 0, fmt.Sprintf("seq %d is at or before the starting point %d", seq, c.start.Seq))
		return
	}
	i := seq - c.base
	c.grow(i)
	var short [8]byte
	copy(short[:], d[:8])
	switch c.state[i] {
	case slotRecord:
		if c.digests[i] == short {
			c.problem(Replay, index, seq, 0, "record "+rec.Digest[:12]+" seen before")
		} else {
			c.problem(Fork, index, seq, 0, fmt.Sprintf("record %s differs from %x seen first", rec.Digest[:12], c.digests[i][:6]))
		}
		return
	}
	if seq < c.maxSeq {
		c.problem(Reorder, index, seq, 0, fmt.Sprintf("arrived after seq %d", c.maxSeq))
	}
	c.records++
	c.state[i] = slotRecord
	c.digests[i] = short

	var prev [32]byte
	if _, err := hex.Decode(prev[:], []byte(p.Prev)); err != nil {
		c.problem(Malformed, index, seq, 0, "bad prev")
	}
	c.checkLink(index, seq, prev)

	last := seq
	if g := p.Gap; g != nil {
		c.gaps = append(c.gaps, *g)
		var ld [32]byte
		_, _ = hex.Decode(ld[:], []byte(g.LastDigest))
		c.links[g.To] = ld
		c.grow(g.To - c.base)
		for s := g.From + 1; s <= g.To; s++ {
			if c.state[s-c.base] == slotEmpty {
				c.state[s-c.base] = slotCovered
			}
		}
		last = g.To
	}
	if r := p.Rotation; r != nil {
		// Compared with the key list at Finish: a log replay learns the new
		// key from the key event that follows this record.
		c.rotations[seq+1] = r.NewPublic
		c.rotationAt[seq+1] = index
	}
	if last > c.maxSeq {
		c.maxSeq = last
	}
	c.lastSeq, c.lastDigest = seq, d
	// A record that arrived early waits for this one.
	if pl, ok := c.pending[last+1]; ok {
		delete(c.pending, last+1)
		c.compareLink(pl.index, last+1, pl.prev, c.linkOf(last))
	}
}

// checkLink compares a record's prev with the digest it must link to, or
// parks it until the record before it arrives.
func (c *Checker) checkLink(index int, seq uint64, prev [32]byte) {
	if seq == c.base {
		if c.start.Digest == "" {
			return
		}
		var want [32]byte
		if _, err := hex.Decode(want[:], []byte(c.start.Digest)); err != nil {
			return
		}
		c.compareLink(index, seq, prev, link{want, true})
		return
	}
	_, gapEnd := c.links[seq-1]
	if gapEnd || c.state[seq-1-c.base] == slotRecord {
		c.compareLink(index, seq, prev, c.linkOf(seq-1))
		return
	}
	c.pending[seq] = pendingLink{prev: prev, index: index}
}

// link is what the record after seq must carry as prev: in full when known
// (the last record, a gap's end), else its 8-byte prefix.
type link struct {
	d    [32]byte
	full bool
}

func (c *Checker) linkOf(seq uint64) link {
	if d, ok := c.links[seq]; ok {
		return link{d, true}
	}
	if seq == c.lastSeq && c.lastSeq != 0 {
		return link{c.lastDigest, true}
	}
	var l link
	copy(l.d[:8], c.digests[seq-c.base][:])
	return l
}

func (c *Checker) compareLink(index int, seq uint64, prev [32]byte, want link) {
	ok := prev == want.d
	if !want.full {
		ok = [8]byte(prev[:8]) == [8]byte(want.d[:8])
	}
	if !ok {
		c.problem(BrokenLink, index, seq, 0, fmt.Sprintf("prev %x… does not match %x…, the digest of seq %d", prev[:6], want.d[:6], seq-1))
	}
}

func (c *Checker) grow(i uint64) {
	for uint64(len(c.state)) <= i {
		c.state = append(c.state, slotEmpty)
		c.digests = append(c.digests, [8]byte{})
	}
}

func (c *Checker) problem(k Kind, index int, seq, to uint64, detail string) {
	c.problems = append(c.problems, Problem{Kind: k, Index: index, Seq: seq, To: to, Detail: detail})
}

// Finish reports what was found, including the seq ranges nothing covered.
func (c *Checker) Finish() *Report {
	r := &Report{AgentID: c.agentID, Records: c.records, Explained: c.gaps}
	for next, pub := range c.rotations {
		if k, ok := c.KeyFor(next); !ok || !bytes.Equal(k, pub) {
			c.problem(RotationMismatch, c.rotationAt[next], next-1, 0, fmt.Sprintf("announces key %s, but the key list has another (or none) from seq %d", hex.EncodeToString(pub)[:12], next))
		}
	}
	// Unexplained holes between the starting point and the highest seq.
	var from uint64
	for i, st := range c.state {
		seq := c.base + uint64(i)
		if seq > c.maxSeq {
			break
		}
		if st == slotEmpty {
			if from == 0 {
				from = seq
			}
			continue
		}
		if from != 0 {
			c.problem(Gap, -1, from, seq-1, fmt.Sprintf("%d record(s) missing, no gap record explains them", seq-from))
			from = 0
		}
	}
	for i, st := range c.state {
		if st == slotRecord {
			r.First = c.base + uint64(i)
			break
		}
	}
	r.Last = c.maxSeq
	if c.maxSeq >= c.base {
		r.Head = Head{Seq: c.maxSeq, Digest: c.headDigest()}
	} else {
		r.Head = c.start
	}
	sort.SliceStable(c.problems, func(i, j int) bool { return c.problems[i].Seq < c.problems[j].Seq })
	r.Problems = c.problems
	return r
}

// headDigest is the full digest the next record must link to.
func (c *Checker) headDigest() string {
	if d, ok := c.links[c.maxSeq]; ok {
		return hex.EncodeToString(d[:])
	}
	if c.lastSeq == c.maxSeq {
		return hex.EncodeToString(c.lastDigest[:])
	}
	// The highest seq arrived before the last one (out of order): only its
	// prefix is kept, so the head names it as such.
	return hex.EncodeToString(c.digests[c.maxSeq-c.base][:])
}

// Check runs a Checker over envelopes in order and returns its report.
func Check(agentID string, keys []Key, start Head, envs []*dsse.Envelope) *Report {
	c := NewChecker(agentID, keys, start)
	for i, e := range envs {
		c.Add(i, e)
	}
	return c.Finish()
}
