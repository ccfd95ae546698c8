package store

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A snapshot blob reads back as written, and one damaged anywhere (cut
// short, bytes flipped, another format) is refused as corrupt, never read
// as a smaller or different fleet.
func TestSnapshotBlobRoundTripAndDamage(t *testing.T) {
	const at = int64(1_800_000_000_000_000_000)
	es := []snapEntry{
		{asset: "aws:123", agent: "a0", status: "pass", collected: at - 5},
		{asset: "host:a0", agent: "a0", status: "fail", collected: at + 7},
		{asset: "host:a1", agent: "a1", status: "unknown_status", collected: at - 3_600_000_000_000},
		{asset: "host:a1x", agent: "a1", status: "not_applicable", collected: at},
	}
	blob := encodeSnapshot(es, at)
	got, err := decodeSnapshot(blob, at)
	require.NoError(t, err)
	require.Equal(t, es, got)
	plain, err := zdec.DecodeAll(blob, nil)
	require.NoError(t, err)
	damaged := map[string][]byte{
		"not zstd":      []byte("garbage"),
		"empty":         nil,
		"other version": zenc.EncodeAll(append([]byte{9}, plain[1:]...), nil),
		"cut short":     zenc.EncodeAll(plain[:len(plain)-3], nil),
		"count too big": zenc.EncodeAll(append([]byte{snapVersion, 0x7f}, plain[2:]...), nil),
		"bad agent form": func() []byte {
			b := append([]byte(nil), plain...)
			// The first entry: prefix 0, suffix length, suffix, then its
			// agent form byte.
			b[2+1+1+len("aws:123")] = 7
			return zenc.EncodeAll(b, nil)
		}(),
	}
	for name, b := range damaged {
		_, err := decodeSnapshot(b, at)
		require.ErrorIs(t, err, errBadSnapshot, name)
	}
}

// decodeSnapshot is a check's blob's entries.
func decodeSnapshot(data []byte, t int64) ([]snapEntry, error) {
	var es []snapEntry
	err := scanSnapshot(data, t, func(b []byte) string { return string(b) }, func(e *snapEntry) {
		es = append(es, *e)
	})
	return es, err
}
