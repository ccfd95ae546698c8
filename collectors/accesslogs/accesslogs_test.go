package accesslogs

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/collectortest"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/internal/units"
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

// headline is a reason up to its first ";": the counts that decided it.
func headline(r evidence.Result) string {
	h, _, _ := strings.Cut(r.Reason, ";")
	return h
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
	require.Equal(t, "3 successful and 16 failed logins since the last run", headline(rs[checkEvents]))
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
	require.Contains(t, rs[checkPersistent].Reason, "/var/log/auth.log is written by rsyslogd")
	require.Equal(t, "32m42s", obs(t, rs[checkPersistent])["newest_entry_age"])

	// Only alice may escalate: root's su fails the check.
	rs, _ = run(t, fixtureHost("testdata/debian12", nil), with(func(s *Settings) { s.PrivilegedUsers = []string{"alice"} }), nil)
	require.Equal(t, evidence.Fail, rs[checkPrivileged].Status)
	require.Equal(t, "privileged use by users not in privileged_users: root", rs[checkPrivileged].Reason)

	// Nothing new: the next run from the cursor counts nothing.
	rs, _ = run(t, fixtureHost("testdata/debian12", nil), nil, cur)
	require.Equal(t, "0 successful and 0 failed logins since the last run", headline(rs[checkEvents]))
	require.Equal(t, evidence.Pass, rs[checkRoot].Status)
	require.Equal(t, "continued from the last run's position", obs(t, rs[checkEvents])["period"].(map[string]any)["continuity"])
}

// A real rsyslog capture in the traditional format RHEL's /var/log/secure
// uses (no year), with "message repeated N times".
func TestTraditionalSecure(t *testing.T) {
	rs, _ := run(t, fixtureHost("testdata/traditional", nil), nil, nil)
	require.Equal(t, "1 successful and 6 failed logins since the last run", headline(rs[checkEvents]))
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
	newest := "journalctl -n 1 -o json --no-pager -q"
	root := t.TempDir()
	proc := func(pid, comm string) {
		require.NoError(t, os.MkdirAll(filepath.Join(root, "proc", pid), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, "proc", pid, "comm"), []byte(comm+"\n"), 0o644))
	}
	proc("1", "systemd")
	proc("388", "systemd-journal")
	h := fixtureHost(root, map[string]string{since: "journald/journalctl-auth.json", newest: "journald/newest.json"})
	rs, cur := run(t, h, nil, nil)
	require.Equal(t, "3 successful and 15 failed logins since the last run", headline(rs[checkEvents]))
	require.Equal(t, evidence.Fail, rs[checkRoot].Status)
	require.Equal(t, evidence.Fail, rs[checkPersistent].Status, "no auth.log, no /var/log/journal, Storage=auto")
	var c cursor
	require.NoError(t, json.Unmarshal(cur, &c))
	require.Equal(t, "journald", c.Source)
	require.True(t, strings.HasPrefix(c.Journal, "s="), c.Journal)

	// The next run asks journald for what came after that cursor: a quiet
	// hour of a journal read before is no error.
	h = fixtureHost(h.Root, map[string]string{"journalctl -o json --no-pager -q SYSLOG_FACILITY=4 SYSLOG_FACILITY=10 --after-cursor=" + c.Journal: "journald/empty.json", newest: "journald/newest.json"})
	rs, _ = run(t, h, nil, cur)
	require.Equal(t, "0 successful and 0 failed logins since the last run", headline(rs[checkEvents]))

	// An empty journal directory: configured to persist, nothing written.
	require.NoError(t, os.MkdirAll(filepath.Join(h.Root, "var/log/journal/3d1219c7c4c5404aaa1f6d2a48adfda4"), 0o755))
	rs, _ = run(t, h, nil, cur)
	require.Equal(t, evidence.Fail, rs[checkPersistent].Status)
	require.Contains(t, rs[checkPersistent].Reason, "holds no journal file")

	// Persistent and written 29 minutes before the run.
	require.NoError(t, os.WriteFile(filepath.Join(h.Root, "var/log/journal/3d1219c7c4c5404aaa1f6d2a48adfda4/system.journal"), []byte("LPKSHHRH"), 0o640))
	rs, _ = run(t, h, nil, cur)
	require.Equal(t, evidence.Pass, rs[checkPersistent].Status, rs[checkPersistent].Reason)
	require.EqualValues(t, "29m3s", obs(t, rs[checkPersistent])["newest_entry_age"])

	// The same journal 70 days later: nothing has logged since.
	late := fixtureHost(h.Root, map[string]string{"journalctl -o json --no-pager -q SYSLOG_FACILITY=4 SYSLOG_FACILITY=10 --after-cursor=" + c.Journal: "journald/empty.json", newest: "journald/newest.json"})
	late.Clock = func() time.Time { return testNow.Add(70 * 24 * time.Hour) }
	rs, _ = run(t, late, nil, cur)
	require.Equal(t, evidence.Fail, rs[checkPersistent].Status)
	require.Contains(t, rs[checkPersistent].Reason, "nothing is being logged")

	// journald not running: no configuration makes that a pass.
	require.NoError(t, os.WriteFile(filepath.Join(root, "proc/388/comm"), []byte("bash\n"), 0o644))
	rs, _ = run(t, h, nil, cur)
	require.Equal(t, evidence.Fail, rs[checkPersistent].Status)
	require.Contains(t, rs[checkPersistent].Reason, "systemd-journald does not run")
	require.NoError(t, os.WriteFile(filepath.Join(root, "proc/388/comm"), []byte("systemd-journal\n"), 0o644))

	require.NoError(t, os.MkdirAll(filepath.Join(h.Root, "etc/systemd/journald.conf.d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(h.Root, "etc/systemd/journald.conf.d/volatile.conf"), []byte("[Journal]\nStorage=volatile\n"), 0o644))
	rs, _ = run(t, h, nil, cur)
	require.Equal(t, evidence.Fail, rs[checkPersistent].Status)
	require.Contains(t, rs[checkPersistent].Reason, "Storage=volatile")
}

// An auth log that rsyslog no longer writes (the daemon removed, the file
// left behind) is not logging.
func TestAuthLogNotWritten(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, os.DirFS("testdata/debian12")))
	require.NoError(t, os.WriteFile(filepath.Join(root, "proc/598/comm"), []byte("sshd\n"), 0o644))
	rs, _ := run(t, fixtureHost(root, nil), with(func(s *Settings) { s.Path = "/var/log/auth.log" }), nil)
	require.Equal(t, evidence.Fail, rs[checkPersistent].Status)
	require.Contains(t, rs[checkPersistent].Reason, "/var/log/auth.log is not being written: no syslog daemon runs")

	// Without a configured path, journald (which runs) is the record, not
	// the file nobody writes any more.
	since := "journalctl -o json --no-pager -q SYSLOG_FACILITY=4 SYSLOG_FACILITY=10 --since=@" + "1795669200"
	rs, _ = run(t, fixtureHost(root, map[string]string{since: "journald/journalctl-auth.json", "journalctl -n 1 -o json --no-pager -q": "journald/newest.json"}), nil, nil)
	p := obs(t, rs[checkEvents])["period"].(map[string]any)
	require.Equal(t, "journald", p["source"])
	require.Contains(t, p["continuity"], "no syslog daemon runs, so /var/log/auth.log and /var/log/secure are not written")
	require.Equal(t, "3 successful and 15 failed logins since the last run", headline(rs[checkEvents]))
}

func TestNoSource(t *testing.T) {
	rs, next := run(t, fixtureHost(t.TempDir(), nil), nil, nil)
	require.Nil(t, next, "no cursor moves when nothing was read")
	for _, id := range []string{checkEvents, checkPrivileged, checkRoot, checkBrute} {
		require.Equal(t, evidence.Error, rs[id].Status)
		require.Contains(t, rs[id].Reason, "no authentication log")
	}
	require.Equal(t, evidence.Error, rs[checkPersistent].Status, "no /proc to tell what runs")
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
	require.Equal(t, "0 successful and 7 failed logins since the last run", headline(rs[checkEvents]))
	require.Contains(t, obs(t, rs[checkEvents])["period"].(map[string]any)["continuity"], "any rotated away unread are missing")

	// A damaged cursor reads the lookback window again rather than failing,
	// and says so.
	rs, _ = run(t, fixtureHost("testdata/debian12", nil), nil, []byte("{not json"))
	require.Equal(t, "3 successful and 16 failed logins since the last run", headline(rs[checkEvents]))
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
		// The PAM forms, OpenSSH's unknown users, and RHEL 4's login.
		"Nov 27 04:31:18 vm sshd[77]: Invalid user admin from 203.0.113.9 port 4711":                                                                      {Kind: invalidUser, User: "admin", Source: "203.0.113.9", Service: "sshd", Invalid: true},
		"Jun 17 19:43:13 combo sshd(pam_unix)[30565]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=211.46.224.253  user=guest": {Kind: loginFail, User: "guest", Source: "211.46.224.253", Service: "sshd"},
		"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 ":               {Kind: loginFail, User: "(unknown)", Source: "218.188.2.4", Service: "sshd"},
		"Jun 14 15:16:02 combo sshd(pam_unix)[19937]: check pass; user unknown":                                                                           {Kind: invalidUser, User: "(unknown)", Service: "sshd", Invalid: true},
		"Mar 26 10:21:13 archive_linux su(pam_unix)[22692]: session opened for user root by chetanv(uid=1069)":                                            {Kind: privOK, User: "chetanv", Target: "root", Service: "su"},
		"Jun 15 04:06:18 combo su(pam_unix)[21416]: session opened for user cyrus by (uid=0)":                                                             {Kind: privOK, User: "root", Target: "cyrus", Service: "su"},
		"Jul  6 11:21:22 coyote login(pam_unix)[2546]: session opened for user root by LOGIN(uid=0)":                                                      {Kind: loginOK, User: "root", Service: "login"},
		"Aug  5 05:01:30 combo login[25160]: FAILED LOGIN 1 FROM (null) FOR    , Authentication failure":                                                  {Kind: loginFail, User: "(blank)", Service: "login"},
		"Aug  5 05:01:30 combo login[25160]: FAILED LOGIN 2 FROM 10.0.0.7 FOR bob, Authentication failure":                                                {Kind: loginFail, User: "bob", Source: "10.0.0.7", Service: "login"},
		"Jun 30 22:16:32 combo sshd(pam_unix)[19432]: session opened for user test by (uid=509)":                                                          {Kind: loginOK, User: "test", Source: "(not logged)", Service: "sshd"},
	} {
		got, ok := parseSyslogLine(line, testNow)
		require.True(t, ok, line)
		if want.Count == 0 {
			want.Count = 1
		}
		got.Time = time.Time{}
		require.Equal(t, want, got, line)
	}
	// Recognised as part of the authentication record, counted as no event:
	// each repeats an attempt its service's own line counts, or ends one.
	for _, line := range []string{
		"Nov 27 04:31:18 vm sshd[1]: Connection closed by authenticating user root 1.2.3.4 port 22 [preauth]",
		"Nov 27 04:31:18 vm sshd[1]: Disconnected from authenticating user root 203.0.113.9 port 50312 [preauth]",
		"Nov 27 04:31:18 vm sshd[1]: error: maximum authentication attempts exceeded for root from 203.0.113.9 port 50312 ssh2 [preauth]",
		"Nov 27 04:31:18 vm sshd[1]: PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root",
		"Nov 27 04:31:18 vm sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root",
		"Nov 27 04:31:18 vm su[9]: pam_unix(su:session): session opened for user root(uid=0) by alice(uid=1000)",
		"Nov 27 04:31:18 vm sudo: pam_unix(sudo:auth): authentication failure; logname=alice uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=alice",
		"Nov 27 04:31:18 vm CRON[5]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
		"Nov 27 04:31:18 vm systemd-logind[412]: New session 7 of user alice.",
		"Jul  6 11:21:22 coyote  -- root[2546]: ROOT LOGIN ON tty2",
		"Mar 26 10:14:52 archive_linux  -- chetanv[1621]: LOGIN ON pts/13 BY chetanv FROM opal.gsoi.med.ge.com",
		"Jun 15 04:06:19 combo su(pam_unix)[21416]: session closed for user cyrus",
		"Nov 27 04:31:18 vm unix_chkpwd[88]: password check failed for user (root)",
	} {
		e, ok := parseSyslogLine(line, testNow)
		require.True(t, ok, line)
		require.Equal(t, noted, e.Kind, line)
	}
	for _, line := range []string{"", "garbage", "Nov 27 04:31:18 vm kernel: Accepted password for x from y port 1",
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
	require.Equal(t, "3 successful and 12 failed logins since the last run", headline(rs[checkEvents]))
	require.Equal(t, "1 direct root logins since the last run", rs[checkRoot].Reason, "the built-in Administrator (RID 500)")
	require.Equal(t, "1 brute-force bursts from 203.0.113.77", rs[checkBrute].Reason)
	require.Equal(t, "privileged use by alice (no privileged_users list to compare against)", rs[checkPrivileged].Reason)
	require.Equal(t, evidence.Pass, rs[checkPersistent].Status)
	var c cursor
	require.NoError(t, json.Unmarshal(cur, &c))
	require.EqualValues(t, 918231, c.Record)

	out["wevtutil qe Security /q:"+winQuery(918231, 0)+" /f:xml /e:Events /c:50000"] = "windows/security-empty.xml"
	rs, _ = run(t, h, nil, cur)
	require.Equal(t, "0 successful and 0 failed logins since the last run", headline(rs[checkEvents]))
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
	require.Equal(t, "1 successful and 2 failed logins since the last run", headline(rs[checkEvents]))
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
	require.Equal(t, "0 successful and 0 failed logins since the last run", headline(rs[checkEvents]))
}

func FuzzWinEvents(f *testing.F) {
	b, _ := os.ReadFile("testdata/windows/security-events.xml")
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseWinEvents(b, 0, newSummary(10, time.Minute)) })
}

// A real Red Hat /var/log/messages of 2005 (PAM before Linux-PAM 0.99,
// which named the module in the tag): sshd's failures, unknown users and
// su sessions appear only as PAM lines, among ftpd and logrotate noise.
func TestRHEL4PAMForms(t *testing.T) {
	h := fixtureHost("testdata/rhel4", nil)
	h.Clock = func() time.Time { return time.Date(2005, 6, 18, 5, 0, 0, 0, time.UTC) }
	rs, _ := run(t, h, with(func(s *Settings) {
		s.Path = "/var/log/messages"
		s.Lookback = units.Duration(5 * 24 * time.Hour)
	}), nil)
	require.Equal(t, "1 successful and 50 failed logins since the last run", headline(rs[checkEvents]))
	o := obs(t, rs[checkEvents])
	require.EqualValues(t, 125, o["period"].(map[string]any)["lines_read"])
	require.EqualValues(t, 104, o["period"].(map[string]any)["lines_recognised"], "all but 17 ftpd and 4 logrotate lines")
	require.EqualValues(t, 38, o["invalid_users"].(map[string]any)["total"])
	require.Equal(t, map[string]any{"root": 10.0, "guest": 1.0, "(unknown)": 39.0}, o["failed_logins"].(map[string]any)["by_user"])
	require.Equal(t, map[string]any{"test": 1.0}, o["logins"].(map[string]any)["by_user"])

	require.Equal(t, evidence.Fail, rs[checkBrute].Status)
	require.Equal(t, "4 brute-force bursts from 220-135-151-1.hinet-ip.hinet.net, 218.188.2.4, 061092085098.ctinets.com, adsl-70-242-75-179.dsl.ksc2mo.swbell.net", rs[checkBrute].Reason)

	p := obs(t, rs[checkPrivileged])["by_user"].(map[string]any)["root"].(map[string]any)
	require.Equal(t, map[string]any{"cyrus": 4.0, "news": 3.0}, p["as"])
	require.Equal(t, map[string]any{"su": 7.0}, p["via"])
}

// A log with nothing recognisable in it, an empty log and garbage are
// error, never pass: neither "no root logins" nor "no bursts" can rest on
// a source that was not understood.
func TestNothingRecognisedIsError(t *testing.T) {
	random := make([]byte, 1<<20)
	for i := range random {
		random[i] = byte(i*7919 + i>>5*31)
	}
	kern := "Nov 27 04:31:06 vm kernel: [    0.000000] Linux version 6.1.0-27-amd64\nNov 27 04:31:07 vm kernel: [    0.000000] Command line: BOOT_IMAGE=/vmlinuz\n"
	for name, content := range map[string][]byte{"empty": nil, "garbage": random, "another program's log": []byte(kern)} {
		root := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(root, "var/log"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, "var/log/auth.log"), content, 0o640))
		rs, next := run(t, fixtureHost(root, nil), nil, nil)
		require.Nil(t, next, "%s: the cursor waits for something recognisable", name)
		for _, id := range []string{checkEvents, checkPrivileged, checkRoot, checkBrute} {
			require.Equal(t, evidence.Error, rs[id].Status, "%s: %s", name, id)
			require.Contains(t, rs[id].Reason, "nothing to decide on", name)
		}
		require.NotEqual(t, evidence.Pass, rs[checkPersistent].Status, name)
	}
}

// "message repeated N times" costs the same for any N: a local user can
// write such a line through syslog. N = 50,000,000 once took 4.35 GB.
func TestMessageRepeatedConstantMemory(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "var/log"), 0o755))
	log := "Nov 27 04:31:17 vm sshd[1]: Failed password for root from 203.0.113.9 port 22 ssh2\n" +
		"Nov 27 04:31:18 vm sshd[1]: message repeated 50000000 times: [ Failed password for root from 203.0.113.9 port 22 ssh2]\n"
	require.NoError(t, os.WriteFile(filepath.Join(root, "var/log/auth.log"), []byte(log), 0o640))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rs, _ := run(t, fixtureHost(root, nil), nil, nil)
	runtime.ReadMemStats(&after)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "allocation must not grow with N")
	require.Equal(t, "0 successful and 50000001 failed logins since the last run", headline(rs[checkEvents]))
	b := obs(t, rs[checkBrute])["bursts"].([]any)[0].(map[string]any)
	require.EqualValues(t, 50000001, b["failures"])
	require.Equal(t, map[string]any{"root": 50000001.0}, b["users"])
}

// A burst counts every failure in its window, the ones before the
// threshold too, for every user; past 20 names it says how many more.
func TestBurstUsers(t *testing.T) {
	var b strings.Builder
	for i := range 30 {
		fmt.Fprintf(&b, "Nov 27 04:31:%02d vm sshd[1]: Failed password for invalid user u%02d from 203.0.113.9 port 22 ssh2\n", i, i)
	}
	fmt.Fprintf(&b, "Nov 27 04:32:00 vm sshd[1]: Failed password for invalid user u00 from 203.0.113.9 port 22 ssh2\n")
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "var/log"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "var/log/auth.log"), []byte(b.String()), 0o640))
	rs, _ := run(t, fixtureHost(root, nil), nil, nil)
	bu := obs(t, rs[checkBrute])["bursts"].([]any)[0].(map[string]any)
	require.EqualValues(t, 31, bu["failures"])
	users := bu["users"].(map[string]any)
	require.Len(t, users, 20)
	require.EqualValues(t, 2, users["u00"], "a listed user's later failures still count")
	require.EqualValues(t, 1, users["u09"], "failures before the threshold belong to the burst")
	require.EqualValues(t, 10, bu["more_users"])
	require.EqualValues(t, 10, bu["more_users_failures"])
}

// A collector timed out in the middle of a large file stops there.
func TestCancelledMidFile(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	line := []byte("Nov 27 04:31:17 vm CRON[1]: pam_unix(cron:session): session closed for user root\n")
	r := bytes.NewReader(bytes.Repeat(line, 200_000))
	seen := 0
	_, n, err := scanLines(ctx, r, 0, func([]byte) {
		if seen++; seen == 10_000 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, n, int64(20_000), "stopped within a few thousand lines of the cancel")

	// And the collector says so instead of returning partial counts.
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "var/log"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "var/log/auth.log"), bytes.Repeat(line, 10), 0o640))
	done, stop := context.WithCancel(context.Background())
	stop()
	rs, next, err := Collector{}.CollectSince(done, fixtureHost(root, nil), nil, nil)
	require.NoError(t, err)
	require.Nil(t, next)
	require.Equal(t, evidence.Error, rs[0].Status)
	require.Contains(t, rs[0].Reason, "context canceled")
}

// Year-less timestamps take the most recent date not after now.
func TestYearlessDates(t *testing.T) {
	for _, c := range []struct {
		line string
		now  time.Time
		want time.Time
	}{
		// Feb 29 read after it: the last leap year, not March 1st.
		{"Feb 29 10:00:00", time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 29, 10, 0, 0, 0, time.UTC)},
		{"Feb 29 10:00:00", time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2028, 2, 29, 10, 0, 0, 0, time.UTC)},
		// A line from a year ago whose day is tomorrow.
		{"Dec  2 09:00:00", time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), time.Date(2025, 12, 2, 9, 0, 0, 0, time.UTC)},
		// December's lines read in January.
		{"Dec 31 23:59:59", time.Date(2027, 1, 1, 0, 5, 0, 0, time.UTC), time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)},
		// A few minutes ahead of the agent's clock is still today.
		{"Dec  1 10:20:00", time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 10, 20, 0, 0, time.UTC)},
	} {
		got, ok := yearless([]byte(c.line), c.now)
		require.True(t, ok, c.line)
		require.Equal(t, c.want, got, "%s read at %s", c.line, c.now)
	}
	for _, bad := range []string{"Feb 30 10:00:00", "Jan 00 10:00:00", "Jan  1 24:00:00", "Jan  1 1x:00:00"} {
		_, ok := yearless([]byte(bad), testNow)
		require.False(t, ok, bad)
	}
}
