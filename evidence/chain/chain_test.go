package chain

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/dsse"
)

var genesis = evidence.Digest([]byte("enrollment statement"))

const agent = "agent-1"

func newKey(t testing.TB) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	return priv
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// write produces n records from a fresh chain.
func write(t testing.TB, key ed25519.PrivateKey, n int) (*Writer, []*Signed) {
	return writeFrom(t, key, n, 0)
}

// writeFrom makes a chain whose timestamps start at offset seconds, so two
// chains with the same key differ (ed25519 signatures are deterministic).
func writeFrom(t testing.TB, key ed25519.PrivateKey, n, offset int) (*Writer, []*Signed) {
	w, err := NewWriter(agent, key, Head{Digest: genesis})
	require.NoError(t, err)
	var out []*Signed
	for i := 0; i < n; i++ {
		s, err := w.Append(entry(i + offset))
		require.NoError(t, err)
		out = append(out, s)
	}
	return w, out
}

func entry(i int) Entry {
	return Entry{
		Asset:            evidence.HostAsset(agent),
		Collector:        "disk_encryption",
		CollectorVersion: "1.0.0",
		CollectedAt:      time.Date(2026, 3, 1, 12, 0, i, 0, time.UTC),
		Results: []evidence.Result{{
			Check: "disk_encryption.system_volume", Status: evidence.Pass,
			Reason: "root is on LUKS2", Observations: evidence.Observe(map[string]int{"i": i}),
		}},
	}
}

func envs(ss []*Signed) []*dsse.Envelope {
	out := make([]*dsse.Envelope, len(ss))
	for i, s := range ss {
		out[i] = s.Envelope
	}
	return out
}

func kinds(r *Report) []string {
	var out []string
	for _, p := range r.Problems {
		out = append(out, fmt.Sprintf("%s@%d-%d", p.Kind, p.Seq, p.To))
	}
	return out
}

func TestCleanChain(t *testing.T) {
	key := newKey(t)
	w, recs := write(t, key, 5)
	require.Equal(t, uint64(5), w.Head().Seq)
	keys := []Key{{Public: pub(key), KeySpan: evidence.KeySpan{From: 1}}}
	r := Check(agent, keys, Head{Digest: genesis}, envs(recs))
	require.True(t, r.OK(), r.Err())
	require.Equal(t, 5, r.Records)
	require.Equal(t, uint64(1), r.First)
	require.Equal(t, uint64(5), r.Last)
	require.Equal(t, w.Head(), r.Head)

	// The first record links to the enrollment: another genesis is a break.
	r = Check(agent, keys, Head{Digest: evidence.Digest([]byte("other"))}, envs(recs))
	require.Equal(t, []string{"broken_link@1-0"}, kinds(r))
}

func TestEachProblemKind(t *testing.T) {
	key := newKey(t)
	_, recs := write(t, key, 6)
	keys := []Key{{Public: pub(key), KeySpan: evidence.KeySpan{From: 1}}}
	start := Head{Digest: genesis}
	e := envs(recs)

	// Another chain of the same agent id and key, to make forks from.
	_, other := writeFrom(t, key, 4, 100)
	otherAgentKey := newKey(t)
	w2, err := NewWriter("agent-2", otherAgentKey, Head{Digest: genesis})
	require.NoError(t, err)
	foreign, err := w2.Append(entry(0))
	require.NoError(t, err)

	forged := *e[2]
	forged.Signatures = []dsse.Signature{{Sig: ed25519.Sign(newKey(t), dsse.PAE(forged.PayloadType, forged.Payload))}}

	cases := []struct {
		name string
		in   []*dsse.Envelope
		keys []Key
		want []string
	}{
		{"gap", []*dsse.Envelope{e[0], e[1], e[4], e[5]}, keys, []string{"gap@3-4"}},
		{"reorder", []*dsse.Envelope{e[0], e[2], e[1], e[3]}, keys, []string{"reorder@2-0"}},
		{"replay", []*dsse.Envelope{e[0], e[1], e[2], e[1], e[3]}, keys, []string{"replay@2-0"}},
		{"fork", []*dsse.Envelope{e[0], e[1], e[2], other[2].Envelope}, keys, []string{"fork@3-0"}},
		{"bad signature", []*dsse.Envelope{e[0], e[1], &forged, e[3]}, keys, []string{"bad_signature@3-0", "gap@3-3"}},
		{"unknown key", e[:3], []Key{{Public: pub(key), KeySpan: evidence.KeySpan{From: 1, To: 2}}}, []string{"unknown_key@3-0"}},
		{"wrong agent", []*dsse.Envelope{e[0], foreign.Envelope}, keys, []string{"wrong_agent@1-0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Check(agent, tc.keys, start, tc.in)
			require.ElementsMatch(t, tc.want, kinds(r), "%v", r.Problems)
			require.Error(t, r.Err())
		})
	}
}

// A record substituted in the middle (same seq, signed by the agent, but not
// the original) breaks the link of the record after it.
func TestSubstitutionBreaksLink(t *testing.T) {
	key := newKey(t)
	_, recs := write(t, key, 4)
	_, other := writeFrom(t, key, 4, 100)
	in := envs(recs)
	// Seq 2 of a parallel history: its prev names another seq 1, and seq 3
	// names the original seq 2.
	in[1] = other[1].Envelope
	r := Check(agent, []Key{{Public: pub(key), KeySpan: evidence.KeySpan{From: 1}}}, Head{Digest: genesis}, in)
	require.ElementsMatch(t, []string{"broken_link@2-0", "broken_link@3-0"}, kinds(r))
}

func TestExplainedGap(t *testing.T) {
	key := newKey(t)
	_, recs := write(t, key, 8)
	// The agent dropped 3..5 and writes a gap record in their place.
	gap, err := SignGap(key, agent, evidence.HostAsset(agent), 3, 5, recs[1].Record.Digest, recs[4].Record.Digest, "outbox full", time.Now(), nil)
	require.NoError(t, err)
	in := []*dsse.Envelope{recs[0].Envelope, recs[1].Envelope, recs[5].Envelope, recs[6].Envelope, recs[7].Envelope, gap.Envelope}
	r := Check(agent, []Key{{Public: pub(key), KeySpan: evidence.KeySpan{From: 1}}}, Head{Digest: genesis}, in)
	// The gap record came last: seq 3 arrives after seq 8, which is a
	// reorder, but nothing is missing and every link holds.
	require.Equal(t, []string{"reorder@3-0"}, kinds(r))
	require.Len(t, r.Explained, 1)
	require.Equal(t, uint64(5), r.Explained[0].To)

	// In order, the chain is clean.
	in = []*dsse.Envelope{recs[0].Envelope, recs[1].Envelope, gap.Envelope, recs[5].Envelope, recs[6].Envelope, recs[7].Envelope}
	r = Check(agent, []Key{{Public: pub(key), KeySpan: evidence.KeySpan{From: 1}}}, Head{Digest: genesis}, in)
	require.True(t, r.OK(), r.Err())
	require.Equal(t, uint64(8), r.Last)

	// A gap record that lies about the last dropped digest is caught at the
	// record after the hole.
	liar, err := SignGap(key, agent, evidence.HostAsset(agent), 3, 5, recs[1].Record.Digest, recs[3].Record.Digest, "outbox full", time.Now(), nil)
	require.NoError(t, err)
	in[2] = liar.Envelope
	r = Check(agent, []Key{{Public: pub(key), KeySpan: evidence.KeySpan{From: 1}}}, Head{Digest: genesis}, in)
	require.Equal(t, []string{"broken_link@6-0"}, kinds(r))
}

func TestRotation(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	w, recs := write(t, k1, 3)
	rot, err := w.Rotate(evidence.HostAsset(agent), k2, time.Now())
	require.NoError(t, err)
	require.Equal(t, uint64(4), rot.Record.Predicate.Seq)
	after, err := w.Append(entry(9))
	require.NoError(t, err)
	require.Equal(t, uint64(5), after.Record.Predicate.Seq)
	in := append(envs(recs), rot.Envelope, after.Envelope)

	good := []Key{{Public: pub(k1), KeySpan: evidence.KeySpan{From: 1, To: 4}}, {Public: pub(k2), KeySpan: evidence.KeySpan{From: 5}}}
	r := Check(agent, good, Head{Digest: genesis}, in)
	require.True(t, r.OK(), r.Err())

	// The old key may not sign past the rotation.
	r = Check(agent, []Key{{Public: pub(k1), KeySpan: evidence.KeySpan{From: 1, To: 4}}, {Public: pub(newKey(t)), KeySpan: evidence.KeySpan{From: 5}}}, Head{Digest: genesis}, in)
	require.ElementsMatch(t, []string{"rotation_mismatch@4-0", "bad_signature@5-0"}, kinds(r))
}

// Flipping any single byte of a signed envelope's JSON is detected: as a
// parse error, a bad signature, or a different record.
func TestEveryByteFlipDetected(t *testing.T) {
	key := newKey(t)
	_, recs := write(t, key, 1)
	raw := recs[0].JSON
	keys := []Key{{Public: pub(key), KeySpan: evidence.KeySpan{From: 1}}}
	var env struct {
		Payload string `json:"payload"`
	}
	require.NoError(t, json.Unmarshal(raw, &env))
	for i := range raw {
		mut := append([]byte(nil), raw...)
		mut[i] ^= 0x01
		c := NewChecker(agent, keys, Head{Digest: genesis})
		c.AddJSON(0, mut)
		r := c.Finish()
		if r.OK() {
			// Only a flip that leaves the signed bytes untouched may pass:
			// the keyid hint, or JSON whitespace-equivalent spellings.
			e, err := dsse.Parse(mut)
			require.NoError(t, err)
			require.Equal(t, recs[0].Envelope.Payload, e.Payload, "byte %d changed the payload undetected", i)
			require.Equal(t, recs[0].Envelope.Signatures[0].Sig, e.Signatures[0].Sig, "byte %d", i)
		}
	}
	// And every byte of the decoded payload and signature.
	for i := range recs[0].Envelope.Payload {
		e := *recs[0].Envelope
		e.Payload = append([]byte(nil), e.Payload...)
		e.Payload[i] ^= 0x20
		r := Check(agent, keys, Head{Digest: genesis}, []*dsse.Envelope{&e})
		require.False(t, r.OK(), "payload byte %d", i)
	}
	for i := range recs[0].Envelope.Signatures[0].Sig {
		e := *recs[0].Envelope
		s := append([]byte(nil), e.Signatures[0].Sig...)
		s[i] ^= 0x80
		e.Signatures = []dsse.Signature{{KeyID: e.Signatures[0].KeyID, Sig: s}}
		r := Check(agent, keys, Head{Digest: genesis}, []*dsse.Envelope{&e})
		require.Len(t, r.Problems, 1, "sig byte %d", i)
		require.Equal(t, BadSignature, r.Problems[0].Kind)
	}
}

func TestStartInTheMiddle(t *testing.T) {
	key := newKey(t)
	_, recs := write(t, key, 6)
	keys := []Key{{Public: pub(key), KeySpan: evidence.KeySpan{From: 1}}}
	start := Head{Seq: 3, Digest: recs[2].Record.Digest}
	r := Check(agent, keys, start, envs(recs[3:]))
	require.True(t, r.OK(), r.Err())
	// A record from before the starting point is a replay.
	r = Check(agent, keys, start, envs(recs[2:]))
	require.Equal(t, []string{"replay@3-0"}, kinds(r))
}

func BenchmarkAppend(b *testing.B) {
	key := newKey(b)
	w, err := NewWriter(agent, key, Head{Digest: genesis})
	require.NoError(b, err)
	e := entry(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Append(e); err != nil {
			b.Fatal(err)
		}
	}
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "records/s")
	// The baseline, measured in the same run: raw ed25519 signatures over a
	// record-sized message. Machines here are shared; ratios travel, rates don't.
	b.ReportMetric(rate/rawRate(func(priv ed25519.PrivateKey, pub ed25519.PublicKey, msg, sig []byte) { ed25519.Sign(priv, msg) }), "x_raw_sign")
}

// rawRate measures how many raw ed25519 operations per second this machine
// does right now, over half a second. (testing.Benchmark cannot be nested in
// a running benchmark: both take the same lock.)
func rawRate(op func(priv ed25519.PrivateKey, pub ed25519.PublicKey, msg, sig []byte)) float64 {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 600)
	sig := ed25519.Sign(priv, msg)
	start := time.Now()
	n := 0
	for time.Since(start) < 500*time.Millisecond {
		for i := 0; i < 100; i++ {
			op(priv, pub, msg, sig)
		}
		n += 100
	}
	return float64(n) / time.Since(start).Seconds()
}

func BenchmarkCheck(b *testing.B) {
	key := newKey(b)
	_, recs := write(b, key, 1000)
	keys := []Key{{Public: pub(key), KeySpan: evidence.KeySpan{From: 1}}}
	raws := make([][]byte, len(recs))
	for i, r := range recs {
		raws[i] = r.JSON
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		c := NewChecker(agent, keys, Head{Digest: genesis})
		for i, r := range raws {
			c.AddJSON(i, r)
		}
		if !c.Finish().OK() {
			b.Fatal("chain not ok")
		}
		n += len(raws)
	}
	rate := float64(n) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "records/s")
	b.ReportMetric(rate/rawRate(func(priv ed25519.PrivateKey, pub ed25519.PublicKey, msg, sig []byte) { ed25519.Verify(pub, msg, sig) }), "x_raw_verify")
}
