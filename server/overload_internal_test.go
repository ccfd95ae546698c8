package server

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/store"
)

// With every ingest slot taken, or the ingest memory budget spent, a batch
// is turned away with 503 and a Retry-After, rather than queued without
// bound; once they free, it goes through.
func TestOverloadRetryAfter(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: t.TempDir(), MaxInflight: 1})
	require.NoError(t, err)
	defer s.Close()
	tok, _, err := s.newToken(ctx, &store.Token{Role: RoleEnroll, Name: "t"})
	require.NoError(t, err)
	ts := newTestHTTP(t, s)
	c, err := client.New(client.Options{Server: ts})
	require.NoError(t, err)
	pub, priv := genKey(t)
	en, err := c.Enroll(ctx, apiv1.EnrollRequest{Token: tok, PublicKey: pub, Hostname: "h"})
	require.NoError(t, err)
	w, err := chain.NewWriter(en.AgentID, priv, chain.Head{Digest: en.Genesis})
	require.NoError(t, err)
	sig, err := w.Append(chain.Entry{Asset: evidence.HostAsset(en.AgentID), Collector: "c", CollectorVersion: "1", CollectedAt: time.Now(),
		Results: []evidence.Result{{Check: "ssh.root_login", Status: evidence.Pass, Reason: "ok"}}})
	require.NoError(t, err)
	ac, err := client.New(client.Options{Server: ts, Credential: en.Credential})
	require.NoError(t, err)

	// The ingest memory budget, spent by other batches: turned away too.
	require.NoError(t, s.budget.Acquire(ctx, s.cfg.IngestMemory))
	_, err = ac.Ingest(ctx, []json.RawMessage{sig.JSON})
	var be *client.Error
	require.ErrorAs(t, err, &be)
	assert.Equal(t, 503, be.Status)
	assert.Contains(t, be.Body.Message, "ingest memory")
	assert.GreaterOrEqual(t, be.RetryAfter, 2*time.Second)
	s.budget.Release(s.cfg.IngestMemory)

	s.inflight <- struct{}{} // the one slot, taken
	_, err = ac.Ingest(ctx, []json.RawMessage{sig.JSON})
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 503, ce.Status)
	assert.Equal(t, apiv1.CodeOverloaded, ce.Body.Code)
	assert.GreaterOrEqual(t, ce.RetryAfter, 2*time.Second)
	<-s.inflight
	resp, err := ac.Ingest(ctx, []json.RawMessage{sig.JSON})
	require.NoError(t, err)
	assert.Equal(t, 1, resp.Accepted)
}

func newTestHTTP(t *testing.T, s *Server) string {
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

func genKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	return pub, priv
}
