package server

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The seq/fork/gap rule on its own: the agent's head is seq 5 with digest
// "d5"; the log holds d1..d5 except seqs 2-3, which a gap record explained.
func TestDecideSeq(t *testing.T) {
	log := map[uint64]string{1: "d1", 4: "d4", 5: "d5"}
	known := func(seq uint64) (string, int64, bool, error) {
		d, ok := log[seq]
		return d, int64(seq) * 10, ok, nil
	}
	for _, tc := range []struct {
		name         string
		seq          uint64
		prev, digest string
		want         seqVerdict
		wantDigest   string
	}{
		{"next, linked", 6, "d5", "d6", seqAccept, ""},
		{"next, prev elsewhere", 6, "d4", "d6", seqBrokenLink, ""},
		{"resent, same record", 4, "x", "d4", seqDuplicate, "d4"},
		{"resent head", 5, "d4", "d5", seqDuplicate, "d5"},
		{"same seq, other record", 4, "x", "evil", seqFork, "d4"},
		{"inside an explained gap", 2, "d1", "d2", seqExplained, ""},
		{"ahead of the next", 8, "d7", "d8", seqAhead, ""},
		{"far ahead", 1 << 62, "x", "y", seqAhead, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, other, err := decideSeq(5, "d5", tc.seq, tc.prev, tc.digest, known)
			require.NoError(t, err)
			assert.Equal(t, tc.want, v)
			assert.Equal(t, tc.wantDigest, other.digest)
			if tc.wantDigest != "" {
				assert.Equal(t, int64(tc.seq)*10, other.index, "the receipt cites where the log holds it")
			}
		})
	}
	t.Run("a failed lookup is an error, never a verdict", func(t *testing.T) {
		boom := errors.New("disk gone")
		_, _, err := decideSeq(5, "d5", 3, "d2", "d3", func(uint64) (string, int64, bool, error) { return "", 0, false, boom })
		require.ErrorIs(t, err, boom)
	})
	t.Run("a first record links to the enrollment", func(t *testing.T) {
		v, _, err := decideSeq(0, "genesis", 1, "genesis", "d1", known)
		require.NoError(t, err)
		assert.Equal(t, seqAccept, v)
	})
}
