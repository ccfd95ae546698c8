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

// An envelope stored as a delta from any reference (packed on its own
// first, as references are) reads back exactly, and a delta read against
// the wrong reference is an error, never other bytes.
func FuzzEnvelopeDelta(f *testing.F) {
	env := []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"` + base64.StdEncoding.EncodeToString([]byte(`{"_type":"https://in-toto.io/Statement/v1","predicate":{"collector":"ssh","seq":1}}`)) + `","signatures":[{"keyid":"k","sig":"c2ln"}]}`)
	next := []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"` + base64.StdEncoding.EncodeToString([]byte(`{"_type":"https://in-toto.io/Statement/v1","predicate":{"collector":"ssh","seq":2}}`)) + `","signatures":[{"keyid":"k","sig":"c2lo"}]}`)
	f.Add(env, next)
	f.Add([]byte{0x02, 0x00}, []byte{0x02, 0x01})
	f.Fuzz(func(t *testing.T, ref, b []byte) {
		refPlain, err := storedPlain(packEnvelope(ref))
		if err != nil {
			t.Fatal(err)
		}
		stored, ok := packDelta(7, newDeltaIndex(refPlain), plainForm(b))
		if !ok {
			return
		}
		plain, err := storedPlain(stored)
		if err != nil {
			t.Fatal(err)
		}
		idx, isDelta, err := deltaRef(plain)
		if err != nil || !isDelta || idx != 7 {
			t.Fatalf("not a delta from 7: %d %v %v", idx, isDelta, err)
		}
		full, err := undelta(plain, refPlain)
		if err != nil {
			t.Fatal(err)
		}
		got, err := envelopeOf(full)
		if err != nil || string(got) != string(b) {
			t.Fatalf("stored %q, read %q (%v)", b, got, err)
		}
		if other := plainForm(append([]byte("x"), ref...)); string(other) != string(refPlain) {
			if got, err := undelta(plain, other); err == nil && string(got) != string(full) {
				t.Fatalf("read against another reference: %q", got)
			}
		}
	})
}

// packEnvelope is the stored form of an envelope on its own.
func packEnvelope(env []byte) []byte { return packPlain(plainForm(env), env) }

// unpackEnvelope is the envelope a stored value holds on its own (not a
// delta: those are read through DB.envelope, which finds the reference).
func unpackEnvelope(stored []byte) ([]byte, error) {
	plain, err := storedPlain(stored)
	if err != nil {
		return nil, err
	}
	return envelopeOf(plain)
}
