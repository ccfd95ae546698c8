package screenlock

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/collectortest"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

func collect(t *testing.T, osName, root string, outputs map[string]string) map[string]evidence.Result {
	t.Helper()
	h := &host.Host{Root: root, OS: osName, Runner: &host.Replay{Dir: "testdata/out", Outputs: outputs}, Clock: time.Now}
	rs, err := Collector{}.Collect(context.Background(), h, nil)
	require.NoError(t, err)
	rs = collectors.Complete(Collector{}, rs)
	return map[string]evidence.Result{rs[0].Check: rs[0], rs[1].Check: rs[1]}
}

func dconf(user, key string) string {
	return "env HOME=/home/" + user + " XDG_CONFIG_HOME=/home/" + user + "/.config dconf read " + key
}

const (
	idleKey  = "/org/gnome/desktop/session/idle-delay"
	lockKey  = "/org/gnome/desktop/screensaver/lock-enabled"
	delayKey = "/org/gnome/desktop/screensaver/lock-delay"
	downKey  = "/org/gnome/desktop/lockdown/disable-lock-screen"
)

func linuxOutputs() map[string]string {
	m := map[string]string{
		"loginctl list-sessions --no-legend": "loginctl-sessions.txt",
	}
	for _, id := range []string{"2", "5", "7", "c1", "9"} {
		m["loginctl show-session "+id+" -p Type -p Desktop -p Name -p Class"] = "session-" + id + ".txt"
	}
	for _, u := range []string{"alice", "bob"} {
		for _, k := range []string{lockKey, delayKey, downKey} {
			m[dconf(u, k)] = "dconf-unset.txt"
		}
	}
	m[dconf("alice", idleKey)] = "dconf-600.txt"
	m[dconf("bob", idleKey)] = "dconf-0.txt"
	return m
}

// Every graphical session is read as its own user: alice (GNOME, 10 min),
// bob (GNOME, idle-delay 0: never), carol (KDE, 30 min); the greeter and
// alice's ssh session are not desktops.
func TestLinuxPerUser(t *testing.T) {
	root := copyTree(t, "testdata/desktop")
	rs := collect(t, "linux", root, linuxOutputs())
	require.Equal(t, evidence.Fail, rs[checkIdle].Status)
	require.Equal(t, "locks later than 15 minutes or never: bob (never locks), carol (30 min)", rs[checkIdle].Reason)
	require.Equal(t, evidence.Pass, rs[checkPassword].Status)
	var o struct {
		Users []userLock `json:"users"`
	}
	require.NoError(t, json.Unmarshal(rs[checkIdle].Observations, &o))
	require.Len(t, o.Users, 3)
	require.Equal(t, 600, o.Users[0].LockAfter)

	// The administrator locks idle-delay at 5 minutes: bob's own 0 no
	// longer counts. Carol's KDE is fixed in her own file.
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc/dconf/db/local.d/locks"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/dconf/db/local.d/locks/screensaver"), []byte(idleKey+"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "home/carol/.config/kscreenlockerrc"), []byte("[Daemon]\nTimeout=10\n"), 0o644))
	rs = collect(t, "linux", root, linuxOutputs())
	require.Equal(t, evidence.Pass, rs[checkIdle].Status, rs[checkIdle].Reason)
	require.Equal(t, "every session locks within 15 minutes: alice, bob, carol", rs[checkIdle].Reason)
	require.NoError(t, json.Unmarshal(rs[checkIdle].Observations, &o))
	require.Equal(t, 300, o.Users[0].LockAfter, "the locked policy wins over alice's own 600")
	require.Equal(t, "dconf lock", o.Users[1].EnforcedBy)

	// The lock screen disabled: the screen blanks but does not ask for a password.
	out := linuxOutputs()
	out[dconf("alice", downKey)] = "dconf-true.txt"
	rs = collect(t, "linux", root, out)
	require.Equal(t, evidence.Fail, rs[checkPassword].Status)
	require.Equal(t, "the lock does not ask for the password: alice", rs[checkPassword].Reason)

	// dconf missing: an error naming it, not a pass.
	out = linuxOutputs()
	delete(out, dconf("bob", idleKey))
	rs = collect(t, "linux", copyTree(t, "testdata/desktop"), out)
	require.Equal(t, evidence.Fail, rs[checkIdle].Status, "carol still fails")
	require.Equal(t, evidence.Error, rs[checkPassword].Status)
	require.Contains(t, rs[checkPassword].Reason, "bob: dconf read "+idleKey)
}

func TestLinuxHeadlessAndNobodyLoggedIn(t *testing.T) {
	// No display manager and no logind: a server.
	rs := collect(t, "linux", t.TempDir(), map[string]string{})
	require.Equal(t, evidence.NotApplicable, rs[checkIdle].Status)
	require.Contains(t, rs[checkIdle].Reason, "headless")

	// A desktop machine whose logind cannot be asked: an error, not n/a.
	rs = collect(t, "linux", "testdata/desktop", map[string]string{})
	require.Equal(t, evidence.Error, rs[checkIdle].Status)
	require.Contains(t, rs[checkIdle].Reason, "display manager /etc/X11/default-display-manager present")
}

func TestMacOS(t *testing.T) {
	out := map[string]string{
		"who": "macos/who.txt",
		"sudo -u alice defaults -currentHost read com.apple.screensaver idleTime": "macos/idle-600.txt",
		"sudo -u alice sh -c sysadminctl -screenLock status 2>&1":                 "macos/screenlock-immediate.txt",
		"sudo -u bob defaults -currentHost read com.apple.screensaver idleTime":   "!exit 1",
		"sudo -u bob sh -c sysadminctl -screenLock status 2>&1":                   "macos/screenlock-off.txt",
	}
	rs := collect(t, "darwin", "", out)
	require.Equal(t, "locks later than 15 minutes or never: bob (never locks)", rs[checkIdle].Reason)
	require.Equal(t, "the lock does not ask for the password: bob", rs[checkPassword].Reason)
	var o struct {
		Users []userLock `json:"users"`
	}
	require.NoError(t, json.Unmarshal(rs[checkIdle].Observations, &o))
	require.Equal(t, 1200, o.Users[1].IdleSeconds, "macOS's 20-minute default when idleTime was never set")
}

func TestWindows(t *testing.T) {
	const sid = `HKU\S-1-5-21-3623811015-3361044348-30300820-`
	out := map[string]string{
		"reg query HKU": "windows/hku.txt",
		`reg query HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System`:            "windows/system-nopolicy.txt",
		"reg query " + sid + `1013\Volatile Environment`:                                      "windows/env-1013.txt",
		"reg query " + sid + `1014\Volatile Environment`:                                      "windows/env-1014.txt",
		"reg query " + sid + `1013\Control Panel\Desktop`:                                     "windows/desktop-1013.txt",
		"reg query " + sid + `1014\Control Panel\Desktop`:                                     "windows/desktop-1014.txt",
		"reg query " + sid + `1013\Software\Policies\Microsoft\Windows\Control Panel\Desktop`: "!exit 1",
		"reg query " + sid + `1014\Software\Policies\Microsoft\Windows\Control Panel\Desktop`: "!exit 1",
	}
	rs := collect(t, "windows", "", out)
	require.Equal(t, "locks later than 15 minutes or never: bob (never locks)", rs[checkIdle].Reason)
	require.Equal(t, "the lock does not ask for the password: bob", rs[checkPassword].Reason)

	// The machine inactivity limit (900 s) locks every session.
	out[`reg query HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System`] = "windows/system-policy.txt"
	rs = collect(t, "windows", "", out)
	require.Equal(t, evidence.Pass, rs[checkIdle].Status, rs[checkIdle].Reason)
	require.Equal(t, evidence.Pass, rs[checkPassword].Status)
}

func TestLive(t *testing.T) { collectortest.Live(t, Collector{}) }

func copyTree(t *testing.T, src string) string {
	dst := t.TempDir()
	require.NoError(t, os.CopyFS(dst, os.DirFS(src)))
	return dst
}

func FuzzSettingsParsers(f *testing.F) {
	for _, p := range []string{"testdata/out/windows/desktop-1013.txt", "testdata/out/session-2.txt", "testdata/desktop/home/carol/.config/kscreenlockerrc"} {
		b, _ := os.ReadFile(p)
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = keyValues(s, "=")
		_, _ = gvariantUint(s)
		_, _ = host.RegInt(s)
	})
}
