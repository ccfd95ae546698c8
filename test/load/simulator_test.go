package load

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/configs"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/bundle"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/server/apiv1"
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkFleetSimulator is the fleet simulator: ANNEXA_SIM_AGENTS agents
// (default 100,000) with their own keys and chains enrol with the real
// server binary; then, for ANNEXA_SIM_SECONDS (default 30), records of
// about three results (realistic observations, a few percent changing
// status each round) are shipped at ANNEXA_SIM_RATE records/s (default
// 2,800: a million agents × 10 records an hour), signed before the timed
// window, while a reader queries the overview, a control, a host list
// page, a host and a past instant. It prints sustained ingest, ack latency
// and query latency p50/p99 beside the targets, the server's RSS, and the
// database's bytes per record; then exports a bundle of the window and
// verifies it offline.
func BenchmarkFleetSimulator(b *testing.B) {
	agents, seconds, rate := envInt("ANNEXA_SIM_AGENTS", 100000), envInt("ANNEXA_SIM_SECONDS", 30), envInt("ANNEXA_SIM_RATE", 2800)
	binPath := buildServer(b)
	data := b.TempDir()
	p := startServer(b, binPath, data, "")
	defer func() { _ = p.cmd.Process.Kill(); _, _ = p.cmd.Process.Wait() }()
	adminB, _ := os.ReadFile(filepath.Join(data, "admin.token"))
	admin := p.client(b, strings.TrimSpace(string(adminB)))
	var tok apiv1.TokenResponse
	require.NoError(b, admin.Do(context.Background(), http.MethodPost, "/v1/tokens", nil, apiv1.TokenRequest{Role: "enroll", Labels: map[string]string{"env": "sim"}}, &tok))

	type simAgent struct {
		id string
		c  *client.Client
		w  *chain.Writer
	}
	// Enrol: eight at a time, each with its own key.
	sims := make([]*simAgent, agents)
	enrolStart := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	anon := p.client(b, "")
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= agents {
					return
				}
				pub, priv, _ := ed25519.GenerateKey(nil)
				resp, err := anon.Enroll(context.Background(), apiv1.EnrollRequest{Token: tok.Secret, PublicKey: pub, Hostname: fmt.Sprintf("sim-%06d", i)})
				if err != nil {
					errs <- err
					return
				}
				w, _ := chain.NewWriter(resp.AgentID, priv, chain.Head{Digest: resp.Genesis})
				c, err := client.New(client.Options{Server: p.url, Credential: resp.Credential, CAFile: filepath.Join(p.data, "tls.crt"), Timeout: 5 * time.Minute})
				if err != nil {
					errs <- err
					return
				}
				sims[i] = &simAgent{id: resp.AgentID, c: c, w: w}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(b, err)
	}
	b.Logf("enrolled %d agents in %s", agents, time.Since(enrolStart).Round(time.Second))

	signStart := time.Now()
	// Sign the window's records before it starts: each round, every
	// agent's next record; a few percent of hosts flip a check.
	total := rate * seconds
	obs := evidence.Observe(map[string]any{"volumes": []map[string]string{{"device": "/dev/nvme0n1p3", "type": "crypt", "cipher": "aes-xts-plain64", "mount": "/"}}, "crypttab": "luks-7f3c UUID=... none luks,discard"})
	type signed struct {
		a   *simAgent
		env json.RawMessage
	}
	work := make([]signed, 0, total)
	at := time.Now().UTC().Add(-time.Hour)
	for n := 0; n < total; n++ {
		a := sims[n%agents]
		round := n / agents
		st := evidence.Pass
		if (n+round)%37 == 0 {
			st = evidence.Fail
		}
		s, err := a.w.Append(chain.Entry{Asset: evidence.HostAsset(a.id), Collector: "disk_encryption", CollectorVersion: "1.0.0", CollectedAt: at.Add(time.Duration(n) * time.Millisecond),
			Results: []evidence.Result{
				{Check: "disk_encryption.system_volume", Status: st, Reason: "/ is on LUKS2 (aes-xts-plain64)", Observations: obs},
				{Check: "disk_encryption.data_volumes", Status: evidence.Pass, Reason: "no fixed data volumes besides the system volume", Observations: obs},
				{Check: "disk_encryption.swap", Status: evidence.Pass, Reason: "no swap in use", Observations: evidence.Observe(map[string]any{"swaps": []string{}})},
			}})
		require.NoError(b, err)
		work = append(work, signed{a, s.JSON})
	}

	b.Logf("signed %d records in %s", total, time.Since(signStart).Round(time.Second))

	// The window: ship at the rate, each record acknowledged on its own
	// (an agent ships what it has), from a pool of senders. An agent's
	// records go in order through one sender, as one agent ships them.
	var acks []time.Duration
	var acksMu sync.Mutex
	var acked, refused atomic.Int64
	const senders = 128
	var stopSending atomic.Int64
	queues := make([]chan signed, senders)
	agentIdx := map[*simAgent]int{}
	for i, a := range sims {
		agentIdx[a] = i
	}
	for w := range senders {
		queues[w] = make(chan signed, 1024)
		wg.Add(1)
		go func(queue chan signed) {
			defer wg.Done()
			for s := range queue {
				if stopAt := stopSending.Load(); stopAt != 0 && time.Now().UnixNano() > stopAt {
					continue // past the window: what is still queued was not offered in time
				}
				t0 := time.Now()
				var resp *apiv1.IngestResponse
				var err error
				// As an agent does: an overloaded server (503, 429) is
				// asked again after the pause it names.
				for attempt := 0; attempt < 50; attempt++ {
					resp, err = s.a.c.Ingest(context.Background(), []json.RawMessage{s.env})
					var ce *client.Error
					if !errors.As(err, &ce) || (ce.Status != http.StatusServiceUnavailable && ce.Status != http.StatusTooManyRequests) {
						break
					}
					refused.Add(1)
					time.Sleep(max(ce.RetryAfter, 50*time.Millisecond))
				}
				if err != nil {
					b.Error(err)
					return
				}
				d := time.Since(t0)
				acked.Add(int64(resp.Accepted))
				acksMu.Lock()
				acks = append(acks, d)
				acksMu.Unlock()
			}
		}(queues[w])
	}
	// The reader, while ingest runs.
	type q struct {
		name, path string
		v          url.Values
		target     time.Duration
	}
	past := time.Now().UTC().Add(-10 * time.Second).Format(time.RFC3339)
	queries := []q{
		{"/v1/controls", "/v1/controls", nil, 50 * time.Millisecond},
		{"a control's page", "/v1/controls/8.24", url.Values{"limit": {"100"}}, 100 * time.Millisecond},
		{"a host list page", "/v1/hosts", url.Values{"limit": {"100"}}, 100 * time.Millisecond},
		{"a host", "/v1/hosts/" + sims[agents/2].id, nil, 100 * time.Millisecond},
		{"a control's page ?at=", "/v1/controls/8.24", url.Values{"limit": {"100"}, "at": {past}}, 500 * time.Millisecond},
	}
	lat := make([][]time.Duration, len(queries))
	stopRead := make(chan struct{})
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		for i := 0; ; i++ {
			select {
			case <-stopRead:
				return
			default:
			}
			qq := queries[i%len(queries)]
			t0 := time.Now()
			if err := admin.Do(context.Background(), http.MethodGet, qq.path, qq.v, nil, nil); err != nil {
				b.Error(qq.name, err)
				return
			}
			lat[i%len(queries)] = append(lat[i%len(queries)], time.Since(t0))
			time.Sleep(50 * time.Millisecond)
		}
	}()
	windowStart := time.Now()
	b.ResetTimer()
	tick := time.NewTicker(100 * time.Millisecond)
	sent := 0
	for sent < total {
		<-tick.C
		due := min(total, int(time.Since(windowStart).Seconds()*float64(rate)))
		for ; sent < due; sent++ {
			queues[agentIdx[work[sent].a]%senders] <- work[sent]
		}
	}
	tick.Stop()
	// What is queued when the window ends may still go out for a few
	// seconds; the rest was not sent in time and is not counted.
	stopSending.Store(time.Now().Add(5 * time.Second).UnixNano())
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	elapsed := time.Since(windowStart)
	close(stopRead)
	rwg.Wait()
	b.StopTimer()
	windowEnd := time.Now()

	rss, peak, _ := procStats(b, p.cmd.Process.Pid)
	var dbBytes int64
	_ = filepath.Walk(data, func(path string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.Contains(fi.Name(), ".db") {
			dbBytes += fi.Size()
		}
		return nil
	})
	records := int64(agents) + acked.Load() // the enrolment key events are records of the log too
	pct := func(ds []time.Duration, p float64) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[min(len(ds)-1, int(float64(len(ds))*p))]
	}
	ingest := float64(acked.Load()) / elapsed.Seconds()
	type row struct{ what, value, target string }
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	table := []row{
		{"sustained ingest (3-result records)", fmt.Sprintf("%.0f records/s of %d offered (%d refused with 503 and retried)", ingest, rate, refused.Load()), mark(ingest >= 0.95*float64(rate))},
		{"ack latency", fmt.Sprintf("p50 %s, p99 %s", pct(acks, 0.5).Round(time.Millisecond), pct(acks, 0.99).Round(time.Millisecond)), "p99 < 1s: " + mark(pct(acks, 0.99) < time.Second)},
	}
	for i, qq := range queries {
		table = append(table, row{qq.name, fmt.Sprintf("p50 %s, p99 %s (%d queries)", pct(lat[i], 0.5).Round(100*time.Microsecond), pct(lat[i], 0.99).Round(100*time.Microsecond), len(lat[i])),
			fmt.Sprintf("p99 < %s: %s", qq.target, mark(pct(lat[i], 0.99) < qq.target))})
	}
	table = append(table,
		row{"server RSS", fmt.Sprintf("%.0f MiB now, %.0f MiB peak", float64(rss)/(1<<20), float64(peak)/(1<<20)), "≤ 512 MiB: " + mark(peak <= 512<<20)},
		row{"database bytes per record", fmt.Sprintf("%.0f (%d records, %.1f MiB)", float64(dbBytes)/float64(records), records, float64(dbBytes)/(1<<20)), "(all of it: log, indexes, state)"})
	fmt.Printf("\nFleet simulator: %d agents, %d s at %d records/s, SQLite\n| %-36s | %-62s | %-22s |\n|---|---|---|\n", agents, seconds, rate, "what", "measured", "target")
	for _, r := range table {
		fmt.Printf("| %-36s | %-62s | %-22s |\n", r.what, r.value, r.target)
	}
	b.ReportMetric(ingest, "records/s")
	b.ReportMetric(float64(pct(acks, 0.99).Milliseconds()), "ack_p99_ms")
	b.ReportMetric(float64(peak)/(1<<20), "server_peak_rss_MiB")
	b.ReportMetric(float64(dbBytes)/float64(records), "db_bytes/record")

	// The window's bundle, exported and verified offline.
	resp, err := admin.Stream(context.Background(), "/v1/export", url.Values{"from": {windowStart.Add(-time.Minute).UTC().Format(time.RFC3339Nano)}, "to": {windowEnd.Add(time.Minute).UTC().Format(time.RFC3339Nano)}})
	require.NoError(b, err)
	bb, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(b, err)
	pub, err := os.ReadFile(filepath.Join(data, "server.pub"))
	require.NoError(b, err)
	keys, err := bundle.ParseServerKeys(pub)
	require.NoError(b, err)
	cat, err := configs.Catalog()
	require.NoError(b, err)
	rep := bundle.Verify(strings.NewReader(string(bb)), keys, cat)
	require.True(b, rep.OK, "the simulator's bundle verifies offline: %v", rep.Problems)
	fmt.Printf("bundle of the window: %.1f MiB, %d entries, verified offline\n", float64(len(bb))/(1<<20), rep.Entries)
}
