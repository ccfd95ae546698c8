package patchlevel

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/capture"
	"github.com/annexa-dev/annexa/collectors/collectortest"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

const sim = "apt-get -s -o Debug::NoLocking=1 upgrade"

func run(t *testing.T, root, simFile string, now time.Time) map[string]evidence.Result {
	t.Helper()
	h := &host.Host{Root: "testdata/" + root, OS: "linux", Clock: func() time.Time { return now },
		Runner: &host.Replay{Dir: "testdata", Outputs: map[string]string{sim: simFile}}}
	return collectortest.Collect(t, Collector{}, h, nil)
}

func st(rs map[string]evidence.Result) map[string]evidence.Status { return collectortest.Statuses(rs) }

func TestDebianAsCaptured(t *testing.T) {
	rs := run(t, "debian12", "apt-simulate-upgrade.txt", time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC))
	require.Equal(t, map[string]evidence.Status{
		checkPending: evidence.Fail, checkSecurity: evidence.Fail, checkAuto: evidence.Fail,
		checkAge: evidence.Error, checkReboot: evidence.Pass, checkRelease: evidence.Pass,
	}, st(rs))
	require.Equal(t, "78 package updates pending (20 security)", rs[checkPending].Reason)
	// The captured dpkg.log holds only new installs: that is no update.
	require.Contains(t, rs[checkAge].Reason, "/var/log/dpkg.log hold no package upgrade (8 new installs, which are not updates")
	require.Contains(t, rs[checkSecurity].Reason, "20 security updates pending: libgnutls28-dev")
	require.Contains(t, rs[checkRelease].Reason, "supported until 2028-06-30")
	require.Contains(t, string(rs[checkPending].Observations), `"package":"base-files","from":"12.4+deb12u11","to":"12.4+deb12u14","origin":"Debian:12.14/oldstable"`)
}

func TestSecurityAutoRebootStale(t *testing.T) {
	rs := run(t, "auto", "apt-simulate-security.txt", time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC))
	require.Equal(t, evidence.Fail, rs[checkSecurity].Status)
	require.Equal(t, "2 security updates pending: libssl3, openssl", rs[checkSecurity].Reason)
	require.Equal(t, evidence.Pass, rs[checkAuto].Status)
	require.Equal(t, evidence.Fail, rs[checkReboot].Status)
	require.Equal(t, "a reboot is required to finish updates (libc6)", rs[checkReboot].Reason)
	require.Equal(t, evidence.Fail, rs[checkAge].Status)
	require.Equal(t, "packages last upgraded 72 days ago (more than 30), per /var/log/apt/history.log by /usr/bin/unattended-upgrade", rs[checkAge].Reason)
	// Past the release's end of support.
	rs = run(t, "auto", "apt-simulate-security.txt", time.Date(2028, 7, 2, 0, 0, 0, 0, time.UTC))
	require.Equal(t, evidence.Fail, rs[checkRelease].Status)
}

func TestNoAptIsError(t *testing.T) {
	h := &host.Host{Root: "testdata/debian12", OS: "linux", Runner: &host.Replay{}, Clock: time.Now}
	rs, _ := Collector{}.Collect(context.Background(), h, nil)
	for _, r := range rs {
		if r.Check != checkRelease {
			require.Equal(t, evidence.Error, r.Status, r.Check)
			require.Contains(t, r.Reason, "neither apt-get nor rpm is installed")
		}
	}
	require.Empty(t, pending([]byte("garbage"), nil, 0)[0].Observations)
	require.Equal(t, evidence.Error, pending([]byte("garbage"), nil, 0)[0].Status)
}

// The collector also reads this machine and decides every check, or says why not.
func TestLive(t *testing.T) { collectortest.Live(t, Collector{}) }

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("testdata/apt-simulate-security.txt")
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, r := range pending(data, nil, 0) {
			require.NoError(t, r.Validate())
		}
		parseKV(data, "=")
	})
}

func TestRHEL(t *testing.T) {
	outputs := map[string]string{
		"rpm --version":                                 "dnf-check-update.txt",
		"dnf -q --cacheonly check-update":               "!exit 100 dnf-check-update.txt",
		"dnf -q --cacheonly updateinfo list --security": "dnf-updateinfo-security.txt",
		"needs-restarting -r":                           "!exit 1 needs-restarting-reboot.txt",
	}
	h := &host.Host{Root: "testdata/rhel9", OS: "linux", Clock: func() time.Time { return time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC) },
		Runner: &host.Replay{Dir: "testdata", Outputs: outputs}}
	rs, err := Collector{}.Collect(context.Background(), h, nil)
	require.NoError(t, err)
	got := map[string]evidence.Result{}
	for _, r := range collectors.Complete(Collector{}, rs) {
		got[r.Check] = r
	}
	require.Equal(t, map[string]evidence.Status{
		checkPending: evidence.Fail, checkSecurity: evidence.Fail, checkAuto: evidence.Fail,
		checkAge: evidence.Fail, checkReboot: evidence.Fail, checkRelease: evidence.Pass,
	}, st(got))
	require.Equal(t, "6 package updates pending (4 security)", got[checkPending].Reason)
	require.Equal(t, "4 security updates pending: kernel-core.x86_64, kernel.x86_64, openssl-libs.x86_64, openssl.x86_64", got[checkSecurity].Reason)
	require.Equal(t, "dnf-automatic.timer is enabled but apply_updates is not yes: updates are only downloaded", got[checkAuto].Reason)
	require.Equal(t, "packages last upgraded 85 days ago (more than 30), per /var/log/dnf.rpm.log by dnf", got[checkAge].Reason, "tmux installed on 2026-10-14 is no update")
	require.Equal(t, "a reboot is required to finish updates (kernel, systemd)", got[checkReboot].Reason)
	require.Equal(t, "Red Hat Enterprise Linux 9.4 (Plow) is supported until 2032-05-31", got[checkRelease].Reason)
	require.Contains(t, string(got[checkSecurity].Observations), "RHSA-2026:9033 Moderate/Sec.")

	// Nothing pending (exit 0), no reboot needed; dnf without a cache is an error, not a pass.
	outputs["dnf -q --cacheonly check-update"] = "empty.txt"
	outputs["needs-restarting -r"] = "empty.txt"
	rs, _ = Collector{}.Collect(context.Background(), h, nil)
	got = map[string]evidence.Result{}
	for _, r := range rs {
		got[r.Check] = r
	}
	require.Equal(t, evidence.Pass, got[checkPending].Status)
	require.Equal(t, evidence.Pass, got[checkReboot].Status)
	outputs["dnf -q --cacheonly check-update"] = "!exit 1"
	rs, _ = Collector{}.Collect(context.Background(), h, nil)
	for _, r := range rs {
		if r.Check == checkPending {
			require.Equal(t, evidence.Error, r.Status)
			require.Contains(t, r.Reason, "dnf check-update failed")
		}
	}
}

func runOS(t *testing.T, osName string, outputs map[string]string, now time.Time) map[string]evidence.Result {
	t.Helper()
	h := &host.Host{OS: osName, Clock: func() time.Time { return now }, Runner: &host.Replay{Dir: "testdata", Outputs: outputs}}
	return collectortest.Collect(t, Collector{}, h, nil)
}

func TestMacOS(t *testing.T) {
	out := map[string]string{
		"sw_vers -productVersion": "macos/sw_vers.txt",
		"softwareupdate -l":       "macos/softwareupdate-l.txt",
		"defaults read /Library/Preferences/com.apple.SoftwareUpdate": "macos/softwareupdate-prefs.txt",
		"system_profiler SPInstallHistoryDataType -json":              "macos/install-history.json",
	}
	rs := runOS(t, "darwin", out, time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC))
	require.Equal(t, "3 package updates pending (1 security)", rs[checkPending].Reason)
	require.Equal(t, "1 security updates pending: macOS Sonoma 14.7.1-23H222", rs[checkSecurity].Reason)
	require.Equal(t, "automatic updates partly off: AutomaticallyInstallMacOSUpdates = 0", rs[checkAuto].Reason)
	require.Equal(t, "last update (macOS Sonoma 14.6.1 14.6.1) 110 days ago (more than 30)", rs[checkAge].Reason)
	// An update that will restart when installed is a pending update,
	// not a pending restart.
	require.Equal(t, evidence.NotApplicable, rs[checkReboot].Status)
	require.Contains(t, rs[checkReboot].Reason, "1 of 3 listed updates will restart when installed")
	require.Equal(t, "macOS 14.7 is a supported major version (14, 15, 26)", rs[checkRelease].Reason)

	out["softwareupdate -l"] = "macos/softwareupdate-none.txt"
	rs = runOS(t, "darwin", out, time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC))
	require.Equal(t, evidence.Pass, rs[checkPending].Status)
	require.Equal(t, evidence.Pass, rs[checkSecurity].Status)
	require.Equal(t, evidence.NotApplicable, rs[checkReboot].Status)
}

// Real outputs of older and newer Macs: the list format before Catalina,
// "No new software available." on stderr (and Big Sur's silent stdout),
// a major upgrade on offer, and a third-party package that is no update.
func TestMacOSRealOutputs(t *testing.T) {
	at := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	base := map[string]string{
		"sw_vers -productVersion":                                     "macos/sw_vers.txt",
		"defaults read /Library/Preferences/com.apple.SoftwareUpdate": "macos/softwareupdate-prefs.txt",
		"system_profiler SPInstallHistoryDataType -json":              "macos/install-history.json",
	}
	macHost := func(list, stderr, swvers string) *host.Host {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		out["softwareupdate -l"] = list
		if swvers != "" {
			out["sw_vers -productVersion"] = swvers
		}
		r := &host.Replay{Dir: "testdata", Outputs: out}
		if stderr != "" {
			r.Stderr = map[string]string{"softwareupdate -l": stderr}
		}
		return &host.Host{OS: "darwin", Clock: func() time.Time { return at }, Runner: r}
	}
	runWith := func(list, stderr, swvers string) map[string]evidence.Result {
		return collectortest.Collect(t, Collector{}, macHost(list, stderr, swvers), nil)
	}
	// The real outputs, kept as captures that annexa-agent collect
	// --replay reads on any machine.
	composedBase := map[string]string{
		"sw_vers -productVersion":                                     "composed: sw_vers -productVersion of that release",
		"defaults read /Library/Preferences/com.apple.SoftwareUpdate": "composed: the SoftwareUpdate preferences as Apple documents their keys",
	}
	withSource := func(line, src string) map[string]string {
		m := map[string]string{line: src}
		for k, v := range composedBase {
			m[k] = v
		}
		return m
	}
	// Without the install history: the composed one is a Sonoma's.
	noHistory := func(h *host.Host) *host.Host {
		delete(h.Runner.(*host.Replay).Outputs, "system_profiler SPInstallHistoryDataType -json")
		return h
	}
	collectortest.Capture(t, Collector{}, noHistory(macHost("macos/softwareupdate-mojave.txt", "", "macos/sw_vers-10.14.txt")), "testdata/captures/macos-10.14-mojave-list", collectortest.CaptureMeta{
		OSVersion: "macOS 10.14.6 (Mojave)", Locale: "en_US", Provenance: capture.Mixed,
		Source:  "softwareupdate -l of a Mojave Mac as SaltStack's mac_softwareupdate unit tests keep it (MOJAVE_LIST_OUTPUT); the other commands composed",
		Sources: withSource("softwareupdate -l", "published: SaltStack, tests/unit/modules/test_mac_softwareupdate.py, MOJAVE_LIST_OUTPUT")})
	collectortest.Capture(t, Collector{}, noHistory(macHost("macos/softwareupdate-none.txt", "macos/softwareupdate-none-stderr.txt", "macos/sw_vers-10.15.txt")), "testdata/captures/macos-10.15-up-to-date", collectortest.CaptureMeta{
		OSVersion: "macOS 10.15.7 (Catalina)", Locale: "en_US", Provenance: capture.Mixed,
		Source:  "an up-to-date Mac of 10.12-10.15: softwareupdate -l answers on standard error; the other commands composed",
		Sources: withSource("softwareupdate -l", "published: \"No new software available.\" on standard error, as 10.12-10.15 print it in users' published terminal sessions")})

	rs := runWith("macos/softwareupdate-mojave.txt", "", "")
	require.Equal(t, evidence.Fail, rs[checkPending].Status)
	require.Equal(t, "4 package updates pending (1 security)", rs[checkPending].Reason)
	require.Equal(t, "1 security updates pending: macOS 10.14.1 Update", rs[checkSecurity].Reason, "Xcode's tools name macOS but are no OS update")
	require.Contains(t, rs[checkReboot].Reason, "1 of 4 listed updates will restart")

	rs = runWith("macos/softwareupdate-elcapitan.txt", "", "")
	require.Equal(t, "1 security updates pending: OS X El Capitan Update-10.11.6", rs[checkSecurity].Reason)

	for _, stdout := range []string{"macos/softwareupdate-none.txt", "macos/softwareupdate-bigsur-none.txt"} {
		rs = runWith(stdout, "macos/softwareupdate-none-stderr.txt", "")
		require.Equal(t, evidence.Pass, rs[checkPending].Status, stdout)
		require.Equal(t, "0 package updates pending", rs[checkPending].Reason, stdout)
	}
	// Big Sur's empty stdout without the stderr line is no answer.
	rs = runWith("macos/softwareupdate-bigsur-none.txt", "", "")
	require.Equal(t, evidence.Error, rs[checkPending].Status)

	// Sonoma on offer to a fully patched Ventura is an upgrade, not a
	// missing patch; Ventura's own update is.
	rs = runWith("macos/softwareupdate-major-offer.txt", "", "macos/sw_vers-13.txt")
	require.Equal(t, "1 security updates pending: macOS Ventura 13.7.1-22H221", rs[checkSecurity].Reason)
	require.Contains(t, rs[checkPending].Reason, "a major upgrade on offer, not counted: macOS Sonoma 14.7.1-23H222")

	// Zoom installed yesterday does not make the system 1 day old.
	require.Equal(t, "last update (macOS Sonoma 14.6.1 14.6.1) 110 days ago (more than 30)", rs[checkAge].Reason)
}

func TestWindows(t *testing.T) {
	ps := "powershell -NoProfile -NonInteractive -Command "
	out := map[string]string{
		"reg query " + regNT:     "windows/nt-currentversion.txt",
		ps + psPending:           "windows/wu-pending.json",
		ps + psHotfix:            "windows/qfe.json",
		"reg query " + regAU:     "windows/au-notify.txt",
		"reg query " + regReboot: "windows/reboot-required.txt",
		"reg query " + regCBS:    "!exit 1",
	}
	rs := runOS(t, "windows", out, time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC))
	require.Equal(t, map[string]evidence.Status{
		checkPending: evidence.Fail, checkSecurity: evidence.Fail, checkAuto: evidence.Fail,
		checkAge: evidence.Fail, checkReboot: evidence.Fail, checkRelease: evidence.Fail,
	}, st(rs))
	require.Equal(t, "3 package updates pending (2 security)", rs[checkPending].Reason)
	require.Equal(t, "policy only notifies or downloads (AUOptions = 2): updates wait for a person", rs[checkAuto].Reason)
	require.Equal(t, "last update KB5044285 installed 43 days ago (more than 30)", rs[checkAge].Reason)
	// The hotfix whose date cannot be read is counted, not fatal; the
	// FILETIME one is read (2023).
	require.Contains(t, string(rs[checkAge].Observations), `"unreadable_dates":["KB3000850"]`)
	require.Equal(t, "Windows 10 Pro 23H2 (build 22631) has been out of servicing since 2025-11-11", rs[checkRelease].Reason)

	// Unmanaged (no AU policy), nothing pending, no reboot markers.
	out["reg query "+regAU] = "!exit 1"
	out["reg query "+regReboot] = "!exit 1"
	out[ps+psPending] = "windows/wu-none.json"
	rs = runOS(t, "windows", out, time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC))
	require.Equal(t, evidence.Pass, rs[checkAuto].Status)
	require.Equal(t, evidence.Pass, rs[checkReboot].Status)
	require.Equal(t, "0 package updates pending", rs[checkPending].Reason)

	// An empty answer is no answer: not "nothing pending".
	out[ps+psPending] = "empty.txt"
	rs = runOS(t, "windows", out, time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC))
	require.Equal(t, evidence.Error, rs[checkPending].Status)
	require.Equal(t, evidence.Error, rs[checkSecurity].Status)
}

func FuzzSoftwareUpdate(f *testing.F) {
	b, _ := os.ReadFile("testdata/macos/softwareupdate-l.txt")
	f.Add(string(b))
	f.Fuzz(func(t *testing.T, s string) { _, _ = parseSoftwareUpdate(s) })
}

// The machine of the report: last upgraded 70 days ago, with updates
// pending, and a package installed today. Installing is not updating.
func TestInstallIsNoUpdate(t *testing.T) {
	rs := run(t, "stale", "apt-simulate-upgrade.txt", time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	require.Equal(t, evidence.Fail, rs[checkAge].Status)
	require.Equal(t, "packages last upgraded 70 days ago (more than 30), per /var/log/apt/history.log by apt-get -y upgrade", rs[checkAge].Reason)
	var o struct {
		Logs map[string]upgradeLog `json:"logs"`
	}
	require.NoError(t, json.Unmarshal(rs[checkAge].Observations, &o))
	require.Equal(t, 1, o.Logs["/var/log/apt/history.log"].Upgrades)
	require.Equal(t, 1, o.Logs["/var/log/apt/history.log"].Installs)
	require.Equal(t, 3, o.Logs["/var/log/dpkg.log"].Upgrades)
	require.Equal(t, 3, o.Logs["/var/log/dpkg.log"].Installs)

	// A rotated, compressed history is read too.
	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, os.DirFS("testdata/stale")))
	b, err := os.ReadFile("testdata/stale/var/log/apt/history.log")
	require.NoError(t, err)
	b = bytes.ReplaceAll(b, []byte("2026-09-22"), []byte("2026-11-25"))
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write(b)
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(root+"/var/log/apt/history.log.1.gz", z.Bytes(), 0o644))
	h := &host.Host{Root: root, OS: "linux", Clock: func() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) },
		Runner: &host.Replay{Dir: "testdata", Outputs: map[string]string{sim: "apt-simulate-upgrade.txt"}}}
	rs = collectortest.Collect(t, Collector{}, h, nil)
	require.Equal(t, evidence.Pass, rs[checkAge].Status, rs[checkAge].Reason)
	require.Contains(t, rs[checkAge].Reason, "packages last upgraded 6 days ago")
}

// No reboot-required flag is evidence only where something writes it; a
// newer installed kernel than the running one is a reboot due.
func TestRebootFromKernels(t *testing.T) {
	at := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	rs := run(t, "debian12", "apt-simulate-upgrade.txt", at)
	require.Equal(t, "the running kernel 6.1.0-27-amd64 is the newest of 1 installed, and no reboot-required flag is set", rs[checkReboot].Reason)

	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, os.DirFS("testdata/debian12")))
	require.NoError(t, os.WriteFile(root+"/boot/vmlinuz-6.1.0-28-amd64", nil, 0o644))
	require.NoError(t, os.WriteFile(root+"/boot/vmlinuz-6.1.0-9-amd64", nil, 0o644))
	h := &host.Host{Root: root, OS: "linux", Clock: func() time.Time { return at },
		Runner: &host.Replay{Dir: "testdata", Outputs: map[string]string{sim: "apt-simulate-upgrade.txt"}}}
	rs = collectortest.Collect(t, Collector{}, h, nil)
	require.Equal(t, evidence.Fail, rs[checkReboot].Status)
	require.Equal(t, "kernel 6.1.0-28-amd64 is installed but 6.1.0-27-amd64 is running: a reboot is due", rs[checkReboot].Reason)

	// A container: the kernel is the host's, nothing writes the flag.
	require.NoError(t, os.RemoveAll(root+"/boot"))
	rs = collectortest.Collect(t, Collector{}, h, nil)
	require.Equal(t, evidence.Error, rs[checkReboot].Status)
	require.Contains(t, rs[checkReboot].Reason, "cannot tell")
}
