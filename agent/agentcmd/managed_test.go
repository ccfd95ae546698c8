package agentcmd

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"howett.net/plist"

	"github.com/annexa-dev/annexa/server"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/servertest"
)

func runAgent(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := New()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// A Mac enrolled by its MDM: the configuration profile gives the server
// and the enrollment token; `enroll --unattended` (the package's
// postinstall) enrols from it, and `status` says which settings the
// profile set.
func TestEnrolFromManagedPreferences(t *testing.T) {
	for _, env := range []string{"ANNEXA_ENROLL_SERVER", "ANNEXA_ENROLL_TOKEN", "ANNEXA_ENROLL_CA"} {
		t.Setenv(env, "")
	}
	srv := servertest.New(t, server.Config{})
	token := srv.Token(server.RoleEnroll, apiv1.TokenRequest{Labels: map[string]string{"fleet": "macs"}})
	dir := t.TempDir()
	prefs := filepath.Join(dir, "com.annexa.agent.plist")
	b, err := plist.Marshal(map[string]any{"PayloadUUID": "X", "server": srv.URL, "enrollment_token": token, "log_level": "warn"}, plist.BinaryFormat)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(prefs, b, 0o644))
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("concurrency: 1\n"), 0o644))
	state := filepath.Join(dir, "state")

	out, err := runAgent(t, "enroll", "--unattended", "--config", cfg, "--state", state, "--managed-prefs", prefs,
		"--enroll-file", filepath.Join(dir, "no-enroll.env"))
	require.NoError(t, err, out)
	assert.Contains(t, out, "enrolled as agt-")

	out, err = runAgent(t, "status", "--config", cfg, "--state", state, "--managed-prefs", prefs)
	require.NoError(t, err, out)
	assert.Contains(t, out, "managed preferences ("+prefs+"): log_level, server")
	assert.Contains(t, out, "agent.yaml ("+cfg+"): concurrency")
	assert.Contains(t, out, "--state: state_dir")

	// Enrolled: a second run leaves it alone.
	out, err = runAgent(t, "enroll", "--unattended", "--config", cfg, "--state", state, "--managed-prefs", prefs,
		"--enroll-file", filepath.Join(dir, "no-enroll.env"))
	require.NoError(t, err, out)
	assert.NotContains(t, out, "enrolled as")

	// A profile with a token and no server says so.
	b, err = plist.Marshal(map[string]any{"enrollment_token": token}, plist.XMLFormat)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(prefs, b, 0o644))
	out, err = runAgent(t, "enroll", "--unattended", "--config", cfg, "--state", filepath.Join(dir, "other"), "--managed-prefs", prefs,
		"--enroll-file", filepath.Join(dir, "no-enroll.env"))
	require.Error(t, err, out)
	assert.Contains(t, err.Error(), "enrollment_token but no server")
}
