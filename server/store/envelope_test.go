package store

import (
	"encoding/base64"
	"testing"
)

// Whatever the stored bytes, reading them errs or returns bytes; it never
// panics (a damaged database row must not take the server down), and an
// envelope packed is the envelope read.
func FuzzEnvelopeStorage(f *testing.F) {
	env := []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"` + base64.StdEncoding.EncodeToString([]byte(`{"_type":"https://in-toto.io/Statement/v1"}`)) + `","signatures":[{"keyid":"k","sig":"c2ln"}]}`)
	f.Add(env)
	f.Add(packEnvelope(env))
	f.Add([]byte(`{"payload":"not base64!"}`))
	f.Add(append([]byte{0x28, 0xb5, 0x2f, 0xfd}, 0x00, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = unpackEnvelope(b)
		got, err := unpackEnvelope(packEnvelope(b))
		if err != nil || string(got) != string(b) {
			t.Fatalf("packed %q, read %q (%v)", b, got, err)
		}
	})
}
