package server_test

import (
	"math/rand/v2"
	"testing"
)

// Three thousand mutations of a valid batch (fixed seed: the same ones each
// run), plain and gzipped, each answered with a 4xx or 2xx and the API's
// JSON, never a 5xx; the fuzz target FuzzIngest explores further. Under the
// race detector (make test's run of the server), the first thousand: the
// race detector looks for races, which the first thousand reach as well,
// and the three thousand took half a minute of the test loop.
func TestMutatedBatchesNeverFailTheServer(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rig := newIngestRig(t)
	b := batch(rig.r1, rig.r2)
	n := 3000
	if raceEnabled {
		n = 1000
	}
	for i := 0; i < n; i++ {
		body := append([]byte(nil), b...)
		for k := 0; k < 1+rng.IntN(3); k++ {
			body[rng.IntN(len(body))] = byte(rng.IntN(256))
		}
		rig.post(t, body, rng.IntN(2) == 0)
	}
}
