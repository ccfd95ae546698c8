package accesslogs

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/annexa-dev/annexa/internal/units"
)

// syntheticLog writes a large auth.log: the real capture's lines repeated
// with fresh timestamps and users, so the mix of events is realistic.
func syntheticLog(b *testing.B, lines int) (root string, size int64) {
	src, err := os.ReadFile("testdata/debian12/var/log/auth.log")
	if err != nil {
		b.Fatal(err)
	}
	tmpl := strings.Split(strings.TrimSpace(string(src)), "\n")
	root = b.TempDir()
	dir := filepath.Join(root, "var/log")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "auth.log"))
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	start := testNow.Add(-20 * time.Hour)
	for i := range lines {
		l := tmpl[i%len(tmpl)]
		ts := start.Add(time.Duration(i) * time.Millisecond).Format("2006-01-02T15:04:05.000000-07:00")
		l = ts + l[strings.IndexByte(l, ' '):]
		if i%7 == 0 {
			l = strings.Replace(l, "alice", fmt.Sprintf("user%d", i%900), 1)
		}
		_, _ = w.WriteString(l)
		_ = w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	st, _ := f.Stat()
	f.Close()
	return root, st.Size()
}

// BenchmarkAccessLogs: the collector over a 1,000,000-line auth.log, beside
// a bare bufio.Scanner pass over the same file (x_scanner = collector
// throughput / scanner throughput).
func BenchmarkAccessLogs(b *testing.B) {
	const lines = 1_000_000
	root, size := syntheticLog(b, lines)
	path := filepath.Join(root, "var/log/auth.log")
	b.Run("scanner", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			f, _ := os.Open(path)
			sc := bufio.NewScanner(f)
			n := 0
			for sc.Scan() {
				n++
			}
			f.Close()
			if n != lines {
				b.Fatalf("%d lines", n)
			}
		}
		b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	})
	b.Run("collector", func(b *testing.B) {
		b.SetBytes(size)
		h := fixtureHost(root, nil)
		for b.Loop() {
			rs, _, err := Collector{}.CollectSince(context.Background(), h, with(func(s *Settings) { s.Lookback = units.Duration(48 * time.Hour) }), nil)
			if err != nil || rs[0].Status != "pass" {
				b.Fatal(err, rs[0].Reason)
			}
		}
		b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	})
}
