package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/client/cli"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/servertest"
	"github.com/annexa-dev/annexa/server/webhook"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// annexa runs the CLI in-process against s with token and returns what it
// printed and its error.
func annexa(t *testing.T, s *servertest.Server, token string, args ...string) (string, error) {
	t.Helper()
	cmd := cli.New()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append([]string{"--server", s.URL, "--token", token}, args...))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func fleet(t *testing.T) (*servertest.Server, []*servertest.Agent) {
	s := servertest.New(t, server.Config{Now: func() time.Time { return t0.Add(time.Minute) }})
	var as []*servertest.Agent
	for i, st := range []evidence.Status{evidence.Pass, evidence.Fail} {
		a := s.Enrol("", []string{"web-1", "db-1"}[i])
		_, err := a.Ship(a.Record(t0, map[string]evidence.Status{"disk_encryption.system_volume": st, "ssh.password_auth": evidence.Pass}))
		require.NoError(t, err)
		as = append(as, a)
	}
	return s, as
}

func TestQueries(t *testing.T) {
	s, as := fleet(t)
	analyst := s.Token(server.RoleAnalyst, apiv1.TokenRequest{})

	out, err := annexa(t, s, analyst, "controls", "-o", "json")
	require.NoError(t, err, out)
	var controls apiv1.ControlsResponse
	require.NoError(t, json.Unmarshal([]byte(out), &controls), out)
	require.Len(t, controls.Controls, 93)
	assert.Positive(t, controls.Covered)

	out, err = annexa(t, s, analyst, "control", "8.24")
	require.NoError(t, err, out)
	assert.Contains(t, out, "host:"+as[1].ID)
	assert.Contains(t, out, "DECIDES", "which check made the asset's status")
	again, err := annexa(t, s, analyst, "control", "8.24")
	require.NoError(t, err)
	assert.Equal(t, out, again, "the same answer prints the same rows in the same order")
	out, err = annexa(t, s, analyst, "control", "5.1")
	require.NoError(t, err, out)
	assert.Contains(t, out, "no automated check is mapped to this control")
	out, err = annexa(t, s, analyst, "controls")
	require.NoError(t, err, out)
	assert.Contains(t, out, "N/A")

	out, err = annexa(t, s, analyst, "hosts", "-o", "csv")
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.Len(t, lines, 3, "a header and two hosts:\n%s", out)
	assert.Contains(t, out, "web-1")

	out, err = annexa(t, s, analyst, "evidence", "--check", "disk_encryption.system_volume", "-o", "json")
	require.NoError(t, err, out)
	var rs []apiv1.Result
	require.NoError(t, json.Unmarshal([]byte(out), &rs), out)
	assert.Len(t, rs, 2)

	out, err = annexa(t, s, analyst, "history", "--label", "team=none", "-o", "csv")
	require.NoError(t, err, out)
	assert.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 1, "no host has the label: a header only")
	out, err = annexa(t, s, analyst, "history", "-o", "csv")
	require.NoError(t, err, out)
	assert.Greater(t, len(strings.Split(strings.TrimSpace(out), "\n")), 1)

	// A typo is an error with the nearest valid id, not an empty table.
	_, err = annexa(t, s, analyst, "evidence", "--check", "ssh.pasword_auth")
	require.ErrorContains(t, err, "did you mean ssh.password_auth?")
	_, err = annexa(t, s, analyst, "evidence", "--asset", "web-1")
	require.ErrorContains(t, err, "want kind:id")
	_, err = annexa(t, s, analyst, "evidence", "--agent", "web-1")
	require.ErrorContains(t, err, "agent ids look like agt-")

	_, err = annexa(t, s, analyst, "control", "99.9")
	require.Error(t, err)
	_, err = annexa(t, s, analyst, "token", "list")
	require.ErrorContains(t, err, "403", "an analyst manages no tokens")
}

func TestTokenCreate(t *testing.T) {
	s, _ := fleet(t)
	out, err := annexa(t, s, s.Admin, "token", "create", "--role", "enroll", "--max-uses", "5", "--label", "team=it")
	require.NoError(t, err, out)
	assert.Contains(t, out, "anx_")
	_, err = annexa(t, s, s.Admin, "token", "create", "--role", "enroll", "--label", "team")
	require.ErrorContains(t, err, "key=value")
	// Expiry as a date or in days, as every other time flag takes it.
	for _, exp := range []string{"2099-01-31", "30d", "72h", "2099-01-31T12:00:00Z"} {
		out, err = annexa(t, s, s.Admin, "token", "create", "--role", "enroll", "--expires", exp)
		require.NoError(t, err, "%s: %s", exp, out)
	}
	_, err = annexa(t, s, s.Admin, "token", "create", "--role", "enroll", "--expires", "soon")
	require.ErrorContains(t, err, "want a duration")
}

// A list longer than a page is followed through every page, each host
// seen once: the hosts cursor is an agent id, not a number.
func TestHostsPageThrough(t *testing.T) {
	s, _ := fleet(t)
	for i := 0; i < 5; i++ {
		s.Enrol("", "extra")
	}
	c := s.Client(s.Admin)
	seen := map[string]int{}
	cursor := ""
	pages := 0
	for {
		var p apiv1.Page[apiv1.Host]
		q := map[string][]string{"limit": {"3"}}
		if cursor != "" {
			q["cursor"] = []string{cursor}
		}
		require.NoError(t, c.Do(context.Background(), http.MethodGet, "/v1/hosts", q, nil, &p))
		for _, h := range p.Items {
			seen[h.AgentID]++
		}
		pages++
		if p.Next == "" {
			break
		}
		cursor = p.Next
		require.Less(t, pages, 10, "paging does not end")
	}
	assert.Len(t, seen, 7)
	for id, n := range seen {
		assert.Equal(t, 1, n, id)
	}
	assert.Equal(t, 3, pages)

	// The CLI follows the pages too.
	out, err := annexa(t, s, s.Admin, "hosts", "--limit", "5", "-o", "csv")
	require.NoError(t, err, out)
	assert.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 6)
}

// Untrusted strings cannot drive the terminal: a hostname with escape
// sequences, or a tab and newline to forge cells and rows, prints inert.
func TestTableOutputIsInert(t *testing.T) {
	s := servertest.New(t, server.Config{})
	s.Enrol("", "evil\x1b[2J\x1b[Hhost\tfake\nrow")
	out, err := annexa(t, s, s.Admin, "hosts")
	require.NoError(t, err, out)
	assert.NotContains(t, out, "\x1b")
	assert.Contains(t, out, `evil\x1b[2J\x1b[Hhost\x09fake\x0arow`)
	assert.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 2, "a header and one row:\n%s", out)
}

// export says which flag is missing and never overwrites a bundle unasked.
func TestExportFlags(t *testing.T) {
	s, _ := fleet(t)
	_, err := annexa(t, s, s.Admin, "export", "--from", "2026-01-01")
	require.ErrorContains(t, err, "--to and --out required")
	out := filepath.Join(t.TempDir(), "b.tgz")
	require.NoError(t, os.WriteFile(out, []byte("earlier evidence"), 0o644))
	_, err = annexa(t, s, s.Admin, "export", "--from", "2026-01-01", "--to", "2026-12-31", "--out", out)
	require.ErrorContains(t, err, "not overwritten unless --force")
	b, _ := os.ReadFile(out)
	assert.Equal(t, "earlier evidence", string(b))
	msg, err := annexa(t, s, s.Admin, "export", "--from", "2026-01-01", "--to", "2026-12-31", "--out", out, "--force")
	require.NoError(t, err, msg)
	assert.Contains(t, msg, "annexa verify --server-key server.pub "+out)
}

// Every command honours -o or refuses it: none prints something else under
// the name asked for.
func TestOutputFlagHonouredOrRefused(t *testing.T) {
	s, _ := fleet(t)
	_, err := annexa(t, s, s.Admin, "log", "checkpoint", "-o", "json")
	require.ErrorContains(t, err, "prints table only")
	_, err = annexa(t, s, s.Admin, "verify", "--server-key", "x", "b.tgz", "-o", "csv")
	require.ErrorContains(t, err, "prints table or json only")
	_, err = annexa(t, s, s.Admin, "hosts", "-o", "yaml")
	require.ErrorContains(t, err, "prints table or json or csv only")
	out, err := annexa(t, s, s.Admin, "log", "checkpoint")
	require.NoError(t, err, out)
	assert.Contains(t, out, "annexa.test/log")
}

// annexa webhook add, list, test, deliveries and rm against a local receiver.
func TestWebhookCommands(t *testing.T) {
	s := servertest.New(t, server.Config{})
	var got atomic.Int32
	var secret atomic.Value
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sec, _ := secret.Load().(string)
		if webhook.Verify(sec, r.Header.Get(webhook.SignatureHeader), body, time.Now(), time.Minute) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		got.Add(1)
	}))
	defer rc.Close()

	out, err := annexa(t, s, s.Admin, "webhook", "add", rc.URL, "--event", "check.failing", "--event", "agent.revoked")
	require.NoError(t, err, out)
	sec := strings.TrimSpace(strings.Split(out, "\n")[0])
	require.True(t, strings.HasPrefix(sec, "anx_"), out)
	secret.Store(sec)
	assert.Contains(t, out, "for check.failing, agent.revoked")

	out, err = annexa(t, s, s.Admin, "webhook", "list")
	require.NoError(t, err, out)
	assert.Contains(t, out, rc.URL)
	assert.NotContains(t, out, sec, "a secret is shown once")
	id := regexp.MustCompile(`whk-[0-9a-f]+`).FindString(out)
	require.NotEmpty(t, id)

	out, err = annexa(t, s, s.Admin, "webhook", "test", id)
	require.NoError(t, err, out)
	assert.Contains(t, out, "delivered: HTTP 200")
	assert.Equal(t, int32(1), got.Load())

	out, err = annexa(t, s, s.Admin, "webhook", "deliveries", id)
	require.NoError(t, err, out)
	assert.Contains(t, out, "ping")
	assert.Contains(t, out, "delivered")

	// A receiver that refuses: the test says so and exits non-zero.
	secret.Store("not the secret")
	out, err = annexa(t, s, s.Admin, "webhook", "test", id)
	require.Error(t, err, out)
	assert.Contains(t, err.Error(), "401")

	out, err = annexa(t, s, s.Admin, "webhook", "add", rc.URL, "--event", "check.failng")
	require.Error(t, err, out)
	assert.Contains(t, err.Error(), `event "check.failng"`)

	out, err = annexa(t, s, s.Admin, "webhook", "rm", id)
	require.NoError(t, err, out)
	out, err = annexa(t, s, s.Admin, "webhook", "list")
	require.NoError(t, err, out)
	assert.NotContains(t, out, id)
}

// annexa soa, soa set, soa exclude and soa history.
func TestSoACommands(t *testing.T) {
	s, _ := fleet(t)
	out, err := annexa(t, s, s.Admin, "soa", "set", "8.24", "--status", "implemented", "--owner", "it-ops", "--justification", "endpoints hold personal data")
	require.NoError(t, err, out)
	assert.Contains(t, out, "8.24 Use of cryptography: applicable, implemented, owner it-ops")
	assert.Contains(t, out, "flag: failing on 1 of 2 assets")

	out, err = annexa(t, s, s.Admin, "soa", "exclude", "7.4")
	require.Error(t, err, out)
	assert.Contains(t, err.Error(), "--justification is required")
	out, err = annexa(t, s, s.Admin, "soa", "exclude", "7.4", "--justification", "no premises of our own")
	require.NoError(t, err, out)
	assert.Contains(t, out, "7.4 Physical security monitoring: excluded")

	out, err = annexa(t, s, s.Admin, "soa", "set", "8.24", "--status", "finished")
	require.Error(t, err, out)
	assert.Contains(t, err.Error(), `status "finished"`)
	out, err = annexa(t, s, s.Admin, "soa", "set", "8.24")
	require.Error(t, err, out)
	assert.Contains(t, err.Error(), "nothing to set")

	auditor := s.Token(server.RoleAuditor, apiv1.TokenRequest{})
	out, err = annexa(t, s, auditor, "soa", "-o", "csv")
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.Len(t, lines, 94, "a header and the 93 controls")
	assert.Contains(t, out, "7.4,Physical security monitoring,excluded")
	out, err = annexa(t, s, auditor, "soa", "--flagged")
	require.NoError(t, err, out)
	assert.NotContains(t, out, "7.4 ", "an excluded control without evidence raises no flag")

	out, err = annexa(t, s, auditor, "soa", "history", "8.24")
	require.NoError(t, err, out)
	assert.Contains(t, out, `status: "" → "implemented"`)
	assert.Contains(t, out, `owner: "" → "it-ops"`)

	// An auditor reads it but may not change it.
	_, err = annexa(t, s, auditor, "soa", "set", "5.1", "--status", "planned")
	require.Error(t, err)
}

// annexa scope, scope set, scope clear, and --in-scope on the read commands.
func TestScopeCommands(t *testing.T) {
	s := servertest.New(t, server.Config{Now: func() time.Time { return t0.Add(time.Minute) }})
	for _, h := range []struct{ name, env string }{{"web-1", "prod"}, {"dev-1", "dev"}} {
		a := s.Enrol(s.Token(server.RoleEnroll, apiv1.TokenRequest{Labels: map[string]string{"env": h.env}}), h.name)
		_, err := a.Ship(a.Record(t0, map[string]evidence.Status{"disk_encryption.system_volume": evidence.Pass}))
		require.NoError(t, err)
	}
	out, err := annexa(t, s, s.Admin, "scope")
	require.NoError(t, err, out)
	assert.Contains(t, out, "no ISMS scope set")
	out, err = annexa(t, s, s.Admin, "scope", "set", "env=prod")
	require.NoError(t, err, out)
	assert.Contains(t, out, "env=prod (1 agents)")
	_, err = annexa(t, s, s.Admin, "scope", "set", "env")
	require.Error(t, err)

	out, err = annexa(t, s, s.Admin, "hosts", "--in-scope")
	require.NoError(t, err, out)
	assert.Contains(t, out, "web-1")
	assert.NotContains(t, out, "dev-1")
	out, err = annexa(t, s, s.Admin, "hosts")
	require.NoError(t, err, out)
	assert.Contains(t, out, "dev-1")

	out, err = annexa(t, s, s.Admin, "scope", "clear")
	require.NoError(t, err, out)
	assert.Contains(t, out, "no ISMS scope set")
}
