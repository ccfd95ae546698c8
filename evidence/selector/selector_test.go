package selector

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseAndMatch(t *testing.T) {
	s, err := Parse(" env=prod , team!=lab ")
	require.NoError(t, err)
	assert.Equal(t, "env=prod,team!=lab", s.String())
	for labels, want := range map[*map[string]string]bool{
		{"env": "prod", "team": "it"}:  true,
		{"env": "prod"}:                true, // no team: not lab
		{"env": "prod", "team": "lab"}: false,
		{"env": "dev", "team": "it"}:   false,
		{}:                             false,
	} {
		assert.Equal(t, want, s.Match(*labels), "%v", *labels)
	}
	empty, err := Parse("")
	require.NoError(t, err)
	assert.True(t, empty.Empty())
	assert.True(t, empty.Match(nil))
}

func TestParseRefuses(t *testing.T) {
	for _, in := range []string{"env", "=prod", "env=prod,env=dev", "env=prod,env=prod", "!=x", " = "} {
		_, err := Parse(in)
		require.Error(t, err, in)
	}
	// The same key with = and != of other values is fine.
	_, err := Parse("env=prod,env!=dev")
	require.NoError(t, err)
}
