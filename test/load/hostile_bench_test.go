package load

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/server/apiv1"
)

// BenchmarkHostileMemory: 64 enrolled agents each send maximum-size gzip
// bombs (16 KB on the wire, 16 MB decompressed), 64 at a time, three rounds,
// to a server on SQLite with --max-inflight 64. The figure is the server's
// peak RSS (VmHWM), against the 512 MiB it must stay under; the baseline is
// its RSS idle, measured in the same run before the bombs.
func BenchmarkHostileMemory(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("reads /proc")
	}
	bin := buildServer(b)
	for i := 0; i < b.N; i++ {
		data := b.TempDir()
		p := startServer(b, bin, data, "") // --max-inflight 64, the default
		admin, err := os.ReadFile(filepath.Join(data, "admin.token"))
		require.NoError(b, err)
		c := p.client(b, strings.TrimSpace(string(admin)))
		var tok apiv1.TokenResponse
		require.NoError(b, c.Do(context.Background(), http.MethodPost, "/v1/tokens", nil, apiv1.TokenRequest{Role: "enroll"}, &tok))
		var creds []string
		for j := 0; j < 64; j++ {
			pub, _, _ := ed25519.GenerateKey(nil)
			r, err := p.client(b, "").Enroll(context.Background(), apiv1.EnrollRequest{Token: tok.Secret, PublicKey: pub, Hostname: fmt.Sprint("m", j)})
			require.NoError(b, err)
			creds = append(creds, r.Credential)
		}
		idle := rssKiB(b, p.cmd.Process.Pid, "VmRSS:")
		var raw bytes.Buffer
		raw.WriteString(`{"envelopes":[`)
		raw.WriteString(strings.Repeat(" ", 16<<20-64))
		raw.WriteString(`]}`)
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, _ = zw.Write(raw.Bytes())
		_ = zw.Close()
		pem, err := os.ReadFile(filepath.Join(data, "tls.crt"))
		require.NoError(b, err)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxConnsPerHost: 128}}
		b.ResetTimer()
		for round := 0; round < 3; round++ {
			var wg sync.WaitGroup
			for _, cr := range creds {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequest(http.MethodPost, p.url+"/v1/evidence", bytes.NewReader(gz.Bytes()))
					req.Header.Set("Authorization", "Bearer "+cr)
					req.Header.Set("Content-Encoding", "gzip")
					if resp, err := hc.Do(req); err == nil {
						resp.Body.Close()
					}
				}()
			}
			wg.Wait()
		}
		b.StopTimer()
		peak := rssKiB(b, p.cmd.Process.Pid, "VmHWM:")
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		b.ReportMetric(float64(peak)/1024, "peak_rss_MiB")
		b.ReportMetric(float64(idle)/1024, "idle_rss_MiB")
		b.ReportMetric(float64(peak)/1024/512, "x_512MiB_target")
	}
}

func rssKiB(b *testing.B, pid int, field string) int {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(b, err)
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			var kb int
			_, _ = fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
