package dsse

import (
	"crypto/ed25519"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
	"io"
	"strconv"

	"filippo.io/edwards25519"
)

// PreparedKey is an ed25519 public key decoded once for many verifications.
// crypto/ed25519.Verify decodes (decompresses) the key on every call, about
// a fourteenth of the cost of a verification; a verifier checking a million
// records from a hundred agents pays it a hundred times instead.
//
// Verification is RFC 8032's as crypto/ed25519 performs it (cofactorless,
// canonical S), on filippo.io/edwards25519, the library Go's own
// implementation is taken from; a differential test holds the two equal.
type PreparedKey struct {
	pub  ed25519.PublicKey
	id   string
	negA *edwards25519.Point
}

// Prepare decodes pub for verification.
func Prepare(pub ed25519.PublicKey) (*PreparedKey, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadPublicKey, len(pub))
	}
	A, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPublicKey, err)
	}
	return &PreparedKey{pub: append(ed25519.PublicKey(nil), pub...), id: KeyID(pub), negA: new(edwards25519.Point).Negate(A)}, nil
}

// Public returns the key.
func (k *PreparedKey) Public() ed25519.PublicKey { return k.pub }

// ID returns KeyID of the key.
func (k *PreparedKey) ID() string { return k.id }

// VerifyMessage reports whether sig is k's signature of msg.
func (k *PreparedKey) VerifyMessage(msg, sig []byte) bool {
	return k.verify(sig, func(h hash.Hash) { h.Write(msg) })
}

// verifyPAE reports whether sig is k's signature of PAE(payloadType,
// payload), hashing the encoding's pieces as they come rather than copying
// the payload into one buffer first.
func (k *PreparedKey) verifyPAE(payloadType string, payload, sig []byte) bool {
	return k.verify(sig, func(h hash.Hash) {
		var num [20]byte
		h.Write(paePrefix)
		h.Write(strconv.AppendInt(num[:0], int64(len(payloadType)), 10))
		h.Write(space)
		_, _ = io.WriteString(h, payloadType)
		h.Write(space)
		h.Write(strconv.AppendInt(num[:0], int64(len(payload)), 10))
		h.Write(space)
		h.Write(payload)
	})
}

var paePrefix, space = []byte("DSSEv1 "), []byte(" ")

func (k *PreparedKey) verify(sig []byte, message func(hash.Hash)) bool {
	if len(sig) != ed25519.SignatureSize || sig[63]&224 != 0 {
		return false
	}
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(k.pub)
	message(h)
	var digest [64]byte
	kh, err := new(edwards25519.Scalar).SetUniformBytes(h.Sum(digest[:0]))
	if err != nil {
		return false
	}
	S, err := new(edwards25519.Scalar).SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}
	R := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(kh, k.negA, S)
	return subtle.ConstantTimeCompare(sig[:32], R.Bytes()) == 1
}

// VerifySingle checks an envelope that must carry exactly one signature, by
// k, over a payload of type payloadType (an agent's record).
func (k *PreparedKey) VerifySingle(e *Envelope, payloadType string) error {
	if e.PayloadType != payloadType {
		return fmt.Errorf("%w: %q", ErrPayloadType, e.PayloadType)
	}
	if len(e.Signatures) != 1 {
		return fmt.Errorf("%w: %d signatures, want exactly 1", ErrMalformed, len(e.Signatures))
	}
	if !k.verifyPAE(e.PayloadType, e.Payload, e.Signatures[0].Sig) {
		return ErrNoSignature
	}
	return nil
}
