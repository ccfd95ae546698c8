package server

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/store"
)

// BenchmarkIngestInProcess measures Server.Ingest without HTTP, TLS or a
// load generator sharing the cores: verification plus the durable commit.
func BenchmarkIngestInProcess(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: b.TempDir(), Origin: "annexa.bench/log"})
	require.NoError(b, err)
	defer s.Close()
	secret, _, err := s.newToken(ctx, &store.Token{Role: RoleEnroll, Name: "bench"})
	require.NoError(b, err)
	pub, priv, _ := ed25519.GenerateKey(nil)
	resp, err := s.Enroll(ctx, apiv1.EnrollRequest{Token: secret, PublicKey: pub, Hostname: "h"})
	require.NoError(b, err)
	w, _ := chain.NewWriter(resp.AgentID, priv, chain.Head{Digest: resp.Genesis})
	const perBatch = 250
	at := time.Now().Add(-time.Hour)
	next := func() []json.RawMessage {
		batch := make([]json.RawMessage, perBatch)
		for k := range batch {
			at = at.Add(time.Millisecond)
			sg, err := w.Append(chain.Entry{Asset: evidence.HostAsset(resp.AgentID), Collector: "bench", CollectorVersion: "1", CollectedAt: at,
				Results: []evidence.Result{
					{Check: "disk_encryption.system_volume", Status: evidence.Pass, Reason: "LUKS2"},
					{Check: "ssh.password_auth", Status: evidence.Fail, Reason: "PasswordAuthentication yes"},
				}})
			require.NoError(b, err)
			batch[k] = sg.JSON
		}
		return batch
	}
	n := 0
	for b.Loop() {
		b.StopTimer()
		batch := next()
		b.StartTimer()
		r, err := s.Ingest(ctx, resp.AgentID, batch)
		if err != nil {
			b.Fatal(err)
		}
		n += r.Accepted
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
	_ = fmt.Sprint()
}
