package chain

import "sort"

// seqs holds the 8-byte digest prefix of every record seen, by seq, in runs
// of consecutive seqs: 8 bytes per record and a few words per run. Memory
// follows the records given, never the seq numbers an agent wrote (a gap
// record claiming seqs 1 … 2^64-1 costs one run boundary, not 2^64 slots).
type seqs struct {
	runs []*seqRun // sorted by from, not overlapping, not adjacent
}

type seqRun struct {
	from uint64
	d    [][8]byte
}

func (r *seqRun) end() uint64 { return r.from + uint64(len(r.d)) } // one past the last seq

// find returns the index of the run holding seq, or where a run starting at
// seq would go, and whether seq is held.
func (s *seqs) find(seq uint64) (int, bool) {
	i := sort.Search(len(s.runs), func(i int) bool { return s.runs[i].end() > seq })
	return i, i < len(s.runs) && s.runs[i].from <= seq
}

// get returns the digest prefix at seq.
func (s *seqs) get(seq uint64) ([8]byte, bool) {
	i, ok := s.find(seq)
	if !ok {
		return [8]byte{}, false
	}
	r := s.runs[i]
	return r.d[seq-r.from], true
}

// put records a digest prefix at a seq not held yet.
func (s *seqs) put(seq uint64, d [8]byte) {
	i, _ := s.find(seq)
	// Extend the run before when seq follows it; join the run after when
	// seq precedes it.
	if i > 0 && s.runs[i-1].end() == seq {
		prev := s.runs[i-1]
		prev.d = append(prev.d, d)
		if i < len(s.runs) && s.runs[i].from == seq+1 {
			prev.d = append(prev.d, s.runs[i].d...)
			s.runs = append(s.runs[:i], s.runs[i+1:]...)
		}
		return
	}
	if i < len(s.runs) && s.runs[i].from == seq+1 {
		r := s.runs[i]
		r.d = append([][8]byte{d}, r.d...)
		r.from = seq
		return
	}
	s.runs = append(s.runs, nil)
	copy(s.runs[i+1:], s.runs[i:])
	s.runs[i] = &seqRun{from: seq, d: [][8]byte{d}}
}

// first is the lowest seq held.
func (s *seqs) first() (uint64, bool) {
	if len(s.runs) == 0 {
		return 0, false
	}
	return s.runs[0].from, true
}

// holes calls fn for each range of seqs in [from, to] that no run holds, in
// order.
func (s *seqs) holes(from, to uint64, fn func(a, b uint64)) {
	next := from
	for _, r := range s.runs {
		if r.end() <= next {
			continue
		}
		if r.from > to {
			break
		}
		if r.from > next {
			fn(next, r.from-1)
		}
		next = r.end()
		if next == 0 || next > to { // wrapped, or past the end
			return
		}
	}
	if next <= to {
		fn(next, to)
	}
}
