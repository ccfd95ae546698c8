// Package load measures the server under load: sustained ingest with real
// signatures against the real binary, and query latency over a large fleet.
// Run with `make bench`; each figure is reported beside a baseline measured
// in the same run.
package load

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/configs"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// verifyCeiling is how many ed25519 verifications per second this machine
// does right now on all cores: the most any ingest could reach.
func verifyCeiling() float64 { return verifyRate(runtime.GOMAXPROCS(0)) }

// verifyRate measures raw ed25519 verifications per second on n cores.
func verifyRate(cores int) float64 {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 700)
	sig := ed25519.Sign(priv, msg)
	var n atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(time.Second)
	start := time.Now()
	for w := 0; w < cores; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				for i := 0; i < 100; i++ {
					ed25519.Verify(pub, msg, sig)
				}
				n.Add(100)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

type proc struct {
	cmd  *exec.Cmd
	url  string
	data string
	args []string
}

func startServer(b *testing.B, binPath, data, database string) *proc {
	addr := func() string {
		l, err := (&net0{}).listen()
		require.NoError(b, err)
		return l
	}()
	p := &proc{data: data, url: "https://" + addr}
	p.args = []string{"serve", "--listen", addr, "--data", data, "--origin", "annexa.bench/log", "--log-level", "warn"}
	if database != "" {
		p.args = append(p.args, "--database", database)
	}
	p.start(b, binPath)
	return p
}

func (p *proc) start(b *testing.B, binPath string) {
	p.cmd = exec.Command(binPath, p.args...)
	p.cmd.Stderr = os.Stderr
	require.NoError(b, p.cmd.Start())
	for i := 0; i < 300; i++ {
		if _, err := os.Stat(filepath.Join(p.data, "admin.token")); err == nil {
			c, _ := client.New(client.Options{Server: p.url, CAFile: filepath.Join(p.data, "tls.crt")})
			if c != nil && c.Do(context.Background(), http.MethodGet, "/readyz", nil, nil, nil) == nil {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatal("server did not start")
}

func (p *proc) client(b *testing.B, cred string) *client.Client {
	c, err := client.New(client.Options{Server: p.url, Credential: cred, CAFile: filepath.Join(p.data, "tls.crt"), Timeout: 5 * time.Minute})
	require.NoError(b, err)
	return c
}

func buildServer(b *testing.B) string {
	dir := b.TempDir()
	out, err := exec.Command("go", "build", "-o", dir+"/", "../../cmd/annexa-server").CombinedOutput()
	require.NoError(b, err, string(out))
	return filepath.Join(dir, "annexa-server")
}

// BenchmarkIngest: N simulated agents with real keys send pre-signed
// batches concurrently, of two shapes: records of 2 results (the
// signature-bound case: the figure is accepted records/s and its ratio to
// the verify-only ceiling of all cores) and of 30 results (the per-result
// indexing bound: records/s against the 1,000). Afterwards the
// server is killed with SIGKILL and restarted: every acknowledged record
// must still be in the log. Each backend prints its rows beside the
// targets.
func BenchmarkIngest(b *testing.B) {
	binPath := buildServer(b)
	backends := []string{"sqlite"}
	if os.Getenv("ANNEXA_TEST_POSTGRES") != "" {
		backends = append(backends, "postgres")
	}
	shapes := []struct {
		name                       string
		results, batches, perBatch int
	}{
		{"2_results", 2, 10, 250},
		{"30_results", 30, 4, 100},
	}
	for _, backend := range backends {
		for _, shape := range shapes {
			b.Run(backend+"/"+shape.name, func(b *testing.B) {
				ingestShape(b, binPath, backend, shape.results, shape.batches, shape.perBatch)
			})
		}
	}
}

func ingestShape(b *testing.B, binPath, backend string, results, batches, perBatch int) {
	const agents = 16
	rs := benchResults(b, results)
	database := ""
	if backend == "postgres" {
		database = freshDatabase(b)
	}
	p := startServer(b, binPath, b.TempDir(), database)
	defer func() { _ = p.cmd.Process.Kill(); _, _ = p.cmd.Process.Wait() }()
	adminB, _ := os.ReadFile(filepath.Join(p.data, "admin.token"))
	admin := p.client(b, strings.TrimSpace(string(adminB)))
	var tok apiv1.TokenResponse
	require.NoError(b, admin.Do(context.Background(), http.MethodPost, "/v1/tokens", nil, apiv1.TokenRequest{Role: "enroll"}, &tok))

	type agent struct {
		c       *client.Client
		batches [][]json.RawMessage
	}
	var as []agent
	for i := 0; i < agents; i++ {
		pub, priv, _ := ed25519.GenerateKey(nil)
		resp, err := p.client(b, "").Enroll(context.Background(), apiv1.EnrollRequest{Token: tok.Secret, PublicKey: pub, Hostname: fmt.Sprint("h", i)})
		require.NoError(b, err)
		w, _ := chain.NewWriter(resp.AgentID, priv, chain.Head{Digest: resp.Genesis})
		a := agent{c: p.client(b, resp.Credential)}
		at := time.Now().Add(-time.Hour)
		for j := 0; j < batches; j++ {
			var batch []json.RawMessage
			for k := 0; k < perBatch; k++ {
				at = at.Add(time.Millisecond)
				s, err := w.Append(chain.Entry{Asset: evidence.HostAsset(resp.AgentID), Collector: "bench", CollectorVersion: "1", CollectedAt: at,
					Results: rs})
				require.NoError(b, err)
				batch = append(batch, s.JSON)
			}
			a.batches = append(a.batches, batch)
		}
		as = append(as, a)
	}
	b.ResetTimer()
	start := time.Now()
	var acked atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(as))
	for _, a := range as {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, batch := range a.batches {
				for {
					resp, err := a.c.Ingest(context.Background(), batch)
					var ce *client.Error
					if errors.As(err, &ce) && ce.Status == 503 {
						time.Sleep(ce.RetryAfter / 10)
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					acked.Add(int64(resp.Accepted))
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(b, err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	rate := float64(acked.Load()) / elapsed.Seconds()
	// Both baselines, measured now: the verify-only ceiling (one
	// core's raw ed25519 verify rate, the ratio) and the same
	// times the cores.
	one, all := verifyRate(1), verifyCeiling()
	b.ReportMetric(rate, "records/s")
	b.ReportMetric(one, "verify_1core/s")
	b.ReportMetric(rate/one, "x_verify_ceiling")
	b.ReportMetric(rate/all, "x_verify_ceiling_x_cores")
	b.ReportMetric(rate*float64(results), "results/s")
	target, met := "", false
	if results >= 30 {
		target, met = "≥ 1,000 records/s", rate >= 1000
	} else {
		want := map[string]float64{"sqlite": 0.5, "postgres": 0.4}[backend]
		target, met = fmt.Sprintf("≥ %.1f× all-cores verify", want), rate/all >= want
	}
	fmt.Printf("\nIngest, %s, pre-signed records of %d results, %d agents in batches of %d, every acknowledgment durable\n| %-44s | %-22s | %-6s |\n|---|---|---|\n| %-44s | %-22s | %-6s |\n",
		backend, results, agents, perBatch, "measured", "target", "",
		fmt.Sprintf("%.0f records/s (%.0f results/s), %.2f× all-cores verify (%.0f/s)", rate, rate*float64(results), rate/all, all), target, map[bool]string{true: "met", false: "MISSED"}[met])

	// Durability: kill -9, restart, count.
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_, _ = p.cmd.Process.Wait()
	p.start(b, binPath)
	var cp []byte
	require.NoError(b, admin.Do(context.Background(), http.MethodGet, "/v1/log/checkpoint", nil, nil, &cp))
	var size int64
	_, err := fmt.Sscanf(strings.Split(string(cp), "\n")[1], "%d", &size)
	require.NoError(b, err, "checkpoint %q", cp)
	require.Equal(b, int64(agents)+acked.Load(), size, "acknowledged records lost across kill -9")
}

// benchResults is a record's n results: the shipped mapping's first n
// checks (each once, as a collector's record holds them), each with a
// reason and a small observation, a quarter failing.
func benchResults(b *testing.B, n int) []evidence.Result {
	cat, err := configs.Catalog()
	require.NoError(b, err)
	m, err := configs.Mapping(cat, "")
	require.NoError(b, err)
	checks := m.CheckIDs()
	require.GreaterOrEqual(b, len(checks), n, "the shipped mapping's checks")
	out := make([]evidence.Result, n)
	for i := range out {
		st := evidence.Pass
		if i%4 == 1 {
			st = evidence.Fail
		}
		out[i] = evidence.Result{Check: checks[i], Status: st, Reason: fmt.Sprintf("finding %d as collected", i), Observations: evidence.Observe(map[string]int{"item": i})}
	}
	return out
}
