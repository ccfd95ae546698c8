package store

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// Envelopes are stored compressed. A DSSE envelope is JSON whose payload,
// the signed in-toto statement, is base64 inside it: base64 hides the
// statement's repetition from a compressor, so the stored form carries the
// payload decoded, between the envelope's bytes before and after it, and
// zstd compresses that. Reading reverses it exactly: the payload is
// encoded again and the envelope is the bytes received, byte for byte (the
// log's leaves and hashes are computed on those, before storing). An
// envelope whose payload does not re-encode to the same bytes is
// compressed as it is.
//
// A stored value is one of: a zstd frame of the envelope ('{' first, or
// 0x01 and the envelope); a zstd frame of 0x00, the length of the bytes before the payload, those
// bytes, the payload's length, the payload decoded, and the bytes after;
// or, for rows written before compression, the envelope itself.
var (
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	zenc, _   = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	zdec, _   = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20))
)

// The first byte of a frame's content: the split form, or the envelope as
// is (only where the envelope itself starts with one of these bytes; a
// DSSE envelope starts with '{').
const (
	splitPayload = 0x00
	asIs         = 0x01
)

var payloadKey = []byte(`"payload":"`)

// packEnvelope is the stored form of an envelope.
func packEnvelope(env []byte) []byte {
	plain := env
	if len(env) == 0 || (env[0] == splitPayload || env[0] == asIs) {
		// Content that would read as a format byte says it is as is.
		plain = append([]byte{asIs}, env...)
	}
	if i := bytes.Index(env, payloadKey); i >= 0 {
		start := i + len(payloadKey)
		if end := bytes.IndexByte(env[start:], '"'); end >= 0 {
			enc := env[start : start+end]
			dec, err := base64.StdEncoding.DecodeString(string(enc))
			if err == nil && base64.StdEncoding.EncodeToString(dec) == string(enc) {
				var b []byte
				b = append(b, splitPayload)
				b = binary.AppendUvarint(b, uint64(start))
				b = append(b, env[:start]...)
				b = binary.AppendUvarint(b, uint64(len(dec)))
				b = append(b, dec...)
				plain = append(b, env[start+end:]...)
			}
		}
	}
	z := zenc.EncodeAll(plain, make([]byte, 0, len(env)/4))
	if len(z) >= len(env) && !bytes.HasPrefix(env, zstdMagic) {
		// Kept as is when compressing gains nothing, unless it would then
		// read as a zstd frame (nothing a server accepts starts so, but a
		// stored value must mean one thing).
		return env
	}
	return z
}

// unpackEnvelope is the envelope a stored value holds.
func unpackEnvelope(stored []byte) ([]byte, error) {
	if !bytes.HasPrefix(stored, zstdMagic) {
		return stored, nil
	}
	b, err := zdec.DecodeAll(stored, nil)
	if err != nil {
		return nil, fmt.Errorf("stored envelope: %w", err)
	}
	switch {
	case len(b) > 0 && b[0] == asIs:
		return b[1:], nil
	case len(b) == 0 || b[0] != splitPayload:
		return b, nil
	}
	b = b[1:]
	cut := func() ([]byte, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, errors.New("stored envelope: damaged")
		}
		part := b[k : k+int(n)]
		b = b[k+int(n):]
		return part, nil
	}
	prefix, err := cut()
	if err != nil {
		return nil, err
	}
	payload, err := cut()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(prefix)+base64.StdEncoding.EncodedLen(len(payload))+len(b))
	out = append(out, prefix...)
	out = base64.StdEncoding.AppendEncode(out, payload)
	return append(out, b...), nil
}
