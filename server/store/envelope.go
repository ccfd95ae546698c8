package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"

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
// 0x02, the log index of a reference entry, a CRC-32 of the content it
// stands for, and a delta (delta.go) that turns the reference's content
// (never itself a delta) into one of the two forms before, in a zstd frame
// or, when that does not shrink it, as it is; or the envelope itself (for
// rows written before compression, and where compressing gains nothing).
// The content is called the plain form below.
var (
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	zenc, _   = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	zdec, _   = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20))
)

// The first byte of a frame's content: the split form, the envelope as is
// (only where the envelope itself starts with one of these bytes; a DSSE
// envelope starts with '{'), or a delta from a reference entry.
const (
	splitPayload = 0x00
	asIs         = 0x01
	deltaOf      = 0x02
)

var payloadKey = []byte(`"payload":"`)

// plainForm is an envelope's content before compression: split around
// its payload decoded where that round-trips, else as it is.
func plainForm(env []byte) []byte {
	plain := env
	if len(env) == 0 || env[0] <= deltaOf {
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
	return plain
}

// rawPlain is the plain form of an envelope kept uncompressed: itself,
// unless its first byte would read as a format byte.
func rawPlain(env []byte) []byte {
	if len(env) > 0 && env[0] < deltaOf {
		return append([]byte{asIs}, env...)
	}
	return env
}

// packPlain is the stored form of env, whose plain form is plain.
func packPlain(plain, env []byte) []byte {
	z := zenc.EncodeAll(plain, make([]byte, 0, len(env)/4))
	if len(z) >= len(env) && !bytes.HasPrefix(env, zstdMagic) && (len(env) == 0 || env[0] != deltaOf) {
		// Kept as is when compressing gains nothing, unless it would then
		// read as a zstd frame or an uncompressed delta (nothing a server
		// accepts starts so, but a stored value must mean one thing).
		return env
	}
	return z
}

// packDelta is the stored form of an envelope whose plain form is plain,
// as a delta from the entry at ref (whose plain form refIndex indexes); ok is
// false when the reference holds too little of it to be worth one (more
// than a quarter new): it is then better stored on its own, and a
// reference for the next.
func packDelta(ref int64, refIndex *deltaIndex, plain []byte) (stored []byte, ok bool) {
	ops, literal := refIndex.encode(plain)
	if literal*4 > len(plain) {
		return nil, false
	}
	b := make([]byte, 0, len(ops)+16)
	b = append(b, deltaOf)
	b = binary.AppendUvarint(b, uint64(ref))
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(plain))
	b = append(b, ops...)
	if z := zenc.EncodeAll(b, make([]byte, 0, len(b))); len(z) < len(b) {
		return z, true
	}
	// A delta of little more than a signature, a chain link and a time
	// does not compress: a frame would only add its header.
	return b, true
}

// storedPlain is a stored value's plain form: its frame's content, or for
// an envelope stored as it is, the as-is form of it.
func storedPlain(stored []byte) ([]byte, error) {
	if !bytes.HasPrefix(stored, zstdMagic) {
		return rawPlain(stored), nil
	}
	b, err := zdec.DecodeAll(stored, nil)
	if err != nil {
		return nil, fmt.Errorf("stored envelope: %w", err)
	}
	return b, nil
}

// errDamaged is a stored envelope that cannot be read back.
var errDamaged = errors.New("stored envelope: damaged")

// deltaRef is the reference entry a plain form is a delta from; ok is
// false for a plain form that is not a delta.
func deltaRef(plain []byte) (ref int64, ok bool, err error) {
	if len(plain) == 0 || plain[0] != deltaOf {
		return 0, false, nil
	}
	n, k := binary.Uvarint(plain[1:])
	if k <= 0 || n >= 1<<62 {
		return 0, true, errDamaged
	}
	return int64(n), true, nil
}

// undelta is the plain form a delta stands for, from its reference's
// plain form (which must not itself be a delta), checked against the CRC
// the delta carries: a wrong reference is an error, never another record.
func undelta(plain, refPlain []byte) ([]byte, error) {
	if len(refPlain) > 0 && refPlain[0] == deltaOf {
		return nil, fmt.Errorf("%w: a delta's reference is itself a delta", errDamaged)
	}
	_, k := binary.Uvarint(plain[1:])
	b := plain[1+k:]
	if len(b) < 4 {
		return nil, errDamaged
	}
	sum := binary.BigEndian.Uint32(b)
	out, err := applyDelta(refPlain, b[4:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errDamaged, err)
	}
	if crc32.ChecksumIEEE(out) != sum {
		return nil, fmt.Errorf("%w: not the content it was made from (wrong reference?)", errDamaged)
	}
	return out, nil
}

// envelopeOf is the envelope a plain form (not a delta) holds.
func envelopeOf(b []byte) ([]byte, error) {
	switch {
	case len(b) > 0 && b[0] == asIs:
		return b[1:], nil
	case len(b) > 0 && b[0] == deltaOf:
		return nil, fmt.Errorf("%w: an unresolved delta", errDamaged)
	case len(b) == 0 || b[0] != splitPayload:
		return b, nil
	}
	b = b[1:]
	cut := func() ([]byte, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, errDamaged
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

// refCacheBytes bounds the reference cache: at a fleet's scale most
// references are read from the database (one indexed row and a
// decompression); the cache saves that for the agents seen most often.
const refCacheBytes = 32 << 20

// refCache keeps the plain forms of committed log entries used as delta
// references, by log index. Only committed entries go in: an index a
// rolled-back transaction used may be another entry's later.
type refCache struct {
	mu    sync.Mutex
	m     map[int64][]byte
	bytes int
}

// reset empties the cache (a test reusing a database for another log).
func (c *refCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m, c.bytes = nil, 0
}

func (c *refCache) get(idx int64) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[idx]
	return b, ok
}

func (c *refCache) put(idx int64, plain []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[int64][]byte{}
	}
	if _, ok := c.m[idx]; ok || len(plain) > refCacheBytes/16 {
		return
	}
	// Over budget, entries go in map order: arbitrary, and cheap.
	for k, v := range c.m {
		if c.bytes+len(plain) <= refCacheBytes {
			break
		}
		delete(c.m, k)
		c.bytes -= len(v)
	}
	c.m[idx] = plain
	c.bytes += len(plain)
}

// refPlain is the plain form of the entry at idx, read by q; committed
// says q sees only committed entries (the cache may keep what it reads).
// It is not a delta: a reference never is.
func (s *DB) refPlain(ctx context.Context, q func(context.Context, string, ...any) *sql.Row, idx int64, committed bool) ([]byte, error) {
	if b, ok := s.refs.get(idx); ok {
		return b, nil
	}
	var stored []byte
	if err := q(ctx, `SELECT envelope FROM log_entries WHERE idx = ?`, idx).Scan(&stored); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("%w: its reference, entry %d, is missing", errDamaged, idx)
		}
		return nil, err
	}
	plain, err := storedPlain(stored)
	if err != nil {
		return nil, err
	}
	if _, isDelta, _ := deltaRef(plain); isDelta {
		return nil, fmt.Errorf("%w: a delta's reference, entry %d, is itself a delta", errDamaged, idx)
	}
	if committed {
		s.refs.put(idx, plain)
	}
	return plain, nil
}

// envelope is the envelope a stored value holds, a delta resolved through
// its reference (read by q; committed as for refPlain).
func (s *DB) envelope(ctx context.Context, q func(context.Context, string, ...any) *sql.Row, stored []byte, committed bool) ([]byte, error) {
	plain, err := storedPlain(stored)
	if err != nil {
		return nil, err
	}
	ref, isDelta, err := deltaRef(plain)
	if err != nil {
		return nil, err
	}
	if isDelta {
		refPlain, err := s.refPlain(ctx, q, ref, committed)
		if err != nil {
			return nil, err
		}
		if plain, err = undelta(plain, refPlain); err != nil {
			return nil, err
		}
	}
	return envelopeOf(plain)
}
