package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/server/apiv1"
)

func TestAgentUnattendedEnrollment(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	// From a file, as a fleet tool drops it: enrolled, then the file is gone.
	h := newAgentHost(t, s, "")
	envFile := filepath.Join(t.TempDir(), "enroll.env")
	tok := s.token("enroll", apiv1.TokenRequest{Labels: map[string]string{"via": "file"}})
	require.NoError(t, os.WriteFile(envFile, []byte("# from Ansible\nANNEXA_ENROLL_SERVER="+s.URL+"\nANNEXA_ENROLL_TOKEN="+tok+"\nANNEXA_ENROLL_CA="+s.CA+"\n"), 0o600))
	out, code := h.run("enroll", "--unattended", "--enroll-file", envFile)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "enrolled as agt-")
	_, err := os.Stat(envFile)
	require.True(t, os.IsNotExist(err), "the enroll file holds a secret and is deleted after use")
	// Again: already enrolled, nothing to do, success.
	out, code = h.run("enroll", "--unattended", "--enroll-file", envFile)
	require.Equal(t, 0, code, out)
	require.NotContains(t, out, "enrolled as")

	// From the environment, on the daemon's first start.
	h2 := newAgentHost(t, s, "")
	cmd := exec.Command(bin("annexa-agent"), "run", "--once", "--config", h2.config, "--state", h2.state)
	cmd.Env = append(os.Environ(), "ANNEXA_ENROLL_SERVER="+s.URL, "ANNEXA_ENROLL_TOKEN="+s.token("enroll", apiv1.TokenRequest{}), "ANNEXA_ENROLL_CA="+s.CA)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	require.Contains(t, string(b), "enrolled as agt-")

	// Nothing configured: a no-op that succeeds (the service's pre-start step).
	h3 := newAgentHost(t, s, "")
	out, code = h3.run("enroll", "--unattended", "--enroll-file", filepath.Join(t.TempDir(), "none.env"))
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "nothing configured")
	// Half configured is an error.
	half := filepath.Join(t.TempDir(), "half.env")
	require.NoError(t, os.WriteFile(half, []byte("ANNEXA_ENROLL_TOKEN=anx_x\n"), 0o600))
	out, code = h3.run("enroll", "--unattended", "--enroll-file", half)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "needs both")
}

// The .deb as IT installs it: files, permissions, conffile and unit; the
// installed agent runs and enrols unattended; purge leaves nothing behind.
// Needs root and dpkg; never touches a machine that already has the
// package installed.
func TestDebPackageLifecycle(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to install a package")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("no dpkg here")
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "annexa-agent").CombinedOutput(); err == nil && strings.Contains(string(out), "installed") {
		t.Skip("annexa-agent is installed on this machine already: not touching it")
	}
	if _, err := os.Stat("/etc/annexa"); err == nil {
		t.Skip("/etc/annexa exists: not touching this machine's Annexa")
	}
	dist := t.TempDir()
	// nfpm reads the config's paths relative to the repository root.
	cmd := exec.Command("go", "run", "./packaging/nfpmbuild", "-config", "packaging/nfpm/agent.yaml", "-arch", runtime.GOARCH,
		"-version", "0.0.0~test", "-bin", binDir, "-out", dist)
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	debs, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
	require.Len(t, debs, 1)
	rpms, _ := filepath.Glob(filepath.Join(dist, "*.rpm"))
	require.Len(t, rpms, 1)
	if _, err := exec.LookPath("rpm"); err == nil {
		out, err := exec.Command("rpm", "-qlp", rpms[0]).CombinedOutput()
		require.NoError(t, err, string(out))
		for _, f := range []string{"/usr/bin/annexa-agent", "/etc/annexa/agent.yaml", "/lib/systemd/system/annexa-agent.service", "/var/lib/annexa"} {
			require.Contains(t, string(out), f)
		}
		out, _ = exec.Command("rpm", "-qp", "--configfiles", rpms[0]).CombinedOutput()
		require.Contains(t, string(out), "/etc/annexa/agent.yaml")
	} else {
		t.Log("rpm not installed: rpm contents not checked")
	}

	t.Cleanup(func() { _ = exec.Command("dpkg", "--purge", "annexa-agent").Run() })
	out, err = exec.Command("dpkg", "-i", debs[0]).CombinedOutput()
	require.NoError(t, err, string(out))
	for path, mode := range map[string]os.FileMode{"/usr/bin/annexa-agent": 0o755, "/usr/bin/annexa-plugin-host": 0o755, "/usr/lib/annexa/plugins/annexa-plugin-exec": 0o755, "/etc/annexa/agent.yaml": 0o644, "/var/lib/annexa": 0o700, "/lib/systemd/system/annexa-agent.service": 0o644} {
		st, err := os.Stat(path)
		require.NoError(t, err, path)
		require.Equal(t, mode, st.Mode().Perm(), path)
	}
	conf, _ := exec.Command("dpkg-query", "-W", "-f=${Conffiles}", "annexa-agent").CombinedOutput()
	require.Contains(t, string(conf), "/etc/annexa/agent.yaml")
	unit, _ := os.ReadFile("/lib/systemd/system/annexa-agent.service")
	for _, want := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/annexa", "ProtectHome=read-only", "PrivateTmp=yes", "Restart=on-failure", "ExecStartPre=+/usr/bin/annexa-agent enroll --unattended"} {
		require.Contains(t, string(unit), want)
	}
	out, err = exec.Command("/usr/bin/annexa-agent", "--version").CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "annexa-agent ")
	out, err = exec.Command("/usr/bin/annexa-agent", "collect", "--config", "/etc/annexa/agent.yaml").CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "ssh.root_login")

	// Unattended enrollment as the unit's pre-start step does it.
	s := startServer(t, "sqlite", "", "")
	require.NoError(t, os.WriteFile("/etc/annexa/enroll.env", []byte("ANNEXA_ENROLL_SERVER="+s.URL+"\nANNEXA_ENROLL_TOKEN="+s.token("enroll", apiv1.TokenRequest{})+"\nANNEXA_ENROLL_CA="+s.CA+"\n"), 0o600))
	out, err = exec.Command("/usr/bin/annexa-agent", "enroll", "--unattended", "--config", "/etc/annexa/agent.yaml", "--state", "/var/lib/annexa").CombinedOutput()
	require.NoError(t, err, string(out))
	_, err = os.Stat("/etc/annexa/enroll.env")
	require.True(t, os.IsNotExist(err))
	out, err = exec.Command("/usr/bin/annexa-agent", "run", "--once", "--config", "/etc/annexa/agent.yaml", "--state", "/var/lib/annexa").CombinedOutput()
	require.NoError(t, err, string(out))

	out, err = exec.Command("dpkg", "--purge", "annexa-agent").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, gone := range []string{"/usr/bin/annexa-agent", "/usr/bin/annexa-plugin-host", "/usr/lib/annexa", "/etc/annexa", "/var/lib/annexa", "/lib/systemd/system/annexa-agent.service"} {
		_, err := os.Stat(gone)
		require.True(t, os.IsNotExist(err), "%s left behind after purge", gone)
	}
}
