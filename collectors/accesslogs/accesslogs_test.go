package accesslogs

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/collectortest"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

// The captures were made on 2026-11-27 around 04:30 UTC.
var testNow = time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)

func fixtureHost(root string, outputs map[string]string) *host.Host {
	return &host.Host{Root: root, OS: "linux", Runner: &host.Replay{Dir: "testdata", Outputs: outputs},
		Clock: func() time.Time { return testNow }, MaxOutput: 1 << 20}
}

// with is the default settings changed by set.
func with(set func(*Settings)) *Settings {
	s := defaults()
	set(s)
	return s
}

func run(t *testing.T, h *host.Host, settings collectors.Settings, cur []byte) (map[string]evidence.Result, []byte) {
	t.Helper()
	rs, next, err := Collector{}.CollectSince(context.Background(), h, settings, cur)
	require.NoError(t, err)
	return collectortest.ByCheck(t, Collector{}, rs), next
}

func obs(t *testing.T, r evidence.Result) map[string]any {
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Observations, &m), r.Reason)
	return m
}

// A real Debian 12 auth.log (rsyslog, RFC 3339 timestamps): ssh logins,
// a root login, a burst of failed root passwords and invalid users, sudo
// and su, successful and failed.
func TestDebianAuthLog(t *testing.T) {
	rs, cur := run(t, fixtureHost("testdata/debian12", nil), nil, nil)
	require.Equal(t, evidence.Pass, rs[checkEvents].Status)
	require.Equal(t, "3 successful and 16 failed logins since the last run", rs[checkEvents].Reason)
	o := obs(t, rs[checkEvents])
	require.Equal(t, map[string]any{"alice": 1.0, "bob": 1.0, "root": 1.0}, o["logins"].(map[string]any)["by_user"])
	require.Equal(t, map[string]any{"root": 12.0, "admin": 3.0, "bob": 1.0}, o["failed_logins"].(map[string]any)["by_user"])
	require.Equal(t, map[string]any{"ok": 3.0, "failed": 16.0}, o["by_source"].(map[string]any)["127.0.0.1"])

	require.Equal(t, evidence.Fail, rs[checkRoot].Status)
	require.Equal(t, "1 direct root logins since the last run", rs[checkRoot].Reason)

	require.Equal(t, evidence.Fail, rs[checkBrute].Status)
	require.Equal(t, "1 brute-force bursts from 127.0.0.1", rs[checkBrute].Reason)
	b := obs(t, rs[checkBrute])["bursts"].([]any)[0].(map[string]any)
	require.EqualValues(t, 16, b["failures"])

	require.Equal(t, evidence.Pass, rs[checkPrivileged].Status)
	require.Equal(t, "privileged use by alice, root (no privileged_users list to compare against)", rs[checkPrivileged].Reason)
	p := obs(t, rs[checkPrivileged])["by_user"].(map[string]any)
	require.Equal(t, map[string]any{"ok": 1.0, "failed": 3.0, "as": map[string]any{"root": 1.0}, "via": map[string]any{"sudo": 1.0}}, p["alice"])
	require.EqualValues(t, 2, p["root"].(map[string]any)["ok"])

	require.Equal(t, evidence.Pass, rs[checkPersistent].Status)
	require.Contains(t, rs[checkPersistent].Reason, "/var/log/auth.log is kept on disk")

	// Only alice may escalate: root's su fails the check.
	rs, _ = run(t, fixtureHost("testdata/debian12", nil), with(func(s *Settings) { s.PrivilegedUsers = []string{"alice"} }), nil)
	require.Equal(t, evidence.Fail, rs[checkPrivileged].Status)
	require.Equal(t, "privileged use by users not in privileged_users: root", rs[checkPrivileged].Reason)

	// Nothing new: the next run from the cursor counts nothing.
	rs, _ = run(t, fixtureHost("testdata/debian12", nil), nil, cur)
	require.Equal(t, "0 successful and 0 failed logins since the last run", rs[checkEvents].Reason)
	require.Equal(t, evidence.Pass, rs[checkRoot].Status)
	require.Equal(t, "continued from the last run's position", obs(t, rs[checkEvents])["period"].(map[string]any)["continuity"])
}

// A real rsyslog capture in the traditional format RHEL's /var/log/secure
// uses (no year), with "message repeated N times".
func TestTraditionalSecure(t *testing.T) {
	rs, _ := run(t, fixtureHost("testdata/traditional", nil), nil, nil)
	require.Equal(t, "1 successful and 6 failed logins since the last run", rs[checkEvents].Reason)
	require.Equal(t, evidence.Pass, rs[checkBrute].Status)
	p := obs(t, rs[checkPrivileged])["by_user"].(map[string]any)
	require.EqualValues(t, 3, p["bob"].(map[string]any)["failed"], "1 line + message repeated 2 times")
	require.Equal(t, "/var/log/secure", obs(t, rs[checkEvents])["period"].(map[string]any)["source"])

	rs, _ = run(t, fixtureHost("testdata/traditional", nil), with(func(s *Settings) { s.BruteForceFailures = 4 }), nil)
	require.Equal(t, "1 brute-force bursts from 127.0.0.1", rs[checkBrute].Reason)
}

// A real journald capture (journalctl -o json) when no auth log file exists.
func TestJournald(t *testing.T) {
	since := "journalctl -o json --no-pager -q SYSLOG_FACILITY=4 SYSLOG_FACILITY=10 --since=@" + "1795669200"
	h := fixtureHost(t.TempDir(), map[string]string{since: "journald/journalctl-auth.json"})
	rs, cur := run(t, h, nil, nil)
	require.Equal(t, "3 successful and 15 failed logins since the last run", rs[checkEvents].Reason)
	require.Equal(t, evidence.Fail, rs[checkRoot].Status)
	require.Equal(t, evidence.Fail, rs[checkPersistent].Status, "no auth.log, no /var/log/journal, Storage=auto")
	var c cursor
	require.NoError(t, json.Unmarshal(cur, &c))
	require.Equal(t, "journald", c.Source)
	require.True(t, strings.HasPrefix(c.Journal, "s="), c.Journal)

	// The next run asks journald for what came after that cursor.
	h = fixtureHost(h.Root, map[string]string{"journalctl -o json --no-pager -q SYSLOG_FACILITY=4 SYSLOG_FACILITY=10 --after-cursor=" + c.Journal: "journald/empty.json"})
	rs, _ = run(t, h, nil, cur)
	require.Equal(t, "0 successful and 0 failed logins since the last run", rs[checkEvents].Reason)

	// journald persistent: the journal directory exists.
	require.NoError(t, os.MkdirAll(filepath.Join(h.Root, "var/log/journal"), 0o755))
	rs, _ = run(t, h, nil, cur)
	require.Equal(t, evidence.Pass, rs[checkPersistent].Status)
	require.NoError(t, os.MkdirAll(filepath.Join(h.Root, "etc/systemd/journald.conf.d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(h.Root, "etc/systemd/journald.conf.d/volatile.conf"), []byte("[Journal]\nStorage=volatile\n"), 0o644))
	rs, _ = run(t, h, nil, cur)
	require.Equal(t, evidence.Fail, rs[checkPersistent].Status)
	require.Contains(t, rs[checkPersistent].Reason, "Storage=volatile")
}

func TestNoSource(t *testing.T) {
	rs, next := run(t, fixtureHost(t.TempDir(), nil), nil, nil)
	require.Nil(t, next, "no cursor moves when nothing was read")
	for _, id := range []string{checkEvents, checkPrivileged, checkRoot, checkBrute} {
		require.Equal(t, evidence.Error, rs[id].Status)
		require.Contains(t, rs[id].Reason, "no authentication log")
	}
	require.Equal(t, evidence.Fail, rs[checkPersistent].Status)
}

// The rotation scenario: the real capture arrives in pieces across runs
// while logrotate renames, compresses (and in the copytruncate variant,
// truncates) the file, a run sees a half-written last line, and the agent
// restarts with only its cursor. Added up, the runs count exactly what one
// pass over the whole capture counts.
func TestRotationNeitherLosesNorRepeats(t *testing.T) {
	all, err := os.ReadFile("testdata/debian12/var/log/auth.log")
	require.NoError(t, err)
	lines := strings.SplitAfter(string(all), "\n")
	lines = lines[:len(lines)-1]
	whole, _ := run(t, fixtureHost("testdata/debian12", nil), nil, nil)

	for _, copytruncate := range []bool{false, true} {
		root := t.TempDir()
		dir := filepath.Join(root, "var/log")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		live := filepath.Join(dir, "auth.log")
		appendLines := func(s string) {
			f, err := os.OpenFile(live, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
			require.NoError(t, err)
			_, err = f.WriteString(s)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}
		rotate := func() {
			// .1 -> .2.gz, live -> .1 (delaycompress), as Debian's logrotate
			if b, err := os.ReadFile(live + ".1"); err == nil {
				var z bytes.Buffer
				zw := gzip.NewWriter(&z)
				_, _ = zw.Write(b)
				require.NoError(t, zw.Close())
				if old, err := os.ReadFile(live + ".2.gz"); err == nil {
					require.NoError(t, os.WriteFile(live+".3.gz", old, 0o640))
				}
				require.NoError(t, os.WriteFile(live+".2.gz", z.Bytes(), 0o640))
			}
			if copytruncate {
				b, err := os.ReadFile(live)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(live+".1", b, 0o640))
				require.NoError(t, os.Truncate(live, 0))
			} else {
				require.NoError(t, os.Rename(live, live+".1"))
			}
		}
		total := map[string]float64{}
		var cur []byte
		collect := func() {
			rs, next := run(t, fixtureHost(root, nil), nil, cur)
			cur = next
			o := obs(t, rs[checkEvents])
			total["ok"] += o["logins"].(map[string]any)["total"].(float64)
			total["fail"] += o["failed_logins"].(map[string]any)["total"].(float64)
		}
		appendLines(strings.Join(lines[:30], ""))
		collect()
		appendLines(strings.Join(lines[30:50], ""))
		rotate()
		appendLines(strings.Join(lines[50:70], ""))
		collect()
		rotate()
		collect() // right after rotation: the live file is empty
		appendLines(strings.Join(lines[70:90], "") + lines[90][:20])
		collect() // a half-written line is left for later
		appendLines(lines[90][20:])
		rotate()
		appendLines(strings.Join(lines[91:], ""))
		collect()
		collect()
		wo := obs(t, whole[checkEvents])
		// Counts decoded from JSON: whole numbers, compared as such.
		require.Equal(t, int(total["ok"]), int(wo["logins"].(map[string]any)["total"].(float64)), "copytruncate=%v", copytruncate)
		require.Equal(t, int(total["fail"]), int(wo["failed_logins"].(map[string]any)["total"].(float64)), "copytruncate=%v", copytruncate)
	}
}

// A cursor whose file has rotated out of reach: events are counted by
// time and the result says events may be missing.
func TestLostCursor(t *testing.T) {
	cur, _ := json.Marshal(cursor{Source: "/var/log/auth.log", FP: "0123456789abcdef01234567", Offset: 99, Last: time.Date(2026, 11, 27, 4, 27, 0, 0, time.UTC)})
	rs, _ := run(t, fixtureHost("testdata/debian12", nil), nil, cur)
	require.Equal(t, "0 successful and 7 failed logins since the last run", rs[checkEvents].Reason)
	require.Contains(t, obs(t, rs[checkEvents])["period"].(map[string]any)["continuity"], "any rotated away unread are missing")

	// A damaged cursor reads the lookback window again rather than failing,
	// and says so.
	rs, _ = run(t, fixtureHost("testdata/debian12", nil), nil, []byte("{not json"))
	require.Equal(t, "3 successful and 16 failed logins since the last run", rs[checkEvents].Reason)
	require.Contains(t, obs(t, rs[checkEvents])["period"].(map[string]any)["continuity"], "the stored cursor was unreadable")
}

func TestLines(t *testing.T) {
	for line, want := range map[string]event{
		"Nov 27 04:31:07 vm sshd[23484]: Accepted publickey for alice from 2001:db8::7 port 39162 ssh2: ED25519 SHA256:x":            {Kind: loginOK, User: "alice", Source: "2001:db8::7", Service: "sshd"},
		"2026-11-27T04:27:09.099652+00:00 vm sshd[22591]: Failed password for invalid user admin from 127.0.0.1 port 34674 ssh2":     {Kind: loginFail, User: "admin", Source: "127.0.0.1", Service: "sshd", Invalid: true},
		"Nov 27 04:31:18 vm sshd[1]: message repeated 5 times: [ Failed password for root from 203.0.113.9 port 22 ssh2]":            {Kind: loginFail, User: "root", Source: "203.0.113.9", Service: "sshd", Count: 5},
		"Nov 27 04:31:18 vm login[812]: ROOT LOGIN  on '/dev/tty1'":                                                                  {Kind: loginOK, User: "root", Source: "/dev/tty1", Service: "login"},
		"Nov 27 04:31:18 vm login[812]: FAILED LOGIN (1) on '/dev/tty1' FOR 'alice', Authentication failure":                         {Kind: loginFail, User: "alice", Source: "/dev/tty1", Service: "login"},
		"Nov 27 04:31:18 vm su[9]: FAILED SU (to root) alice on pts/0":                                                               {Kind: privFail, User: "alice", Target: "root", Source: "pts/0", Service: "su"},
		"Nov 27 04:31:18 vm su[9]: FAILED su for root by alice":                                                                      {Kind: privFail, User: "alice", Target: "root", Service: "su"},
		"Nov 27 04:31:18 vm gdm-password][1402]: pam_unix(gdm-password:session): session opened for user alice(uid=1000) by (uid=0)": {Kind: loginOK, User: "alice", Service: "gdm"},
		"Nov 27 04:31:18 vm sudo:    carol : 3 incorrect password attempts ; TTY=pts/2 ; PWD=/ ; USER=postgres ; COMMAND=/bin/sh":    {Kind: privFail, User: "carol", Target: "postgres", Source: "pts/2", Service: "sudo", Count: 3},
	} {
		got, ok := parseSyslogLine(line, testNow)
		require.True(t, ok, line)
		if want.Count == 0 {
			want.Count = 1
		}
		got.Time = time.Time{}
		require.Equal(t, want, got, line)
	}
	for _, line := range []string{"", "garbage", "Nov 27 04:31:18 vm kernel: Accepted password for x from y port 1", "Nov 27 04:31:18 vm sshd[1]: Connection closed by authenticating user root 1.2.3.4 port 22 [preauth]",
		"2026-13-45T99:00:00Z vm sshd[1]: Accepted password for a from b port 1"} {
		_, ok := parseSyslogLine(line, testNow)
		require.False(t, ok, line)
	}
	// December's lines read in early January belong to the past year.
	e, ok := parseSyslogLine("Dec 31 23:59:59 vm sshd[1]: Accepted password for a from b port 1 ssh2", time.Date(2027, 1, 1, 0, 5, 0, 0, time.UTC))
	require.True(t, ok)
	require.Equal(t, 2026, e.Time.Year())
}

func TestLive(t *testing.T) { collectortest.Live(t, Collector{}) }

func FuzzSyslogLine(f *testing.F) {
	b, _ := os.ReadFile("testdata/debian12/var/log/auth.log")
	for _, l := range strings.Split(string(b), "\n")[:40] {
		f.Add(l)
	}
	f.Add("Nov 27 04:31:18 vm sudo: message repeated 2 times: [    bob : user NOT in sudoers ; TTY=pts/1 ; USER=root ; COMMAND=/bin/sh]")
	f.Fuzz(func(t *testing.T, line string) {
		e, ok := parseSyslogLine(line, testNow)
		if ok && e.Count < 0 {
			t.Fatalf("negative count from %q", line)
		}
	})
}

func FuzzJournal(f *testing.F) {
	b, _ := os.ReadFile("testdata/journald/journalctl-auth.json")
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseJournal(b, newSummary(10, time.Minute))
	})
}

func TestWindowsSecurityLog(t *testing.T) {
	first := "wevtutil qe Security /q:" + winQuery(0, 24*time.Hour) + " /f:xml /e:Events /c:50000"
	out := map[string]string{first: "windows/security-events.xml", "wevtutil gl Security": "windows/wevtutil-gl-security.txt"}
	h := &host.Host{OS: "windows", Runner: &host.Replay{Dir: "testdata", Outputs: out}, Clock: func() time.Time { return testNow }}
	rs, cur := run(t, h, nil, nil)
	require.Equal(t, "3 successful and 12 failed logins since the last run", rs[checkEvents].Reason)
	require.Equal(t, "1 direct root logins since the last run", rs[checkRoot].Reason, "the built-in Administrator (RID 500)")
	require.Equal(t, "1 brute-force bursts from 203.0.113.77", rs[checkBrute].Reason)
	require.Equal(t, "privileged use by alice (no privileged_users list to compare against)", rs[checkPrivileged].Reason)
	require.Equal(t, evidence.Pass, rs[checkPersistent].Status)
	var c cursor
	require.NoError(t, json.Unmarshal(cur, &c))
	require.EqualValues(t, 918231, c.Record)

	out["wevtutil qe Security /q:"+winQuery(918231, 0)+" /f:xml /e:Events /c:50000"] = "windows/security-empty.xml"
	rs, _ = run(t, h, nil, cur)
	require.Equal(t, "0 successful and 0 failed logins since the last run", rs[checkEvents].Reason)
	require.Equal(t, "after event record 918231", obs(t, rs[checkEvents])["period"].(map[string]any)["continuity"])

	// Not elevated: wevtutil is refused; an error naming it, and the cursor stays.
	h.Runner = &host.Replay{Dir: "testdata", Outputs: map[string]string{}}
	rs, next := run(t, h, nil, cur)
	require.Nil(t, next)
	require.Equal(t, evidence.Error, rs[checkEvents].Status)
	require.Contains(t, rs[checkEvents].Reason, "needs an elevated agent")
}

func TestMacOSUnifiedLog(t *testing.T) {
	now := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
	cmd := func(since time.Time) string {
		return "log show --style ndjson --info --predicate " + macPredicate + " --start " + since.Local().Format("2006-01-02 15:04:05")
	}
	out := map[string]string{cmd(now.Add(-24 * time.Hour)): "macos/log-show.ndjson"}
	root := t.TempDir()
	h := &host.Host{Root: root, OS: "darwin", Runner: &host.Replay{Dir: "testdata", Outputs: out}, Clock: func() time.Time { return now }}
	rs, cur := run(t, h, nil, nil)
	require.Equal(t, "1 successful and 2 failed logins since the last run", rs[checkEvents].Reason)
	require.Equal(t, "privileged use by alice (no privileged_users list to compare against)", rs[checkPrivileged].Reason)
	require.Equal(t, evidence.Fail, rs[checkPersistent].Status, "no persisted log store")
	persist := filepath.Join(root, "var/db/diagnostics/Persist")
	require.NoError(t, os.MkdirAll(persist, 0o755))
	f := filepath.Join(persist, "0000000000000001.tracev3")
	require.NoError(t, os.WriteFile(f, []byte("x"), 0o644))
	require.NoError(t, os.Chtimes(f, now.Add(-time.Hour), now.Add(-time.Hour)))
	rs, _ = run(t, h, nil, nil)
	require.Equal(t, evidence.Pass, rs[checkPersistent].Status, rs[checkPersistent].Reason)
	var c cursor
	require.NoError(t, json.Unmarshal(cur, &c))
	// The next run starts at the last event's second and skips what it already read.
	out[cmd(c.Last)] = "macos/log-show.ndjson"
	rs, _ = run(t, h, nil, cur)
	require.Equal(t, "0 successful and 0 failed logins since the last run", rs[checkEvents].Reason)
}

func FuzzWinEvents(f *testing.F) {
	b, _ := os.ReadFile("testdata/windows/security-events.xml")
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseWinEvents(b, 0, newSummary(10, time.Minute)) })
}
