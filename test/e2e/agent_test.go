package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors"
	_ "github.com/annexa-dev/annexa/collectors/all"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// agentHost is one machine's agent: a state dir and a config file.
type agentHost struct {
	t      *testing.T
	s      *server
	state  string
	config string
	id     string
	// collectors is how many built-in collectors run: one record each.
	collectors int
}

// slowCollectors are off unless a test is about them: patch_level asks
// apt-get to simulate an upgrade, seconds on every run.
var slowCollectors = []string{"patch_level"}

// newAgentHost writes an agent config for a test: collection and shipping
// on short clocks, the slow collectors off. extraConfig is appended; its
// own collectors: section, if any, is merged into the one written here.
func newAgentHost(t *testing.T, s *server, extraConfig string) *agentHost {
	return newAgentHostWith(t, s, extraConfig, slowCollectors...)
}

// newAgentHostWith is newAgentHost with the given collectors off.
func newAgentHostWith(t *testing.T, s *server, extraConfig string, off ...string) *agentHost {
	dir := t.TempDir()
	h := &agentHost{t: t, s: s, state: filepath.Join(dir, "state"), config: filepath.Join(dir, "agent.yaml"),
		collectors: len(collectors.Names()) - len(off)}
	cfg := `log_level: debug
defaults:
  interval: 1h
  jitter: 0s
  timeout: 30s
shipping:
  interval: 1s
  max_backoff: 100ms
`
	extra, hasCollectors := strings.CutPrefix(extraConfig, "collectors:\n")
	if len(off) > 0 || hasCollectors {
		cfg += "collectors:\n"
		for _, name := range off {
			cfg += "  " + name + ":\n    enabled: false\n"
		}
	}
	cfg += extra
	require.NoError(t, os.WriteFile(h.config, []byte(cfg), 0o644))
	return h
}

// run runs annexa-agent with the host's config and state and returns its
// combined output and exit code.
func (h *agentHost) run(args ...string) (string, int) {
	args = append(args, "--config", h.config, "--state", h.state)
	cmd := exec.Command(bin("annexa-agent"), args...)
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("annexa-agent %v: %v", args, err)
	}
	return string(out), code
}

func (h *agentHost) enroll(token string) {
	out, code := h.run("enroll", "--server", h.s.URL, "--token", token, "--ca", h.s.CA)
	require.Equal(h.t, 0, code, out)
	var id struct {
		AgentID string `json:"agent_id"`
	}
	b, err := os.ReadFile(filepath.Join(h.state, "agent.json"))
	require.NoError(h.t, err)
	require.NoError(h.t, json.Unmarshal(b, &id))
	h.id = id.AgentID
}

func (h *agentHost) hostDetail() apiv1.HostDetail {
	d, err := h.tryHostDetail()
	require.NoError(h.t, err)
	return d
}

// tryHostDetail is hostDetail for polling: an error, not a failed test.
func (h *agentHost) tryHostDetail() (apiv1.HostDetail, error) {
	var d apiv1.HostDetail
	err := h.s.client(h.s.Admin).Do(context.Background(), http.MethodGet, "/v1/hosts/"+h.id, nil, nil, &d)
	return d, err
}

func TestAgentEnrolRunOnce(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	h := newAgentHostWith(t, s, "") // every collector: the whole pipeline
	token := s.token("enroll", apiv1.TokenRequest{Labels: map[string]string{"team": "it"}})
	h.enroll(token)
	st, err := os.Stat(filepath.Join(h.state, "agent.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// Enrolling again says so instead of silently re-enrolling.
	out, code := h.run("enroll", "--server", s.URL, "--token", token, "--ca", s.CA)
	require.Equal(t, 3, code, out)
	require.Contains(t, out, "already enrolled as "+h.id)

	out, code = h.run("run", "--once")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "0 record(s) waiting")

	d := h.hostDetail()
	checks := map[string]string{}
	for _, r := range d.Results {
		checks[r.Check] = r.Status
	}
	for _, c := range []string{"ssh.root_login", "ssh.password_auth", "ssh.ciphers", "inventory.host", "inventory.software"} {
		require.Contains(t, checks, c)
	}
	require.Equal(t, map[string]string{"team": "it"}, d.Labels)
	require.Equal(t, h.perRun(), d.LastSeq)
	verifyLog(t, s)

	out, code = h.run("status")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "enrolled:      yes, agent "+h.id)
	require.Contains(t, out, "0 record(s) waiting")
	require.Contains(t, out, "ssh")

	// The dry run needs no enrollment and prints JSON.
	out, code = h.run("collect", "--collector", "ssh", "-o", "json")
	require.Equal(t, 0, code, out)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rows), out)
	require.Len(t, rows, 1)
}

func TestAgentNotEnrolled(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	h := newAgentHost(t, s, "")
	out, code := h.run("run", "--once")
	require.NotEqual(t, 0, code)
	require.Contains(t, out, "not enrolled")
	out, code = h.run("enroll", "--server", s.URL, "--token", "anx_bogus", "--ca", s.CA)
	require.NotEqual(t, 0, code)
	require.Contains(t, out, "401")
	_, err := os.Stat(filepath.Join(h.state, "agent.key"))
	require.True(t, os.IsNotExist(err), "a failed enrollment leaves no key behind")
}

// The server down for a while, then up: every record arrives, chain intact.
func TestAgentServerDownThenUp(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	h := newAgentHost(t, s, "")
	h.enroll(s.token("enroll", apiv1.TokenRequest{}))
	s.stop()
	for i := 0; i < 3; i++ {
		out, code := h.run("run", "--once")
		require.Equal(t, 2, code, out)
		require.Contains(t, out, "not shipped")
	}
	out, _ := h.run("status", "-o", "json")
	require.Contains(t, out, fmt.Sprintf(`"outbox_records": %d`, 3*h.perRun()))
	s.start()
	out, code := h.run("run", "--once")
	require.Equal(t, 0, code, out)
	require.Equal(t, 4*h.perRun(), h.hostDetail().LastSeq)
	verifyLog(t, s)
}

// kill -9 of the agent at random instants while it collects, writes and
// ships: afterwards every durable record reaches the server and the chain
// checks clean.
func TestAgentKill9Loop(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	h := newAgentHost(t, s, "")
	h.enroll(s.token("enroll", apiv1.TokenRequest{}))
	for i := 0; i < 12; i++ {
		cmd := exec.Command(bin("annexa-agent"), "run", "--config", h.config, "--state", h.state)
		require.NoError(t, cmd.Start())
		time.Sleep(time.Duration(50+rand.IntN(400)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
	}
	out, code := h.run("run", "--once")
	require.Equal(t, 0, code, out)
	out, _ = h.run("status", "-o", "json")
	var st struct {
		HeadSeq uint64 `json:"head_seq"`
		Records int    `json:"outbox_records"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	require.Zero(t, st.Records)
	require.Equal(t, st.HeadSeq, h.hostDetail().LastSeq, "server holds the agent's whole chain")
	require.Greater(t, st.HeadSeq, h.perRun())
	verifyLog(t, s)
}

// With the server away and the outbox over its limit, the agent drops the
// oldest unshipped records and the signed gap record reaches the server.
func TestAgentOutboxFullGapReachesServer(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	h := newAgentHost(t, s, "outbox:\n  limit: 256KiB\n")
	h.enroll(s.token("enroll", apiv1.TokenRequest{}))
	s.stop()
	for i := 0; i < 8; i++ {
		_, code := h.run("run", "--once")
		require.Equal(t, 2, code)
	}
	s.start()
	out, code := h.run("run", "--once")
	require.Equal(t, 0, code, out)
	require.Equal(t, 9*h.perRun(), h.hostDetail().LastSeq)
	verifyLog(t, s) // the chain checks clean: the loss is explained
	// The gap record is in the log, saying what was dropped.
	var ev apiv1.Page[map[string]any]
	_ = ev
	var found bool
	c := s.client(s.Admin)
	for i := int64(0); i < 40; i++ {
		var b []byte
		if err := c.Do(context.Background(), http.MethodGet, fmt.Sprintf("/v1/log/entries/%d", i), nil, nil, &b); err != nil {
			break
		}
		if strings.Contains(decodePayload(t, b), `"collector":"annexa.gap"`) {
			found = true
			require.Contains(t, decodePayload(t, b), "dropped unshipped")
		}
	}
	require.True(t, found, "a gap record reached the server")
}

// A key rotation while the server is down, then so many records that the
// outbox drops the rotation record itself: the gap record is signed with the
// retired key valid where it stands and announces the rotation again, so the
// server learns the new key and the records after the gap verify.
func TestAgentRotationDroppedWithOverflow(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	h := newAgentHost(t, s, "outbox:\n  limit: 256KiB\n")
	h.enroll(s.token("enroll", apiv1.TokenRequest{}))
	out, code := h.run("run", "--once")
	require.Equal(t, 0, code, out)
	s.stop()
	_, code = h.run("run", "--once")
	require.Equal(t, 2, code)
	out, code = h.run("rotate-key")
	require.Equal(t, 0, code, out)
	retired, _ := filepath.Glob(filepath.Join(h.state, "retired-keys", "*.key"))
	require.Len(t, retired, 1, "the old key is kept until the rotation is acknowledged")
	for i := 0; i < 8; i++ {
		_, code := h.run("run", "--once")
		require.Equal(t, 2, code)
	}
	s.start()
	out, code = h.run("run", "--once")
	require.Equal(t, 0, code, out)
	require.Equal(t, 11*h.perRun()+1, h.hostDetail().LastSeq)
	var keys apiv1.Page[map[string]any]
	require.NoError(t, s.client(s.Admin).Do(context.Background(), http.MethodGet, "/v1/agents/"+h.id+"/keys", nil, nil, &keys))
	require.Len(t, keys.Items, 2, "the server learnt the new key")
	verifyLog(t, s)
	found := false
	c := s.client(s.Admin)
	for i := int64(0); i < 200; i++ {
		var b []byte
		if err := c.Do(context.Background(), http.MethodGet, fmt.Sprintf("/v1/log/entries/%d", i), nil, nil, &b); err != nil {
			break
		}
		if p := decodePayload(t, b); strings.Contains(p, `"collector":"annexa.gap"`) && strings.Contains(p, "announced again here") {
			found = true
			require.Contains(t, p, `"rotation":`)
		}
	}
	require.True(t, found, "the gap record repeats the dropped rotation")
	// An auditor's bundle of the period verifies offline, the new key
	// included.
	rep := verifyBytes(t, s, exportBundle(t, s, time.Now().Add(-time.Hour), time.Now().Add(time.Minute)))
	require.True(t, rep.OK, problems(rep))
	retired, _ = filepath.Glob(filepath.Join(h.state, "retired-keys", "*.key"))
	require.Empty(t, retired, "the retired key is gone once the server has the rotation")
}

func decodePayload(t *testing.T, env []byte) string {
	var e struct {
		Payload []byte `json:"payload"`
	}
	require.NoError(t, json.Unmarshal(env, &e))
	return string(e.Payload)
}

func TestAgentBadConfig(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	for cfg, want := range map[string]string{
		"shiping:\n  interval: 1s\n":                 "line 12: unknown key shiping",
		"collectors:\n  sshd: {}\n":                  "collectors.sshd: unknown collector",
		"collectors:\n  ssh:\n    interval: often\n": `"often" is not a duration`,
		// A collector setting of the wrong shape stops the agent too.
		"collectors:\n  accounts:\n    settings:\n      allowed_admins: alice\n": "line 14: collectors.accounts.settings.allowed_admins: want a list of strings",
		"collectors:\n  screen_lock:\n    settings:\n      max_idle_minute: 5\n": "collectors.screen_lock.settings.max_idle_minute: unknown key",
	} {
		h := newAgentHost(t, s, cfg)
		for _, args := range [][]string{{"run", "--once"}, {"collect"}} {
			out, code := h.run(args...)
			require.Equal(t, 1, code, "%v: %s", args, out)
			require.Contains(t, out, want, args)
			require.Contains(t, out, h.config, args)
		}
	}
}

func TestAgentRotateKey(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	h := newAgentHost(t, s, "")
	h.enroll(s.token("enroll", apiv1.TokenRequest{}))
	out, code := h.run("run", "--once")
	require.Equal(t, 0, code, out)
	out, code = h.run("rotate-key")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "new key ")
	out, code = h.run("run", "--once")
	require.Equal(t, 0, code, out)
	require.Equal(t, 2*h.perRun()+1, h.hostDetail().LastSeq) // a run, the rotation, a run
	var keys apiv1.Page[map[string]any]
	require.NoError(t, s.client(s.Admin).Do(context.Background(), http.MethodGet, "/v1/agents/"+h.id+"/keys", nil, nil, &keys))
	require.Len(t, keys.Items, 2)
	verifyLog(t, s)

	// With a daemon holding the state, rotate-key asks it: wait until the
	// daemon has shipped its first collection (so it holds the lock), then
	// rotate through it.
	cmd := exec.Command(bin("annexa-agent"), "run", "--config", h.config, "--state", h.state)
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	require.Eventually(t, func() bool { d, err := h.tryHostDetail(); return err == nil && d.LastSeq == 3*h.perRun()+1 }, 30*time.Second, 100*time.Millisecond,
		"the daemon collects and ships on start")
	out, code = h.run("rotate-key")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "made by the running agent", "the daemon's path, not the offline one")
	keyCount := func() int {
		var keys apiv1.Page[map[string]any]
		if err := s.client(s.Admin).Do(context.Background(), http.MethodGet, "/v1/agents/"+h.id+"/keys", nil, nil, &keys); err != nil {
			return -1
		}
		return len(keys.Items)
	}
	require.Eventually(t, func() bool { return keyCount() == 3 }, 20*time.Second, 100*time.Millisecond, "the daemon ships the rotation")
}

func TestAgentService(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	h := newAgentHost(t, s, "")
	out, code := h.run("service", "unit")
	require.Equal(t, 0, code, out)
	for _, want := range []string{"ExecStart=", "run --config " + h.config + " --state " + h.state, "NoNewPrivileges=yes", "ProtectSystem=strict",
		"ReadWritePaths=" + h.state, "ProtectHome=read-only", "PrivateTmp=yes", "Restart=on-failure"} {
		require.Contains(t, out, want)
	}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("systemd is running here: not installing a real service from a test")
	}
	out, code = h.run("service", "install")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "no service manager is running")
	require.NotContains(t, out, "panic")
}

// make run, headless: a server, an enrolled local agent, one collection and
// the summary, from nothing.
func TestMakeRunHeadless(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("scripts/run.sh uses curl for its readiness probe")
	}
	dir := t.TempDir()
	cmd := exec.Command("../../scripts/run.sh")
	cmd.Env = append(os.Environ(), "ANNEXA_RUN_ONCE=1", "ANNEXA_RUN_DIR="+dir, "ANNEXA_BIN="+binDir, "ANNEXA_LISTEN="+freePort(t))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	for _, want := range []string{"enrolled as agt-", "== Hosts", "env=local", "5.9      Organizational", "controls have automated evidence", "Annexa is running:", "dashboard:", "sign in with the admin token", "API:"} {
		require.Contains(t, string(out), want)
	}
	// Run again: the same server and agent, no second enrollment.
	cmd = exec.Command("../../scripts/run.sh")
	cmd.Env = append(os.Environ(), "ANNEXA_RUN_ONCE=1", "ANNEXA_RUN_DIR="+dir, "ANNEXA_BIN="+binDir, "ANNEXA_LISTEN="+freePort(t))
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.NotContains(t, string(out), "enrolled as")
	require.Contains(t, string(out), "== Hosts")

	// A busy port is said plainly, before anything starts, and no old log
	// (with whatever secret it held) is printed.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	cmd = exec.Command("../../scripts/run.sh")
	cmd.Env = append(os.Environ(), "ANNEXA_RUN_ONCE=1", "ANNEXA_RUN_DIR="+dir, "ANNEXA_BIN="+binDir, "ANNEXA_LISTEN="+busy.Addr().String())
	out, err = cmd.CombinedOutput()
	require.Error(t, err, string(out))
	require.Contains(t, string(out), "is in use")
	require.Contains(t, string(out), "ANNEXA_LISTEN")
	require.NotContains(t, string(out), "anx_")
}

// A plugin's results are signed by the agent like any other record and
// reach the server; a plugin binary that is not the pinned one is refused
// and shows as an error naming it, and the agent carries on.
func TestAgentPlugins(t *testing.T) {
	s := startServer(t, "sqlite", "", "", "--mapping", mappingWith(t, "backups.last_success", "cloud.trail"))
	pluginBin := bin("annexa-plugin-exec")
	sum, err := sha256File(pluginBin)
	require.NoError(t, err)
	check := filepath.Join(t.TempDir(), "check-backups.sh")
	require.NoError(t, os.WriteFile(check, []byte("#!/bin/sh\necho '{\"results\":[{\"check\":\"backups.last_success\",\"status\":\"fail\",\"reason\":\"last backup 40h ago\",\"observations\":{\"age_hours\":40}}]}'\n"), 0o755))
	// A plugin reporting on something other than this host (a cloud account).
	cloud := filepath.Join(t.TempDir(), "check-cloud.sh")
	require.NoError(t, os.WriteFile(cloud, []byte("#!/bin/sh\necho '{\"asset\":\"aws-account:123456789012\",\"results\":[{\"check\":\"cloud.trail\",\"status\":\"pass\",\"reason\":\"trail on\"}]}'\n"), 0o755))
	cfg := fmt.Sprintf(`plugins:
  - name: backups
    path: %s
    sha256: %s
    settings:
      name: backups
      command: %s
      checks:
        - {id: backups.last_success, title: "recent backup", controls: ["8.13"]}
  - name: cloud
    path: %s
    sha256: %s
    settings:
      name: cloud
      command: %s
      checks:
        - {id: cloud.trail, title: "audit trail on", controls: ["8.15"]}
  - name: tampered
    path: %s
    sha256: %s
    settings: {}
`, pluginBin, sum, check, pluginBin, sum, cloud, pluginBin, strings.Repeat("0", 64))
	h := newAgentHost(t, s, cfg)
	h.enroll(s.token("enroll", apiv1.TokenRequest{Assets: []evidence.Asset{"aws-account:123456789012"}}))
	out, code := h.run("run", "--once")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "checksum")
	d := h.hostDetail()
	got := map[string]apiv1.CheckState{}
	for _, r := range d.Results {
		got[r.Check] = r
	}
	require.Equal(t, "fail", got["backups.last_success"].Status)
	require.Equal(t, "last backup 40h ago", got["backups.last_success"].Reason)
	require.Equal(t, "error", got["tampered.plugin"].Status)
	require.Contains(t, got["tampered.plugin"].Reason, "checksum mismatch")
	require.Contains(t, got, "ssh.root_login", "built-in collectors ran too")
	require.Equal(t, "aws-account:123456789012", got["cloud.trail"].Asset, "the plugin's own asset, signed by this agent")
	require.Equal(t, "pass", got["cloud.trail"].Status)
	verifyLog(t, s)
}

// A plugin that refuses its settings stops the agent at start, naming the
// plugin, the line and the plugin's own reason; a plugin that is merely not
// the pinned binary does not (its runs record why).
func TestAgentPluginBadSettings(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	pluginBin := bin("annexa-plugin-exec")
	sum, err := sha256File(pluginBin)
	require.NoError(t, err)
	cfg := fmt.Sprintf(`plugins:
  - name: backups
    path: %s
    sha256: %s
    settings:
      name: backups
      command: /bin/true
      checks:
        - {id: backups.last_success, title: "recent backup", controls: ["8.13"]}
      retries: 3
`, pluginBin, sum)
	h := newAgentHost(t, s, cfg)
	h.enroll(s.token("enroll", apiv1.TokenRequest{}))
	out, code := h.run("run", "--once")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "line 13: plugins.backups.settings:")
	require.Contains(t, out, "retries")
	require.Contains(t, out, h.config)
}

func sha256File(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// perRun is how many records one collection makes: one per built-in
// collector that runs.
func (h *agentHost) perRun() uint64 { return uint64(h.collectors) }

// access_logs reads incrementally across agent processes: each run reports
// only the events since the previous stored record, none twice.
func TestAgentAccessLogsCursor(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	logPath := filepath.Join(t.TempDir(), "auth.log")
	line := func(user string) string {
		return time.Now().UTC().Format("2006-01-02T15:04:05.000000-07:00") + " vm sshd[4242]: Accepted publickey for " + user + " from 192.0.2.7 port 50000 ssh2\n"
	}
	appendLog := func(s string) {
		f, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
		require.NoError(t, err)
		_, err = f.WriteString(s)
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	appendLog(line("alice") + line("bob") + line("alice"))
	h := newAgentHost(t, s, fmt.Sprintf("collectors:\n  access_logs:\n    settings:\n      path: %s\n", logPath))
	h.enroll(s.token("enroll", apiv1.TokenRequest{}))
	// The reason's headline: the counts up to the first ";" (the rest
	// says how many lines were read and recognised).
	reason := func() string {
		for _, r := range h.hostDetail().Results {
			if r.Check == "access_logs.auth_events" {
				head, _, _ := strings.Cut(r.Reason, ";")
				return head
			}
		}
		return ""
	}
	out, code := h.run("run", "--once")
	require.Equal(t, 0, code, out)
	require.Equal(t, "3 successful and 0 failed logins since the last run", reason())

	appendLog(line("carol"))
	out, code = h.run("run", "--once")
	require.Equal(t, 0, code, out)
	require.Equal(t, "1 successful and 0 failed logins since the last run", reason())

	out, code = h.run("run", "--once")
	require.Equal(t, 0, code, out)
	require.Equal(t, "0 successful and 0 failed logins since the last run", reason())
	verifyLog(t, s)
}
