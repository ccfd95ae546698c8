package store

import (
	"encoding/binary"
	"errors"
)

// A delta is a stored envelope written as the differences from another
// one: an agent's records of one collector are mostly the same hour to
// hour (the same packages, the same findings), and only the signature, the
// chain link, the timestamps and what changed are new. Compressing each
// record alone stores the repetition again every time; a delta stores it
// once, in its reference.
//
// The delta is a sequence of operations on the reference's stored form
// (its plain, uncompressed content): a literal run of new bytes, then a
// copy of a run of the reference's bytes, repeated, ending with a literal
// run. A copy's source is given relative to where the previous copy ended,
// so the usual case (the next bytes of the reference) is a zero that
// compresses to nothing.
//
//	op      = uvarint(literal length) literal [ varint(source - previous end) uvarint(copy length) ]
//
// The operations are found with a hash of every 8 bytes of the reference,
// extended both ways from each hit: linear in the two sizes.

// deltaMinMatch is the shortest copy worth an operation (its own bytes
// and the literal break it makes).
const deltaMinMatch = 16

// deltaMaxOut bounds what applying a delta may produce: envelopes are far
// smaller (the ingest body limit), so a delta claiming more is damaged.
const deltaMaxOut = 64 << 20

var errBadDelta = errors.New("stored delta is damaged")

// deltaIndex is a reference's hash of every 8 bytes: built once, it
// serves every record made against that reference (an agent's batch holds
// many of one collector).
type deltaIndex struct {
	ref   []byte
	bits  int
	table []int32 // a reference position + 1, 0 for none
}

func newDeltaIndex(ref []byte) *deltaIndex {
	bits := 10
	for 1<<bits < len(ref) && bits < 17 {
		bits++
	}
	x := &deltaIndex{ref: ref, bits: bits, table: make([]int32, 1<<bits)}
	for i := 0; i+8 <= len(ref); i++ {
		x.table[x.hash(ref[i:])] = int32(i + 1)
	}
	return x
}

func (x *deltaIndex) hash(b []byte) uint32 {
	return uint32((binary.LittleEndian.Uint64(b) * 0x9E3779B97F4A7C15) >> (64 - x.bits))
}

// encode is target as operations on x's reference, and how many of
// target's bytes it carries literally.
func (x *deltaIndex) encode(target []byte) (ops []byte, literal int) {
	ref, table, hash := x.ref, x.table, x.hash
	ops = make([]byte, 0, len(target)/8+64)
	lit, prevEnd := 0, 0
	for i := 0; i+8 <= len(target); {
		// Where the reference goes on if the bytes since the last copy
		// replaced as many of its own (the usual edit), else where the
		// hash says: in a repetitive record the hash's one candidate is
		// often a copy of the right bytes in the wrong place.
		c := prevEnd + i - lit
		if c+8 > len(ref) || string(ref[c:c+8]) != string(target[i:i+8]) {
			c = int(table[hash(target[i:])]) - 1
		}
		if c < 0 || string(ref[c:c+8]) != string(target[i:i+8]) {
			i++
			continue
		}
		s, r := i, c
		for s > lit && r > 0 && target[s-1] == ref[r-1] {
			s, r = s-1, r-1
		}
		e, re := i+8, c+8
		for e < len(target) && re < len(ref) && target[e] == ref[re] {
			e, re = e+1, re+1
		}
		if e-s < deltaMinMatch {
			i++
			continue
		}
		ops = binary.AppendUvarint(ops, uint64(s-lit))
		ops = append(ops, target[lit:s]...)
		literal += s - lit
		ops = binary.AppendVarint(ops, int64(r-prevEnd))
		ops = binary.AppendUvarint(ops, uint64(e-s))
		prevEnd, i, lit = re, e, e
	}
	ops = binary.AppendUvarint(ops, uint64(len(target)-lit))
	ops = append(ops, target[lit:]...)
	literal += len(target) - lit
	return ops, literal
}

// applyDelta reverses deltaIndex.encode: the target from ref and the
// operations.
// Anything out of bounds is damage, reported, never read past.
func applyDelta(ref, ops []byte) ([]byte, error) {
	out := make([]byte, 0, len(ref)+len(ops))
	prevEnd := 0
	for {
		n, k := binary.Uvarint(ops)
		if k <= 0 || n > uint64(len(ops)-k) || uint64(len(out))+n > deltaMaxOut {
			return nil, errBadDelta
		}
		out = append(out, ops[k:k+int(n)]...)
		ops = ops[k+int(n):]
		if len(ops) == 0 {
			return out, nil
		}
		off, k := binary.Varint(ops)
		if k <= 0 {
			return nil, errBadDelta
		}
		ops = ops[k:]
		m, k := binary.Uvarint(ops)
		if k <= 0 {
			return nil, errBadDelta
		}
		ops = ops[k:]
		src := int64(prevEnd) + off
		if m == 0 || src < 0 || src > int64(len(ref)) || m > uint64(int64(len(ref))-src) || uint64(len(out))+m > deltaMaxOut {
			return nil, errBadDelta
		}
		out = append(out, ref[src:src+int64(m)]...)
		prevEnd = int(src) + int(m)
	}
}
