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

// Parse decodes an envelope from its JSON bytes.
func Parse(data []byte) (*Envelope, error) {
	var e Envelope
	if err := e.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return &e, nil
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
