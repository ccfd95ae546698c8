package evidence_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence"
)

type key struct {
	name string
	evidence.KeySpan
}

// One table for the one rule of which key signs which seq, through
// enrollment, rotations (by record, and repeated by a gap record that
// dropped the rotation record), and a revocation.
func TestKeyAt(t *testing.T) {
	// k1 from seq 1; a rotation record at seq 4 announces k2 from 5; the
	// outbox then overflowed and a gap record at seq 9 (covering 9-11)
	// repeats a dropped rotation to k3 from 10; the agent is revoked after 12.
	keys := []key{{name: "k1", KeySpan: evidence.KeySpan{From: 1}}}
	keys = evidence.RotateKeys(keys, 5, key{name: "k2"})
	rotated := evidence.RotateKeys(keys, 10, key{name: "k3"})
	require.Len(t, keys, 2, "RotateKeys leaves its input alone")
	assert.Equal(t, uint64(0), keys[1].To, "k2 is still open in the old list")
	keys = rotated
	assert.Equal(t, []evidence.KeySpan{{From: 1, To: 4}, {From: 5, To: 9}, {From: 10}}, []evidence.KeySpan{keys[0].KeySpan, keys[1].KeySpan, keys[2].KeySpan})

	revoked := evidence.Revocation{Revoked: true, After: 12}
	for _, tc := range []struct {
		seq  uint64
		rev  evidence.Revocation
		want string // key name, or the error
	}{
		{0, evidence.Revocation{}, "no key"},
		{1, evidence.Revocation{}, "k1"},
		{4, evidence.Revocation{}, "k1"}, // the rotation record is signed by the old key
		{5, evidence.Revocation{}, "k2"},
		{9, evidence.Revocation{}, "k2"}, // the gap record, at the seq of the key valid there
		{10, evidence.Revocation{}, "k3"},
		{1 << 40, evidence.Revocation{}, "k3"},
		{12, revoked, "k3"},
		{13, revoked, "revoked"},
		{4, revoked, "k1"}, // earlier records stay valid
		{13, evidence.Revocation{Revoked: false, After: 12}, "k3"},
	} {
		i, err := evidence.KeyAt(keys, tc.rev, tc.seq)
		got := "unexpected error"
		switch {
		case err == nil:
			got = keys[i].name
		case errors.Is(err, evidence.ErrRevoked):
			got = "revoked"
		case errors.Is(err, evidence.ErrNoKey):
			got = "no key"
		}
		assert.Equal(t, tc.want, got, "seq %d revoked=%v", tc.seq, tc.rev.Revoked)
	}
}

// Where spans overlap (a key list that was never ended, as a replay of an
// old log may give), the newest key wins.
func TestKeyAtNewestWins(t *testing.T) {
	keys := []key{{name: "old", KeySpan: evidence.KeySpan{From: 1}}, {name: "new", KeySpan: evidence.KeySpan{From: 3}}}
	i, err := evidence.KeyAt(keys, evidence.Revocation{}, 3)
	require.NoError(t, err)
	assert.Equal(t, "new", keys[i].name)
	i, err = evidence.KeyAt(keys, evidence.Revocation{}, 2)
	require.NoError(t, err)
	assert.Equal(t, "old", keys[i].name)
}
