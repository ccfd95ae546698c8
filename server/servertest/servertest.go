// Package servertest runs an Annexa server in-process for tests: a real
// server.Server on a temporary SQLite database behind httptest, the real
// client, and simulated agents with real keys, chains and signatures. It is
// what the server's, the store's and the CLI's own tests stand on, so they
// need no spawned binary (test/e2e does that).
package servertest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/server"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// Server is a server under test.
type Server struct {
	*server.Server
	t     testing.TB
	HTTP  *httptest.Server
	URL   string
	Admin string // the bootstrap admin token
	Log   *Buffer
	Data  string
}

// Buffer is a log sink safe for concurrent writes.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// New starts a server on a fresh SQLite database in a temporary directory.
// cfg may set anything but DataDir and Logger, which New provides.
func New(t testing.TB, cfg server.Config) *Server {
	t.Helper()
	s := &Server{t: t, Log: &Buffer{}, Data: t.TempDir()}
	cfg.DataDir = s.Data
	cfg.Logger = slog.New(slog.NewTextHandler(s.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Origin == "" {
		cfg.Origin = "annexa.test/log"
	}
	srv, err := server.Open(context.Background(), cfg)
	require.NoError(t, err)
	s.Server = srv
	s.Admin = srv.AdminToken
	s.HTTP = httptest.NewServer(srv.Handler())
	s.URL = s.HTTP.URL
	t.Cleanup(func() {
		s.HTTP.Close()
		_ = srv.Close()
	})
	return s
}

// Client is a client of the server with a credential ("" for none).
func (s *Server) Client(cred string) *client.Client {
	c, err := client.New(client.Options{Server: s.URL, Credential: cred, Timeout: 30 * time.Second})
	require.NoError(s.t, err)
	return c
}

// Token creates a token of role with the admin token.
func (s *Server) Token(role string, req apiv1.TokenRequest) string {
	s.t.Helper()
	req.Role = role
	var resp apiv1.TokenResponse
	require.NoError(s.t, s.Client(s.Admin).Do(context.Background(), http.MethodPost, "/v1/tokens", nil, req, &resp))
	return resp.Secret
}

// Agent is a simulated enrolled agent: a real key, a real chain.
type Agent struct {
	t      testing.TB
	ID     string
	Key    ed25519.PrivateKey
	Writer *chain.Writer
	Client *client.Client
	Enroll *apiv1.EnrollResponse
}

// Enrol enrols a simulated agent with an enrollment token (a fresh one if
// token is empty).
func (s *Server) Enrol(token, hostname string) *Agent {
	s.t.Helper()
	if token == "" {
		token = s.Token(server.RoleEnroll, apiv1.TokenRequest{})
	}
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(s.t, err)
	resp, err := s.Client("").Enroll(context.Background(), apiv1.EnrollRequest{Token: token, PublicKey: pub, Hostname: hostname, Facts: map[string]string{"os": "linux"}})
	require.NoError(s.t, err)
	w, err := chain.NewWriter(resp.AgentID, priv, chain.Head{Digest: resp.Genesis})
	require.NoError(s.t, err)
	return &Agent{t: s.t, ID: resp.AgentID, Key: priv, Writer: w, Client: s.Client(resp.Credential), Enroll: resp}
}

// Record signs the agent's next record about its own host with the given
// check statuses.
func (a *Agent) Record(at time.Time, results map[string]evidence.Status) json.RawMessage {
	a.t.Helper()
	var rs []evidence.Result
	for check, st := range results {
		rs = append(rs, evidence.Result{Check: check, Status: st, Reason: check + " is " + string(st),
			Observations: evidence.Observe(map[string]string{"check": check})})
	}
	s, err := a.Writer.Append(chain.Entry{Asset: evidence.HostAsset(a.ID), Collector: "test", CollectorVersion: "1", CollectedAt: at, Results: rs})
	require.NoError(a.t, err)
	return s.JSON
}

// Ship sends envelopes in one batch.
func (a *Agent) Ship(envs ...json.RawMessage) (*apiv1.IngestResponse, error) {
	return a.Client.Ingest(context.Background(), envs)
}
