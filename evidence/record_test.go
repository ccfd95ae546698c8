package evidence_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/dsse"
)

func sampleStatement(t testing.TB) *evidence.Statement {
	st, err := evidence.NewStatement(evidence.HostAsset("a1"), evidence.Predicate{
		AgentID: "a1", Seq: 1, Prev: evidence.Digest(nil), Collector: "ssh", CollectorVersion: "1",
		CollectedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Results: []evidence.Result{{Check: "ssh.root_login", Status: evidence.Fail, Reason: "PermitRootLogin yes",
			Observations: evidence.Observe([]string{"PermitRootLogin yes"})}},
	})
	require.NoError(t, err)
	return st
}

func TestOpenChecksTypeKeyAndShape(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	env, err := evidence.SignStatement(priv, sampleStatement(t))
	require.NoError(t, err)
	rec, err := evidence.Open(env, pub)
	require.NoError(t, err)
	require.Equal(t, evidence.Asset("host:a1"), rec.Asset())
	require.Equal(t, evidence.Digest(env.Payload), rec.Digest)
	require.Equal(t, evidence.Fail, rec.Predicate.Results[0].Status)

	// The DSSE libraries accept any payload type; Annexa does not.
	other, err := dsse.Sign(priv, "application/json", env.Payload)
	require.NoError(t, err)
	_, err = evidence.Open(other, pub)
	require.ErrorIs(t, err, dsse.ErrPayloadType)

	// A keyid naming another key is rejected even if the signature is fine.
	e := *env
	e.Signatures = []dsse.Signature{{KeyID: strings.Repeat("0", 64), Sig: env.Signatures[0].Sig}}
	_, err = evidence.Open(&e, pub)
	require.ErrorIs(t, err, evidence.ErrWrongKeyID)

	// Signed by someone else.
	pub2, _, _ := ed25519.GenerateKey(nil)
	e.Signatures = []dsse.Signature{{Sig: env.Signatures[0].Sig}}
	_, err = evidence.Open(&e, pub2)
	require.ErrorIs(t, err, dsse.ErrNoSignature)
}

func TestParseRecordRejects(t *testing.T) {
	st := sampleStatement(t)
	good, err := json.Marshal(st)
	require.NoError(t, err)
	_, err = evidence.ParseRecord(good)
	require.NoError(t, err)

	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		require.NoError(t, json.Unmarshal(good, &m))
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	pred := func(m map[string]any) map[string]any { return m["predicate"].(map[string]any) }
	cases := map[string][]byte{
		"not json":       []byte("{"),
		"trailing":       append(append([]byte(nil), good...), []byte(" {}")...),
		"statement type": mutate(func(m map[string]any) { m["_type"] = "x" }),
		"predicate type": mutate(func(m map[string]any) { m["predicateType"] = "x" }),
		"unknown field":  mutate(func(m map[string]any) { m["extra"] = 1 }),
		"seq 0":          mutate(func(m map[string]any) { pred(m)["seq"] = 0 }),
		"bad prev":       mutate(func(m map[string]any) { pred(m)["prev"] = "zz" }),
		"no agent":       mutate(func(m map[string]any) { pred(m)["agent_id"] = "" }),
		"bad status":     mutate(func(m map[string]any) { pred(m)["results"].([]any)[0].(map[string]any)["status"] = "ok" }),
		// Editing a result without updating the subject digest is caught by
		// the digest; updating it too is caught by the signature.
		"edited result": mutate(func(m map[string]any) { pred(m)["results"].([]any)[0].(map[string]any)["status"] = "pass" }),
		"two subjects":  mutate(func(m map[string]any) { m["subject"] = append(m["subject"].([]any), m["subject"].([]any)[0]) }),
		"bad asset":     mutate(func(m map[string]any) { m["subject"].([]any)[0].(map[string]any)["name"] = "nocolon" }),
	}
	for name, in := range cases {
		_, err := evidence.ParseRecord(in)
		require.ErrorIs(t, err, evidence.ErrMalformedRecord, name)
	}
	_, err = evidence.ParseRecord(make([]byte, evidence.MaxRecordSize+1))
	require.ErrorIs(t, err, evidence.ErrMalformedRecord)
}

func TestStatusAndAsset(t *testing.T) {
	for _, s := range []string{"pass", "fail", "error", "not_applicable"} {
		_, err := evidence.ParseStatus(s)
		require.NoError(t, err)
	}
	_, err := evidence.ParseStatus("unknown")
	require.ErrorContains(t, err, `"unknown"`)
	a, err := evidence.ParseAsset("aws-account:123456789012")
	require.NoError(t, err)
	require.Equal(t, "aws-account", a.Kind())
	for _, bad := range []string{"", "host", ":x", "host:", "Host:x"} {
		_, err := evidence.ParseAsset(bad)
		require.Error(t, err, bad)
	}
}

func FuzzParseRecord(f *testing.F) {
	st := sampleStatement(f)
	good, _ := json.Marshal(st)
	f.Add(good)
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := evidence.ParseRecord(data)
		if err != nil {
			require.ErrorIs(t, err, evidence.ErrMalformedRecord)
			return
		}
		// Whatever parses has the shape a verifier relies on.
		require.NotZero(t, rec.Predicate.Seq)
		require.NotEmpty(t, rec.Predicate.AgentID)
		require.Len(t, rec.Subject, 1)
		rec.Next()
	})
}

func BenchmarkParseRecord(b *testing.B) {
	st := sampleStatement(b)
	st.Predicate.Results = append(st.Predicate.Results, evidence.Result{Check: "disk_encryption.system_volume", Status: evidence.Pass, Reason: "LUKS2 on nvme0n1p3", Observations: evidence.Observe(map[string]any{"dev": "nvme0n1p3", "type": "crypt"})})
	st2, _ := evidence.NewStatement(evidence.Asset(st.Subject[0].Name), st.Predicate)
	payload, _ := json.Marshal(st2)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := evidence.ParseRecord(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// Results written in another JSON form than json.Marshal's (whitespace,
// escapes) still verify against a subject digest of their canonical form;
// a digest of neither form is refused.
func TestParseRecordNonCanonicalResults(t *testing.T) {
	st := sampleStatement(t)
	payload, err := json.Marshal(st)
	require.NoError(t, err)
	spaced := bytes.Replace(payload, []byte(`"results":[{`), []byte(`"results": [ {`), 1)
	require.NotEqual(t, payload, spaced)
	rec, err := evidence.ParseRecord(spaced)
	require.NoError(t, err)
	require.Equal(t, st.Predicate.Results, rec.Predicate.Results)

	forged := *st
	forged.Subject = []evidence.Subject{{Name: st.Subject[0].Name, Digest: map[string]string{"sha256": evidence.Digest([]byte("other"))}}}
	bad, _ := json.Marshal(&forged)
	_, err = evidence.ParseRecord(bad)
	require.ErrorContains(t, err, "subject digest")
}
