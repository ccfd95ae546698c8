package dsse

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// testdata/dsse-testvectors.json is a copy of ../shared/reference: the DSSE
// project's published vectors, with RFC 8032 keys.
type vectorFile struct {
	Keys map[string]struct {
		Seed   string `json:"seed"`
		Public string `json:"public"`
	} `json:"keys"`
	Vectors []struct {
		ID                    string          `json:"id"`
		Envelope              json.RawMessage `json:"envelope"`
		TrustedKeys           []string        `json:"trustedKeys"`
		Threshold             int             `json:"threshold"`
		SupportedPayloadTypes []string        `json:"supportedPayloadTypes"`
		PAE                   string          `json:"pae"`
		Expect                string          `json:"expect"`
	} `json:"vectors"`
}

func loadVectors(t *testing.T) vectorFile {
	t.Helper()
	raw, err := os.ReadFile("testdata/dsse-testvectors.json")
	require.NoError(t, err)
	var vf vectorFile
	require.NoError(t, json.Unmarshal(raw, &vf))
	require.Len(t, vf.Vectors, 9)
	return vf
}

func TestPublishedVectors(t *testing.T) {
	vf := loadVectors(t)
	keys := map[string]TrustedKey{}
	for name, k := range vf.Keys {
		seed, err := hex.DecodeString(k.Seed)
		require.NoError(t, err)
		pub, err := hex.DecodeString(k.Public)
		require.NoError(t, err)
		// The RFC 8032 seed must derive the published public key.
		require.Equal(t, ed25519.PublicKey(pub), ed25519.NewKeyFromSeed(seed).Public())
		keys[name] = TrustedKey{ID: name, Key: pub}
	}
	for _, v := range vf.Vectors {
		t.Run(v.ID, func(t *testing.T) {
			env, err := Parse(v.Envelope)
			require.NoError(t, err)
			wantPAE, err := hex.DecodeString(v.PAE)
			require.NoError(t, err)
			// The vector's pae is what was signed; for a tampered vector
			// (payload-type-swapped) it differs from the envelope's own.
			if v.Expect == "accept" || v.ID == "empty-payload-type" {
				require.Equal(t, wantPAE, PAE(env.PayloadType, env.Payload), "PAE bytes")
			}

			ver := Verifier{Threshold: v.Threshold, PayloadTypes: v.SupportedPayloadTypes}
			for _, name := range v.TrustedKeys {
				ver.Keys = append(ver.Keys, keys[name])
			}
			_, err = ver.Verify(env)
			if v.Expect == "accept" {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}

// Signing the vectors' payloads with the vectors' keys must reproduce the
// published signatures byte for byte (ed25519 is deterministic).
func TestSignReproducesVectors(t *testing.T) {
	vf := loadVectors(t)
	seed, _ := hex.DecodeString(vf.Keys["A"].Seed)
	priv := ed25519.NewKeyFromSeed(seed)
	for _, v := range vf.Vectors {
		if v.Expect != "accept" || len(v.TrustedKeys) != 1 {
			continue
		}
		env, err := Parse(v.Envelope)
		require.NoError(t, err)
		got, err := Sign(priv, env.PayloadType, env.Payload)
		require.NoError(t, err)
		require.Equal(t, env.Signatures[0].Sig, got.Signatures[0].Sig, v.ID)
	}
}

func TestRoundTripAndTamper(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	const typ = "application/vnd.in-toto+json"
	env, err := Sign(priv, typ, []byte(`{"hello":"world"}`))
	require.NoError(t, err)
	require.Equal(t, KeyID(pub), env.Signatures[0].KeyID)
	ver := Verifier{Keys: []TrustedKey{{ID: KeyID(pub), Key: pub}}, PayloadTypes: []string{typ}}

	raw, err := json.Marshal(env)
	require.NoError(t, err)
	back, err := Parse(raw)
	require.NoError(t, err)
	_, err = ver.Verify(back)
	require.NoError(t, err)

	// Every single-bit flip of the payload or the signature is detected.
	for i := range env.Payload {
		for bit := 0; bit < 8; bit++ {
			e := *back
			e.Payload = append([]byte(nil), back.Payload...)
			e.Payload[i] ^= 1 << bit
			_, err := ver.Verify(&e)
			require.ErrorIs(t, err, ErrNoSignature, "payload byte %d bit %d", i, bit)
		}
	}
	for i := range env.Signatures[0].Sig {
		e := *back
		s := append([]byte(nil), back.Signatures[0].Sig...)
		s[i] ^= 0x01
		e.Signatures = []Signature{{KeyID: back.Signatures[0].KeyID, Sig: s}}
		_, err := ver.Verify(&e)
		require.ErrorIs(t, err, ErrNoSignature, "signature byte %d", i)
	}

	// A lying keyid does not make a bad signature good, nor a good one bad.
	e := *back
	e.Signatures = []Signature{{KeyID: "somebody-else", Sig: back.Signatures[0].Sig}}
	_, err = ver.Verify(&e)
	require.NoError(t, err)
	// Another key, even named by the right keyid, does not verify.
	other, _, _ := ed25519.GenerateKey(nil)
	ver2 := Verifier{Keys: []TrustedKey{{ID: KeyID(pub), Key: other}}, PayloadTypes: []string{typ}}
	_, err = ver2.Verify(back)
	require.ErrorIs(t, err, ErrNoSignature)
}

func TestMalformedEnvelopes(t *testing.T) {
	cases := map[string]string{
		"not json":           `{`,
		"missing payload":    `{"payloadType":"x","signatures":[{"sig":"AA=="}]}`,
		"missing type":       `{"payload":"","signatures":[{"sig":"AA=="}]}`,
		"no signatures":      `{"payload":"","payloadType":"x","signatures":[]}`,
		"bad base64":         `{"payload":"!!!","payloadType":"x","signatures":[{"sig":"AA=="}]}`,
		"bad sig base64":     `{"payload":"","payloadType":"x","signatures":[{"sig":"%%"}]}`,
		"payload not string": `{"payload":5,"payloadType":"x","signatures":[{"sig":"AA=="}]}`,
	}
	for name, in := range cases {
		_, err := Parse([]byte(in))
		require.ErrorIs(t, err, ErrMalformed, name)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"payload":"eyJhIjoxfQ==","payloadType":"application/vnd.in-toto+json","signatures":[{"keyid":"a","sig":"AA=="}]}`))
	f.Add([]byte(`{"payload":"-_-_Pj8=","payloadType":"x","signatures":[{"sig":"P-_K"}]}`))
	f.Add([]byte(`[]`))
	pub, _, _ := ed25519.GenerateKey(nil)
	ver := Verifier{Keys: []TrustedKey{{ID: "k", Key: pub}}, PayloadTypes: []string{"application/vnd.in-toto+json"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := Parse(data)
		if err != nil {
			if env != nil {
				t.Fatal("error with a non-nil envelope")
			}
			return
		}
		// A parsed envelope must re-encode and verify without panicking;
		// random input never carries a valid signature.
		if _, err := json.Marshal(env); err != nil {
			t.Fatal(err)
		}
		if _, err := ver.Verify(env); err == nil {
			t.Fatal("random envelope verified")
		}
	})
}

func BenchmarkRawEd25519Sign(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 600)
	b.ReportAllocs()
	for b.Loop() {
		ed25519.Sign(priv, msg)
	}
}

func BenchmarkRawEd25519Verify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 600)
	sig := ed25519.Sign(priv, msg)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("verify failed")
		}
	}
}

// The canonical fast path yields exactly what the JSON decoder yields, and
// declines everything it does not handle.
func FuzzCanonicalMatchesDecoder(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(nil)
	env, err := Sign(priv, "application/vnd.in-toto+json", []byte(`{"a":1}`))
	if err != nil {
		f.Fatal(err)
	}
	canon, _ := json.Marshal(env)
	f.Add(canon)
	f.Add([]byte(`{"payload":"eyJhIjoxfQ","payloadType":"t","signatures":[{"sig":"AAAA"},{"keyid":"k","sig":"AAAA"}]}`))
	f.Add([]byte(`{"payload":"eyJhIjoxfQ==","payloadType":"t\u0041","signatures":[{"sig":"AAAA"}]}`))
	f.Add([]byte(`{"payload":"","payloadType":"","signatures":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := parseCanonical(b)
		if !ok {
			return
		}
		var slow Envelope
		if err := slow.UnmarshalJSON(b); err != nil {
			t.Fatalf("fast path accepted what the decoder refuses (%v): %q", err, b)
		}
		if !reflect.DeepEqual(*fast, slow) {
			t.Fatalf("fast %+v != decoder %+v for %q", *fast, slow, b)
		}
	})
}

func TestCanonicalFastPath(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	env, err := Sign(priv, "application/vnd.in-toto+json", []byte(`{"a":1}`))
	require.NoError(t, err)
	canon, _ := json.Marshal(env)
	fast, ok := parseCanonical(canon)
	require.True(t, ok, "what MarshalJSON writes takes the fast path")
	require.Equal(t, env, fast)
	for _, other := range []string{
		` ` + string(canon), // whitespace
		strings.Replace(string(canon), `"payloadType":"application/vnd.in-toto+json"`, `"payloadType":"application\/vnd.in-toto+json"`, 1), // an escape
		strings.Replace(string(canon), `{"payload":`, `{"payload" :`, 1),
	} {
		_, ok := parseCanonical([]byte(other))
		require.False(t, ok, other)
		got, err := Parse([]byte(other))
		require.NoError(t, err, "the decoder still reads it")
		require.Equal(t, env.Payload, got.Payload)
	}
}
