package ssh

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors/capture"
	"github.com/annexa-dev/annexa/collectors/collectortest"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

func fixture(dir string, withDashT bool) *host.Host {
	out := map[string]string{"sshd -V": "!exit 1"}
	if withDashT {
		out["sshd -T -f /etc/ssh/sshd_config"] = "sshd-T.txt"
	}
	return &host.Host{Root: "testdata/" + dir, OS: "linux", Runner: &host.Replay{Dir: "testdata/" + dir, Outputs: out},
		Clock: func() time.Time { return time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC) }}
}

func statuses(t *testing.T, h *host.Host) map[string]evidence.Status {
	t.Helper()
	return collectortest.Statuses(collectortest.Collect(t, Collector{}, h, nil))
}

func TestFixtures(t *testing.T) {
	for _, tc := range []struct {
		dir   string
		dashT bool
		want  map[string]evidence.Status
	}{
		// Debian's shipped config: root by key only, passwords on, SHA-1 MACs offered.
		{"debian12-default", true, map[string]evidence.Status{checkRoot: evidence.Fail, checkPassword: evidence.Fail, checkCiphers: evidence.Fail}},
		{"debian12-hardened", true, map[string]evidence.Status{checkRoot: evidence.Pass, checkPassword: evidence.Pass, checkCiphers: evidence.Pass}},
		{"weak", true, map[string]evidence.Status{checkRoot: evidence.Fail, checkPassword: evidence.Fail, checkCiphers: evidence.Fail}},
		// Without sshd -T (not root): the files, with sshd's defaults.
		{"debian12-hardened", false, map[string]evidence.Status{checkRoot: evidence.Pass, checkPassword: evidence.Pass, checkCiphers: evidence.Pass}},
		{"debian12-default", false, map[string]evidence.Status{checkRoot: evidence.Fail, checkPassword: evidence.Fail, checkCiphers: evidence.Error}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			require.Equal(t, tc.want, statuses(t, fixture(tc.dir, tc.dashT)))
		})
	}
}

func TestWeakReasonsNameTheProblem(t *testing.T) {
	rs, err := Collector{}.Collect(context.Background(), fixture("weak", true), nil)
	require.NoError(t, err)
	byCheck := map[string]evidence.Result{}
	for _, r := range rs {
		byCheck[r.Check] = r
	}
	require.Contains(t, byCheck[checkCiphers].Reason, "3des-cbc")
	require.Contains(t, byCheck[checkCiphers].Reason, "aes128-cbc")
	require.Contains(t, byCheck[checkRoot].Reason, "PermitRootLogin is yes")
	// The Match block that re-enables passwords is in the observations.
	require.Contains(t, string(byCheck[checkPassword].Observations), `"match":"User backup"`)
}

// A Match block loosening a setting fails the check even when the global
// value is safe: sshd -T alone would miss it.
func TestMatchBlockLoosens(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(dir+"/etc/ssh", 0o755))
	require.NoError(t, os.WriteFile(dir+"/etc/ssh/sshd_config", []byte("PermitRootLogin no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nCiphers aes256-gcm@openssh.com\nMACs hmac-sha2-512-etm@openssh.com\nMatch Address 10.0.0.0/8\n  PermitRootLogin yes\n"), 0o644))
	h := &host.Host{Root: dir, Runner: &host.Replay{Outputs: map[string]string{}}}
	got := statuses(t, h)
	require.Equal(t, evidence.Fail, got[checkRoot])
	require.Equal(t, evidence.Pass, got[checkPassword])
}

func TestNoSSHServerIsNotApplicable(t *testing.T) {
	h := &host.Host{Root: t.TempDir(), Runner: &host.Replay{Outputs: map[string]string{}}}
	for _, st := range statuses(t, h) {
		require.Equal(t, evidence.NotApplicable, st)
	}
}

func TestUnreadableConfigIsError(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("root reads everything")
	}
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(dir+"/etc/ssh", 0o755))
	require.NoError(t, os.WriteFile(dir+"/etc/ssh/sshd_config", []byte("x"), 0o000))
	h := &host.Host{Root: dir, Runner: &host.Replay{Outputs: map[string]string{}}}
	for _, st := range statuses(t, h) {
		require.Equal(t, evidence.Error, st)
	}
}

// The collector also reads this machine and decides every check, or says why not.
func TestLive(t *testing.T) { collectortest.Live(t, Collector{}) }

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("testdata/weak/sshd-T.txt")
	f.Add(b)
	f.Add([]byte("PermitRootLogin=no\nMatch all\n Ciphers x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v := parseDashT(data)
		cfg := &config{values: v}
		for _, r := range []evidence.Result{rootLogin(cfg), passwordAuth(cfg), ciphers(cfg)} {
			require.NoError(t, r.Validate())
		}
		dir := t.TempDir()
		_ = os.MkdirAll(dir+"/etc/ssh", 0o755)
		_ = os.WriteFile(dir+"/etc/ssh/sshd_config", data, 0o644)
		c2 := &config{values: map[string]string{}}
		_ = parseFile(&host.Host{Root: dir}, "/etc/ssh/sshd_config", c2, 0, "")
	})
}

// The real Debian 12 machines, kept as captures.
func TestCaptures(t *testing.T) {
	for _, dir := range []string{"debian12-default", "debian12-hardened"} {
		collectortest.Capture(t, Collector{}, fixture(dir, true), "testdata/captures/"+dir, collectortest.CaptureMeta{
			OSVersion: "Debian GNU/Linux 12 (bookworm), openssh-server 1:9.2p1", Locale: "C", Provenance: capture.Captured,
			Source: "a Debian 12 machine with Debian's openssh-server (" + dir + ")"})
	}
}
