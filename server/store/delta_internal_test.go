package store

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// mutate is ref with a few random edits: bytes changed, runs inserted,
// removed and moved, as one record differs from the one an hour before.
func mutate(r *rand.Rand, ref []byte) []byte {
	out := append([]byte(nil), ref...)
	for range r.IntN(8) {
		if len(out) == 0 {
			out = append(out, byte(r.IntN(256)))
			continue
		}
		i := r.IntN(len(out))
		switch r.IntN(4) {
		case 0:
			out[i] = byte(r.IntN(256))
		case 1:
			ins := make([]byte, r.IntN(40))
			for k := range ins {
				ins[k] = byte(r.IntN(256))
			}
			out = append(out[:i], append(ins, out[i:]...)...)
		case 2:
			out = append(out[:i], out[min(len(out), i+r.IntN(100)):]...)
		case 3:
			j := r.IntN(len(out))
			lo, hi := min(i, j), max(i, j)
			moved := append([]byte(nil), out[lo:hi]...)
			out = append(append(out[:lo:lo], out[hi:]...), moved...)
		}
	}
	return out
}

func TestDeltaRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := bytes.Repeat([]byte(`{"check":"patch_level.pending","package":"libssl3","version":"3.0.11-1~deb12u2"},`), 40)
	for i := range 500 {
		ref := base[:r.IntN(len(base))]
		if i%5 == 0 {
			ref = mutate(r, ref)
		}
		target := mutate(r, ref)
		if i%50 == 0 {
			target = []byte("nothing like it")
		}
		ops, literal := encodeDelta(ref, target)
		got, err := applyDelta(ref, ops)
		require.NoError(t, err)
		require.Equal(t, target, got, "case %d", i)
		require.LessOrEqual(t, literal, len(target))
	}
	// A small change to a large record is a small delta.
	target := append([]byte(nil), base...)
	copy(target[1000:], "3.0.11-1~deb12u3")
	ops, literal := encodeDelta(base, target)
	require.Less(t, literal, 64)
	require.Less(t, len(ops), 100)
}

// Operations out of bounds (a copy past the reference, before its start,
// of nothing, a literal past the end) are refused, never read past.
func TestDeltaDamageRefused(t *testing.T) {
	ref := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	ops, _ := encodeDelta(ref, []byte("xx0123456789abcdefghijklmnopqrstuvwxyzyy"))
	got, err := applyDelta(ref, ops)
	require.NoError(t, err)
	require.Equal(t, "xx0123456789abcdefghijklmnopqrstuvwxyzyy", string(got))
	for name, ops := range map[string][]byte{
		"copy past the end":     {0, 0, 40, 0},
		"copy before the start": {0, 1, 4, 0},
		"copy of nothing":       {0, 0, 0, 0},
		"literal past the end":  {9, 'a'},
		"cut after a literal":   {1, 'a', 0},
		"empty":                 {},
	} {
		_, err := applyDelta(ref, ops)
		require.ErrorIs(t, err, errBadDelta, name)
	}
}

func FuzzDelta(f *testing.F) {
	f.Add([]byte(`{"a":"0123456789abcdef0123456789"}`), []byte(`{"a":"0123456789abcdef0123456789","b":1}`), []byte{0, 0, 4, 1})
	f.Fuzz(func(t *testing.T, ref, target, ops []byte) {
		_, _ = applyDelta(ref, ops) // never panics nor reads out of bounds
		d, _ := encodeDelta(ref, target)
		got, err := applyDelta(ref, d)
		if err != nil || !bytes.Equal(got, target) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// encodeDelta is target as operations on ref, and how many of target's
// bytes it carries literally.
func encodeDelta(ref, target []byte) (ops []byte, literal int) {
	return newDeltaIndex(ref).encode(target)
}
