package accounts

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/collectortest"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

func run(t *testing.T, dir string, settings collectors.Settings) map[string]evidence.Result {
	t.Helper()
	h := &host.Host{Root: "testdata/" + dir, OS: "linux", Runner: &host.Replay{}}
	return collectortest.Collect(t, Collector{}, h, settings)
}

func statuses(rs map[string]evidence.Result) map[string]evidence.Status {
	return collectortest.Statuses(rs)
}

func TestFixtures(t *testing.T) {
	// Debian as shipped: root only, everything locked, but pwquality's
	// default minimum of 8 is under the 12 asked for.
	rs := run(t, "debian12", nil)
	require.Equal(t, map[string]evidence.Status{checkAdmins: evidence.Pass, checkUID0: evidence.Pass, checkEmpty: evidence.Pass, checkPolicy: evidence.Fail}, statuses(rs))
	require.Equal(t, "minimum password length 8 < 12 (pam_pwquality.so without minlen (its default is 8))", rs[checkPolicy].Reason)
	require.Contains(t, string(rs[checkAdmins].Observations), "%sudo\\tALL=(ALL:ALL) ALL")

	rs = run(t, "weak", nil)
	require.Equal(t, map[string]evidence.Status{checkAdmins: evidence.Fail, checkUID0: evidence.Fail, checkEmpty: evidence.Fail, checkPolicy: evidence.Fail}, statuses(rs))
	require.Equal(t, "UID 0 besides root: toor", rs[checkUID0].Reason)
	require.Equal(t, "accounts with no password: guest", rs[checkEmpty].Reason)
	require.Contains(t, rs[checkAdmins].Reason, `"%ops ALL=(ALL) NOPASSWD: ALL" in /etc/sudoers.d/90-ops`)

	rs = run(t, "hardened", nil)
	require.Equal(t, map[string]evidence.Status{checkAdmins: evidence.Pass, checkUID0: evidence.Pass, checkEmpty: evidence.Pass, checkPolicy: evidence.Pass}, statuses(rs))
	require.Equal(t, "administrators: alice (sudo)", rs[checkAdmins].Reason)
	require.Equal(t, "minimum password length 14 (minlen = 14 in /etc/security/pwquality.conf)", rs[checkPolicy].Reason)

	// The policy threshold and the allowed administrators are settings.
	rs = run(t, "hardened", &Settings{MinLength: 16, AllowedAdmins: []string{"bob"}})
	require.Equal(t, evidence.Fail, rs[checkPolicy].Status)
	require.Equal(t, "administrators not in the allowed list: alice", rs[checkAdmins].Reason)
}

func TestUnreadableShadowIsError(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS("testdata/debian12")))
	require.NoError(t, os.Remove(dir+"/etc/shadow"))
	h := &host.Host{Root: dir, OS: "linux", Runner: &host.Replay{}}
	rs, _ := Collector{}.Collect(context.Background(), h, nil)
	for _, r := range rs {
		if r.Check == checkEmpty {
			require.Equal(t, evidence.Error, r.Status)
			require.Contains(t, r.Reason, "cannot read /etc/shadow")
		}
	}
}

// The collector also reads this machine and decides every check, or says why not.
func TestLive(t *testing.T) { collectortest.Live(t, Collector{}) }

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("testdata/debian12/etc/passwd")
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := uid0(data, nil)
		require.NoError(t, r.Validate())
		parsePasswd(data)
	})
}

func runOS(t *testing.T, osName string, out map[string]string, settings collectors.Settings) map[string]evidence.Result {
	t.Helper()
	h := &host.Host{OS: osName, Runner: &host.Replay{Dir: "testdata/out", Outputs: out}}
	return collectortest.Collect(t, Collector{}, h, settings)
}

func TestWindowsAccounts(t *testing.T) {
	out := map[string]string{
		"net localgroup administrators":                                  "windows/net-localgroup-administrators.txt",
		"powershell -NoProfile -NonInteractive -Command " + psLocalUsers: "windows/get-localuser.json",
		"net accounts": "windows/net-accounts.txt",
	}
	rs := runOS(t, "windows", out, nil)
	require.Equal(t, "4 administrators: Administrator, CORP\\Domain Admins, alice, helpdesk", rs[checkAdmins].Reason)
	require.Equal(t, "the built-in Administrator account (Administrator) is disabled", rs[checkUID0].Reason)
	require.Equal(t, "enabled accounts that may have an empty password (PasswordRequired false): kiosk", rs[checkEmpty].Reason)
	require.Equal(t, "minimum password length 7 < 12", rs[checkPolicy].Reason)
	rs = runOS(t, "windows", out, &Settings{MinLength: 12, AllowedAdmins: []string{"Administrator", "CORP\\Domain Admins", "alice"}})
	require.Equal(t, "administrators not in the allowed list: helpdesk", rs[checkAdmins].Reason)
	rs = runOS(t, "windows", map[string]string{}, nil)
	for _, r := range rs {
		require.Equal(t, evidence.Error, r.Status, r.Check)
	}
}

func TestMacOSAccounts(t *testing.T) {
	rs := runOS(t, "darwin", map[string]string{
		"dscl . -read /Groups/admin GroupMembership": "macos/dscl-admin.txt",
		"dscl . -list /Users UniqueID":               "macos/dscl-uniqueid.txt",
		"pwpolicy -getaccountpolicies":               "macos/pwpolicy.txt",
	}, nil)
	require.Equal(t, "3 administrators: root, alice, bob", rs[checkAdmins].Reason)
	require.Equal(t, "UniqueID 0 besides root: toor", rs[checkUID0].Reason)
	require.Equal(t, evidence.Error, rs[checkEmpty].Status)
	require.Equal(t, "minimum password length 14", rs[checkPolicy].Reason)
}

func FuzzWindowsAndMacOSParsers(f *testing.F) {
	for _, p := range []string{"testdata/out/windows/net-localgroup-administrators.txt", "testdata/out/macos/pwpolicy.txt"} {
		b, _ := os.ReadFile(p)
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = netMembers(s)
		if n, _ := pwpolicyMinLength(s); n < -1 {
			t.Fatal(n)
		}
	})
}

// A German Windows: the Administrators group is read by its SID (its name
// there is Administratoren), and net accounts' labels by position.
func TestWindowsGerman(t *testing.T) {
	out := map[string]string{
		"powershell -NoProfile -NonInteractive -Command " + psAdmins:     "windows/get-localgroupmember-de.json",
		"powershell -NoProfile -NonInteractive -Command " + psLocalUsers: "windows/get-localuser.json",
		"net accounts": "windows/net-accounts-de.txt",
	}
	rs := runOS(t, "windows", out, nil)
	require.Equal(t, evidence.Pass, rs[checkAdmins].Status, rs[checkAdmins].Reason)
	require.Equal(t, "2 administrators: PC-0042\\Administrator, PC-0042\\anna", rs[checkAdmins].Reason)
	require.Equal(t, evidence.Pass, rs[checkPolicy].Status, rs[checkPolicy].Reason)
	require.Equal(t, "minimum password length 14", rs[checkPolicy].Reason)
}
