// Package dsse implements Dead Simple Signing Envelopes with ed25519 keys.
//
// It follows the DSSE v1.0 protocol: signatures cover the pre-authentication
// encoding (PAE) of the payload type and the exact payload bytes, never a
// re-serialisation. Unlike the reference libraries it also enforces an
// allow-list of payload types, because a valid signature over an unexpected
// type is still an attack (the "payload-type-swapped" test vector).
package dsse

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Envelope is a DSSE envelope. Payload holds the decoded payload bytes; the
// JSON form carries them base64-encoded. Because any base64 spelling decodes to
// the same bytes, every digest in Annexa is taken over Payload, and an
// envelope is stored and shipped as the bytes the agent produced.
type Envelope struct {
	PayloadType string
	Payload     []byte
	Signatures  []Signature
}

// Signature is one signature of an envelope. KeyID is a hint only: trust
// comes from the key the verifier was given, never from this field.
type Signature struct {
	KeyID string
	Sig   []byte
}

type wireEnvelope struct {
	Payload     *string         `json:"payload"`
	PayloadType *string         `json:"payloadType"`
	Signatures  []wireSignature `json:"signatures"`
}

type wireSignature struct {
	KeyID string `json:"keyid,omitempty"`
	Sig   string `json:"sig"`
}

// Limits that keep a hostile envelope from costing more than it is worth.
const (
	MaxSignatures = 16
)

// Errors callers may test for with errors.Is.
var (
	ErrMalformed      = errors.New("malformed envelope")
	ErrPayloadType    = errors.New("payload type not allowed")
	ErrNoSignature    = errors.New("no valid signature")
	ErrThreshold      = errors.New("signature threshold not met")
	ErrNoTrustedKeys  = errors.New("no trusted keys")
	ErrBadPublicKey   = errors.New("bad public key")
	ErrBadPrivateKey  = errors.New("bad private key")
	ErrEmptyPayloadTy = errors.New("empty payload type")
)

// PAE returns the DSSE v1 pre-authentication encoding:
// "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in decimal bytes.
func PAE(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(payloadType) + len(payload) + 32)
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}

// KeyID is Annexa's key identifier: the hex sha256 of the raw public key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}

// Sign returns an envelope over payload signed by priv, with keyid set to
// KeyID of its public key.
func Sign(priv ed25519.PrivateKey, payloadType string, payload []byte) (*Envelope, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrBadPrivateKey, len(priv), ed25519.PrivateKeySize)
	}
	if payloadType == "" {
		return nil, ErrEmptyPayloadTy
	}
	sig := ed25519.Sign(priv, PAE(payloadType, payload))
	return &Envelope{
		PayloadType: payloadType,
		Payload:     payload,
		Signatures:  []Signature{{KeyID: KeyID(priv.Public().(ed25519.PublicKey)), Sig: sig}},
	}, nil
}

// MarshalJSON writes the envelope with standard base64, as the DSSE spec
// recommends.
func (e *Envelope) MarshalJSON() ([]byte, error) {
	p := base64.StdEncoding.EncodeToString(e.Payload)
	t := e.PayloadType
	w := wireEnvelope{Payload: &p, PayloadType: &t, Signatures: make([]wireSignature, len(e.Signatures))}
	for i, s := range e.Signatures {
		w.Signatures[i] = wireSignature{KeyID: s.KeyID, Sig: base64.StdEncoding.EncodeToString(s.Sig)}
	}
	return json.Marshal(w)
}

// UnmarshalJSON parses an envelope, accepting both base64 alphabets, padded
// or not. Missing fields are errors: an envelope without a payload or type is
// not an empty envelope, it is a broken one.
func (e *Envelope) UnmarshalJSON(data []byte) error {
	var w wireEnvelope
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if w.Payload == nil {
		return fmt.Errorf("%w: missing payload", ErrMalformed)
	}
	if w.PayloadType == nil {
		return fmt.Errorf("%w: missing payloadType", ErrMalformed)
	}
	if len(w.Signatures) == 0 {
		return fmt.Errorf("%w: no signatures", ErrMalformed)
	}
	if len(w.Signatures) > MaxSignatures {
		return fmt.Errorf("%w: %d signatures, at most %d", ErrMalformed, len(w.Signatures), MaxSignatures)
	}
	payload, err := DecodeBase64(*w.Payload)
	if err != nil {
		return fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	sigs := make([]Signature, len(w.Signatures))
	for i, s := range w.Signatures {
		b, err := DecodeBase64(s.Sig)
		if err != nil {
			return fmt.Errorf("%w: signature %d: %v", ErrMalformed, i, err)
		}
		sigs[i] = Signature{KeyID: s.KeyID, Sig: b}
	}
	*e = Envelope{PayloadType: *w.PayloadType, Payload: payload, Signatures: sigs}
	return nil
}

// ParseStrict decodes an envelope that holds the DSSE fields and nothing
// else: what a log keeps verbatim must not carry unsigned bytes beside the
// signed ones (an agent could otherwise put megabytes of anything into the
// log and every bundle).
func ParseStrict(data []byte) (*Envelope, error) {
	if e, ok := parseCanonical(data); ok {
		return e, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w wireEnvelope
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: %v (an envelope holds payload, payloadType and signatures only)", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the envelope", ErrMalformed)
	}
	return Parse(data)
}

// Parse decodes an envelope from its JSON bytes.
func Parse(data []byte) (*Envelope, error) {
	if e, ok := parseCanonical(data); ok {
		return e, nil
	}
	var e Envelope
	if err := e.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return &e, nil
}

// parseCanonical reads an envelope in exactly the form MarshalJSON writes
// (fields in that order, no whitespace, strings of plain printable ASCII
// without escapes), which is how every envelope in a log or bundle is
// stored. For such input it yields what the JSON decoder would; anything
// else returns false and goes through the decoder. Verifying a million
// records, this is most of the envelope's parsing cost saved.
func parseCanonical(data []byte) (*Envelope, bool) {
	rest, ok := bytes.CutPrefix(data, []byte(`{"payload":"`))
	if !ok {
		return nil, false
	}
	// The payload is base64: a backslash, control or non-ASCII byte in it
	// fails the decoding below and sends the envelope to the decoder, so
	// finding its end is nearly all the scanning it needs. Only CR and LF
	// would pass, since the base64 decoder skips them (the fuzzer found it).
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\n') >= 0 || bytes.IndexByte(rest[:end], '\r') >= 0 {
		return nil, false
	}
	payload, rest := rest[:end], rest[end+1:]
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"payloadType":"`)); !ok {
		return nil, false
	}
	ptype, rest, ok := plainString(rest)
	if !ok {
		return nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"signatures":[`)); !ok {
		return nil, false
	}
	var sigs []Signature
	for {
		var keyid, sig []byte
		if r, ok := bytes.CutPrefix(rest, []byte(`{"keyid":"`)); ok {
			if keyid, rest, ok = plainString(r); !ok {
				return nil, false
			}
			if rest, ok = bytes.CutPrefix(rest, []byte(`,"sig":"`)); !ok {
				return nil, false
			}
		} else if rest, ok = bytes.CutPrefix(rest, []byte(`{"sig":"`)); !ok {
			return nil, false
		}
		if sig, rest, ok = plainString(rest); !ok || len(rest) == 0 || rest[0] != '}' {
			return nil, false
		}
		rest = rest[1:]
		b, err := DecodeBase64(string(sig))
		if err != nil || len(sigs) == MaxSignatures {
			return nil, false // the decoder reports it
		}
		sigs = append(sigs, Signature{KeyID: string(keyid), Sig: b})
		if len(rest) > 0 && rest[0] == ',' {
			rest = rest[1:]
			continue
		}
		break
	}
	if string(rest) != "]}" {
		return nil, false
	}
	p, err := DecodeBase64(string(payload))
	if err != nil {
		return nil, false
	}
	return &Envelope{PayloadType: string(ptype), Payload: p, Signatures: sigs}, true
}

// plainString reads a JSON string body up to its closing quote, accepting
// only printable ASCII without escapes (for which the decoder's value is
// the bytes themselves).
func plainString(b []byte) (val, rest []byte, ok bool) {
	for i, c := range b {
		switch {
		case c == '"':
			return b[:i], b[i+1:], true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// DecodeBase64 accepts standard and URL-safe base64, with or without padding,
// as DSSE requires of verifiers.
func DecodeBase64(s string) ([]byte, error) {
	encs := []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding}
	var firstErr error
	for _, enc := range encs {
		b, err := enc.DecodeString(s)
		if err == nil {
			return b, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// TrustedKey is a public key a verifier trusts, with the identifier that
// signatures may name as a hint.
type TrustedKey struct {
	ID  string
	Key ed25519.PublicKey
}

// Verifier checks envelopes against trusted keys, a threshold of distinct
// keys, and an allow-list of payload types.
type Verifier struct {
	Keys         []TrustedKey
	Threshold    int // distinct keys that must have signed; 0 means 1
	PayloadTypes []string
}

// Verify checks e and returns the IDs of the distinct trusted keys whose
// signatures verified. Each signature is verified on its own (never batched:
// batch and single ed25519 verification can disagree on edge cases).
func (v *Verifier) Verify(e *Envelope) ([]string, error) {
	if e.PayloadType == "" {
		return nil, fmt.Errorf("%w: %w", ErrPayloadType, ErrEmptyPayloadTy)
	}
	if !v.allowed(e.PayloadType) {
		return nil, fmt.Errorf("%w: %q", ErrPayloadType, e.PayloadType)
	}
	if len(v.Keys) == 0 {
		return nil, ErrNoTrustedKeys
	}
	for _, k := range v.Keys {
		if len(k.Key) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: key %q is %d bytes", ErrBadPublicKey, k.ID, len(k.Key))
		}
	}
	pae := PAE(e.PayloadType, e.Payload)
	verified := map[int]bool{}
	var ids []string
	for _, s := range e.Signatures {
		if i := v.match(pae, s); i >= 0 && !verified[i] {
			verified[i] = true
			ids = append(ids, v.Keys[i].ID)
		}
	}
	threshold := v.Threshold
	if threshold <= 0 {
		threshold = 1
	}
	if len(ids) == 0 {
		return nil, ErrNoSignature
	}
	if len(ids) < threshold {
		return ids, fmt.Errorf("%w: %d distinct keys verified, %d required", ErrThreshold, len(ids), threshold)
	}
	return ids, nil
}

// match returns the index of the trusted key that verifies s, or -1. A key
// named by the hint is tried first; the others are tried after it, since the
// hint is not trusted either way.
func (v *Verifier) match(pae []byte, s Signature) int {
	if len(s.Sig) != ed25519.SignatureSize {
		return -1
	}
	for i, k := range v.Keys {
		if s.KeyID != "" && k.ID == s.KeyID && ed25519.Verify(k.Key, pae, s.Sig) {
			return i
		}
	}
	for i, k := range v.Keys {
		if (s.KeyID == "" || k.ID != s.KeyID) && ed25519.Verify(k.Key, pae, s.Sig) {
			return i
		}
	}
	return -1
}

func (v *Verifier) allowed(t string) bool {
	for _, a := range v.PayloadTypes {
		if a == t {
			return true
		}
	}
	return false
}
