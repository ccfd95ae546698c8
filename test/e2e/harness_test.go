// Package e2e starts the real binaries on loopback and drives them as
// agents, analysts and auditors would.
package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/servertest"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "annexa-e2e-bin")
	if err != nil {
		panic(err)
	}
	binDir = dir
	cmd := exec.Command("go", "build", "-o", dir+"/", "../../cmd/annexa-server", "../../cmd/annexa", "../../cmd/annexa-agent")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building binaries:", err)
		os.Exit(1)
	}
	for name, pkg := range map[string]string{"annexa-plugin-exec": "../../plugins/exec", "annexa-plugin-host": "../../plugins/host"} {
		cmd = exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", name+":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func bin(name string) string { return filepath.Join(binDir, name) }

// backends are the stores every server test runs on.
func backends(t *testing.T) []string {
	out := []string{"sqlite"}
	if os.Getenv("ANNEXA_TEST_POSTGRES") != "" {
		out = append(out, "postgres")
	} else {
		t.Log("ANNEXA_TEST_POSTGRES not set: PostgreSQL half skipped (make test sets it)")
	}
	return out
}

// freshDatabase creates an empty PostgreSQL database for one test.
func freshDatabase(t *testing.T) string {
	base := os.Getenv("ANNEXA_TEST_POSTGRES")
	db, err := sql.Open("pgx", base)
	require.NoError(t, err)
	defer db.Close()
	name := fmt.Sprintf("annexa_%d", time.Now().UnixNano())
	_, err = db.Exec("CREATE DATABASE " + name)
	require.NoError(t, err)
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err == nil {
			_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			db.Close()
		}
	})
	return strings.Replace(base, "/postgres?", "/"+name+"?", 1)
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// server is a running annexa-server process.
type server struct {
	t       *testing.T
	URL     string
	Data    string
	CA      string
	Admin   string
	DB      string
	addr    string
	cmd     *exec.Cmd
	stderr  *servertest.Buffer
	args    []string
	stopped bool
}

// startServer starts the real binary on a free loopback port with a fresh
// data directory (or dataDir if given) and the backend's store.
func startServer(t *testing.T, backend, dataDir, database string, extra ...string) *server {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	if backend == "postgres" && database == "" {
		database = freshDatabase(t)
	}
	s := &server{t: t, Data: dataDir, DB: database, addr: freePort(t)}
	s.args = append([]string{"serve", "--listen", s.addr, "--data", dataDir, "--origin", "annexa.test/log"}, extra...)
	if database != "" {
		s.args = append(s.args, "--database", database)
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) start() {
	t := s.t
	s.stderr = &servertest.Buffer{}
	s.cmd = exec.Command(bin("annexa-server"), s.args...)
	s.cmd.Stderr = s.stderr
	s.cmd.Stdout = s.stderr
	require.NoError(t, s.cmd.Start())
	s.stopped = false
	s.URL = "https://" + s.addr
	s.CA = filepath.Join(s.Data, "tls.crt")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(s.Data, "admin.token")); err == nil && s.ready() {
			s.Admin = strings.TrimSpace(string(b))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not become ready:\n%s", s.stderr.String())
		}
		if s.cmd.ProcessState != nil {
			t.Fatalf("server exited:\n%s", s.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) ready() bool {
	pem, err := os.ReadFile(filepath.Join(s.Data, "tls.crt"))
	if err != nil {
		return false
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(s.URL + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// stop sends SIGTERM (graceful) and waits.
func (s *server) stop() {
	if s.stopped || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

func (s *server) client(cred string) *client.Client {
	c, err := client.New(client.Options{Server: s.URL, Credential: cred, CAFile: s.CA})
	require.NoError(s.t, err)
	return c
}

// token creates an API or enrollment token with the admin token.
func (s *server) token(role string, req apiv1.TokenRequest) string {
	req.Role = role
	var resp apiv1.TokenResponse
	require.NoError(s.t, s.client(s.Admin).Do(context.Background(), http.MethodPost, "/v1/tokens", nil, req, &resp))
	return resp.Secret
}

// cli runs the annexa CLI against the server.
func (s *server) cli(token string, args ...string) (string, error) {
	cmd := exec.Command(bin("annexa"), args...)
	cmd.Env = append(os.Environ(), "ANNEXA_SERVER="+s.URL, "ANNEXA_TOKEN="+token, "ANNEXA_CA="+s.CA)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// simAgent is an enrolled agent simulated in the test: real key, real
// chain, real signatures, shipping through the real client.
type simAgent struct {
	t      *testing.T
	ID     string
	key    ed25519.PrivateKey
	w      *chain.Writer
	c      *client.Client
	enroll *apiv1.EnrollResponse
	clock  time.Time
}

func (s *server) enrol(enrollToken, hostname string) *simAgent {
	t := s.t
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	resp, err := s.client("").Enroll(context.Background(), apiv1.EnrollRequest{Token: enrollToken, PublicKey: pub, Hostname: hostname, Facts: map[string]string{"os": "linux"}})
	require.NoError(t, err)
	w, err := chain.NewWriter(resp.AgentID, priv, chain.Head{Digest: resp.Genesis})
	require.NoError(t, err)
	return &simAgent{t: t, ID: resp.AgentID, key: priv, w: w, c: s.client(resp.Credential), enroll: resp,
		clock: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

// record signs the next record about the agent's host with the given check
// statuses.
func (a *simAgent) record(at time.Time, results map[string]evidence.Status) json.RawMessage {
	return a.recordAbout(evidence.HostAsset(a.ID), at, results)
}

// recordAbout signs the next record about any asset: what a compromised
// agent can sign.
func (a *simAgent) recordAbout(asset evidence.Asset, at time.Time, results map[string]evidence.Status) json.RawMessage {
	var rs []evidence.Result
	for check, st := range results {
		rs = append(rs, evidence.Result{Check: check, Status: st, Reason: check + " is " + string(st), Observations: evidence.Observe(map[string]string{"check": check})})
	}
	s, err := a.w.Append(chain.Entry{Asset: asset, Collector: "test", CollectorVersion: "1", CollectedAt: at, Results: rs})
	require.NoError(a.t, err)
	return s.JSON
}

func (a *simAgent) ship(envs ...json.RawMessage) (*apiv1.IngestResponse, error) {
	return a.c.Ingest(context.Background(), envs)
}

func apiErr(t *testing.T, err error) *client.Error {
	t.Helper()
	require.Error(t, err)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	return ce
}

// mappingWith writes the shipped check→control mapping plus extra checks
// (mapped to 8.16) for a server started with --mapping: the server takes
// results only for checks its mapping knows.
func mappingWith(t *testing.T, extra ...string) string {
	t.Helper()
	b, err := os.ReadFile("../../configs/mapping.yaml")
	require.NoError(t, err)
	var sb strings.Builder
	sb.Write(b)
	sb.WriteString("\n  # added by the test\n")
	for _, c := range extra {
		sb.WriteString("  " + c + ": [\"8.16\"]\n")
	}
	path := filepath.Join(t.TempDir(), "mapping.yaml")
	require.NoError(t, os.WriteFile(path, []byte(sb.String()), 0o644))
	return path
}
