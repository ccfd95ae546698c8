package bundle

import (
	"testing"

	"github.com/stretchr/testify/assert"
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
