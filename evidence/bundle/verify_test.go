package bundle

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/dsse"
)

// A repacked bundle whose files changed order is told that order matters
// and which file belongs where.
func TestUnexpectedFileSaysWhatWasExpected(t *testing.T) {
	msg := unexpectedFile(FileMapping, 3)
	assert.Contains(t, msg, "out of order")
	assert.Contains(t, msg, Order[3]+" was expected here")
	msg = unexpectedFile("notes.txt", 0)
	assert.Contains(t, msg, "not a file of an Annexa bundle")
	assert.Contains(t, msg, Order[0]+" was expected here")
	assert.Contains(t, unexpectedFile("extra", len(Order)), "nothing more was expected here")
}

// Grants replay in log order: what an agent may report on at each point.
func TestKeyStateGrants(t *testing.T) {
	ks := NewKeyState()
	pub := make([]byte, 32)
	pub[0] = 9
	apply := func(ev *evidence.KeyEvent) {
		t.Helper()
		ev.AgentID = "agt-a"
		require.NoError(t, ks.Apply(ev, []byte(ev.Kind)))
	}
	apply(&evidence.KeyEvent{Kind: evidence.Enroll, KeyID: dsse.KeyID(pub), PublicKey: pub, FromSeq: 1, Assets: []evidence.Asset{"aws-account:1"}})
	a := ks.Agent("agt-a")
	assert.True(t, a.MayReport("host:agt-a"))
	assert.True(t, a.MayReport("aws-account:1"), "granted by the enrollment token")
	assert.False(t, a.MayReport("aws-account:2"))
	assert.False(t, a.MayReport("host:agt-b"), "another host, never")
	before := ks.All()
	apply(&evidence.KeyEvent{Kind: evidence.Grant, Assets: []evidence.Asset{"aws-account:2"}})
	apply(&evidence.KeyEvent{Kind: evidence.Ungrant, Assets: []evidence.Asset{"aws-account:1"}})
	assert.False(t, a.MayReport("aws-account:1"))
	assert.True(t, a.MayReport("aws-account:2"))
	assert.Equal(t, []evidence.Asset{"aws-account:1"}, before[0].Assets, "a copy handed out earlier keeps its state")
	require.Error(t, ks.Apply(&evidence.KeyEvent{Kind: evidence.Grant, AgentID: "agt-nobody", Assets: []evidence.Asset{"x:1"}}, nil))
}
