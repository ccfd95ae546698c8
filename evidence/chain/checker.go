package chain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
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

// Checker checks one agent's records as they come, in the order given. It
// keeps 8 bytes per record (a digest prefix: enough to tell a replay from a
// fork, since nobody can forge an agent-signed record whose digest
// collides), in runs of consecutive seqs, and the full digest of the last
// record, against which links are checked on arrival. A million-record
// chain costs 8 MB; the seq numbers an agent writes cost nothing (gaps are
// kept as ranges).
type Checker struct {
	agentID string
	keys    []Key
	start   Head

	base   uint64 // the first seq after the starting point
	seen   seqs
	maxSeq uint64
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
	var short [8]byte
	copy(short[:], d[:8])
	if had, ok := c.seen.get(seq); ok {
		if had == short {
			c.problem(Replay, index, seq, 0, "record "+rec.Digest[:12]+" seen before")
		} else {
			c.problem(Fork, index, seq, 0, fmt.Sprintf("record %s differs from %x seen first", rec.Digest[:12], had[:6]))
		}
		return
	}
	if g := p.Gap; g != nil && (g.To < g.From || g.To == math.MaxUint64) {
		c.problem(Malformed, index, seq, 0, fmt.Sprintf("gap record covering %d-%d: not a range a record can follow", g.From, g.To))
		return
	}
	if seq < c.maxSeq {
		c.problem(Reorder, index, seq, 0, fmt.Sprintf("arrived after seq %d", c.maxSeq))
	}
	c.records++
	c.seen.put(seq, short)

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
	if _, seen := c.seen.get(seq - 1); gapEnd || seen {
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
	short, _ := c.seen.get(seq)
	copy(l.d[:8], short[:])
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
	// Unexplained holes between the starting point and the highest seq:
	// what no record holds and no gap record covers.
	if c.maxSeq >= c.base {
		cov := coveredBy(c.gaps)
		c.seen.holes(c.base, c.maxSeq, func(a, b uint64) {
			cov.uncovered(a, b, func(a, b uint64) {
				c.problem(Gap, -1, a, b, fmt.Sprintf("%d record(s) missing, no gap record explains them", b-a+1))
			})
		})
	}
	r.First, _ = c.seen.first()
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
	short, _ := c.seen.get(c.maxSeq)
	return hex.EncodeToString(short[:])
}

// covered is the gap records' ranges (the seqs after each gap record,
// through To), sorted and merged, for finding what they leave uncovered.
type covered [][2]uint64

func coveredBy(gaps []evidence.Gap) covered {
	var c covered
	for _, g := range gaps {
		if g.From != math.MaxUint64 && g.From+1 <= g.To {
			c = append(c, [2]uint64{g.From + 1, g.To})
		}
	}
	sort.Slice(c, func(i, j int) bool { return c[i][0] < c[j][0] })
	merged := c[:0]
	for _, r := range c {
		if n := len(merged); n > 0 && (merged[n-1][1] == math.MaxUint64 || r[0] <= merged[n-1][1]+1) {
			merged[n-1][1] = max(merged[n-1][1], r[1])
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// uncovered calls fn for each part of [a, b] no range covers, in order.
func (c covered) uncovered(a, b uint64, fn func(a, b uint64)) {
	i := sort.Search(len(c), func(i int) bool { return c[i][1] >= a })
	for ; i < len(c) && c[i][0] <= b; i++ {
		if c[i][0] > a {
			fn(a, c[i][0]-1)
		}
		if c[i][1] >= b {
			return
		}
		a = c[i][1] + 1
	}
	fn(a, b)
}

// Check runs a Checker over envelopes in order and returns its report.
func Check(agentID string, keys []Key, start Head, envs []*dsse.Envelope) *Report {
	c := NewChecker(agentID, keys, start)
	for i, e := range envs {
		c.Add(i, e)
	}
	return c.Finish()
}
