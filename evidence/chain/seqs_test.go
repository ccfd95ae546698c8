package chain

import (
	"crypto/ed25519"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence"
)

func TestSeqsRuns(t *testing.T) {
	var s seqs
	d := func(n byte) [8]byte { return [8]byte{n} }
	for _, seq := range []uint64{1, 2, 3, 7, 5, 6, 10, math.MaxUint64 - 1} {
		s.put(seq, d(byte(seq)))
	}
	// 5,6,7 joined into one run; 1-3, 5-7, 10 and the far one apart.
	assert.Len(t, s.runs, 4)
	s.put(4, d(4))
	assert.Len(t, s.runs, 3, "4 joins 1-3 and 5-7")
	for _, seq := range []uint64{1, 4, 7, 10} {
		got, ok := s.get(seq)
		assert.True(t, ok, seq)
		assert.Equal(t, d(byte(seq)), got)
	}
	_, ok := s.get(8)
	assert.False(t, ok)
	var holes [][2]uint64
	s.holes(1, 20, func(a, b uint64) { holes = append(holes, [2]uint64{a, b}) })
	assert.Equal(t, [][2]uint64{{8, 9}, {11, 20}}, holes)
	holes = nil
	s.holes(1, math.MaxUint64, func(a, b uint64) { holes = append(holes, [2]uint64{a, b}) })
	assert.Equal(t, [][2]uint64{{8, 9}, {11, math.MaxUint64 - 2}, {math.MaxUint64, math.MaxUint64}}, holes)
	first, _ := s.first()
	assert.Equal(t, uint64(1), first)
}

func TestCoveredUncovered(t *testing.T) {
	cov := coveredBy([]evidence.Gap{{From: 10, To: 20}, {From: 15, To: 30}, {From: 40, To: 45}, {From: 100, To: math.MaxUint64 - 1}})
	var got [][2]uint64
	cov.uncovered(1, 200, func(a, b uint64) { got = append(got, [2]uint64{a, b}) })
	assert.Equal(t, [][2]uint64{{1, 10}, {31, 40}, {46, 100}}, got)
	got = nil
	cov.uncovered(12, 14, func(a, b uint64) { got = append(got, [2]uint64{a, b}) })
	assert.Empty(t, got)
}

// A gap record claiming almost every seq there is costs the checker a run
// boundary, not a slot per seq; one ending at the largest seq, which no
// record could follow, is refused.
func TestHugeGapCostsNothing(t *testing.T) {
	_, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	pub := key.Public().(ed25519.PublicKey)
	w, err := NewWriter("agt-a", key, Head{Digest: evidence.Digest([]byte("genesis"))})
	require.NoError(t, err)
	first, err := w.Append(Entry{Asset: evidence.HostAsset("agt-a"), Collector: "c", CollectorVersion: "1", CollectedAt: time.Now(), Results: []evidence.Result{{Check: "c.x", Status: evidence.Pass, Reason: "ok"}}})
	require.NoError(t, err)
	_, err = SignGap(key, "agt-a", evidence.HostAsset("agt-a"), 2, math.MaxUint64, first.Record.Digest, first.Record.Digest, "dropped", time.Now(), nil)
	require.ErrorContains(t, err, "no record could follow it", "a record that ends the chain is not even signed")
	for _, tc := range []struct {
		to   uint64
		want Kind
	}{{1 << 62, ""}, {math.MaxUint64 - 1, ""}} {
		gap, err := SignGap(key, "agt-a", evidence.HostAsset("agt-a"), 2, tc.to, first.Record.Digest, first.Record.Digest, "dropped", time.Now(), nil)
		require.NoError(t, err)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := NewChecker("agt-a", []Key{{Public: pub, KeySpan: evidence.KeySpan{From: 1}}}, Head{Digest: evidence.Digest([]byte("genesis"))})
		c.Add(0, first.Envelope)
		c.Add(1, gap.Envelope)
		r := c.Finish()
		runtime.ReadMemStats(&after)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "to=%d: memory follows the records, not the seqs", tc.to)
		if tc.want == "" {
			assert.True(t, r.OK(), "%v", r.Problems)
			assert.Equal(t, tc.to, r.Head.Seq)
		} else {
			require.NotEmpty(t, r.Problems)
			assert.Equal(t, tc.want, r.Problems[0].Kind)
		}
	}
}
