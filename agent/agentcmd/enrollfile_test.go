package agentcmd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Windows MSI writes the enrollment file with its IniFile table: a
// section line, CRLF line ends, keys as msiexec was given them. The agent's
// first start reads it like the env file Ansible or Jamf drop.
func TestEnrollFileAsTheMSIWritesIt(t *testing.T) {
	for _, env := range []string{"ANNEXA_ENROLL_SERVER", "ANNEXA_ENROLL_TOKEN", "ANNEXA_ENROLL_CA"} {
		t.Setenv(env, "")
	}
	path := filepath.Join(t.TempDir(), "enroll.env")
	ini := "[annexa]\r\nANNEXA_ENROLL_SERVER=https://annexa.example.com:8443\r\nANNEXA_ENROLL_TOKEN=anx_secret\r\nANNEXA_ENROLL_CA=C:\\certs\\ca.crt\r\n"
	require.NoError(t, os.WriteFile(path, []byte(ini), 0o600))
	s, err := findEnrollSettings("", "", "", path)
	require.NoError(t, err)
	require.NotNil(t, s)
	assert.Equal(t, "https://annexa.example.com:8443", s.server)
	assert.Equal(t, "anx_secret", s.token)
	assert.Equal(t, `C:\certs\ca.crt`, s.ca)
	assert.Equal(t, path, s.fromFile, "the file is deleted once enrolled")

	// An MSI given a token but no CA writes the key empty: no CA, no error.
	require.NoError(t, os.WriteFile(path, []byte("[annexa]\r\nANNEXA_ENROLL_SERVER=https://a\r\nANNEXA_ENROLL_TOKEN=anx_t\r\nANNEXA_ENROLL_CA=\r\n"), 0o600))
	s, err = findEnrollSettings("", "", "", path)
	require.NoError(t, err)
	assert.Empty(t, s.ca)

	// A malformed line is an error naming it, not a silent skip.
	require.NoError(t, os.WriteFile(path, []byte("[annexa]\nANNEXA_ENROLL_SERVER\n"), 0o600))
	_, err = findEnrollSettings("", "", "", path)
	assert.ErrorContains(t, err, "line 2")
}
