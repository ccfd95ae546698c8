package load

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/server/apiv1"
)

// procStats reads a process's current and peak RSS (bytes) and CPU time.
func procStats(b *testing.B, pid int) (rss, peak int64, cpu time.Duration) {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(b, err)
	for _, l := range strings.Split(string(st), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(b, err)
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	// utime, stime, and the same for waited-for children (the commands
	// collectors run): the whole cost of a cycle.
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseInt(fields[i], 10, 64)
		ticks += v
	}
	return rss, peak, time.Duration(ticks) * 10 * time.Millisecond // USER_HZ = 100
}

// BenchmarkAgentCycle runs the real agent binary through one full cycle of
// the built-in collectors against a real server and reports its footprint:
// CPU for the cycle, peak and idle RSS, and the binary's size. The baseline,
// measured in the same run, is the RSS of a Go program that only sleeps.
func BenchmarkAgentCycle(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc")
	}
	dir := b.TempDir()
	out, err := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", dir+"/", "../../cmd/annexa-agent", "../../cmd/annexa-server").CombinedOutput()
	require.NoError(b, err, string(out))
	require.NoError(b, os.WriteFile(filepath.Join(dir, "idle.go"), []byte("package main\nimport \"time\"\nfunc main() { time.Sleep(time.Hour) }\n"), 0o644))
	out, err = exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, "idle"), filepath.Join(dir, "idle.go")).CombinedOutput()
	require.NoError(b, err, string(out))

	p := startServer(b, filepath.Join(dir, "annexa-server"), b.TempDir(), "")
	defer func() { _ = p.cmd.Process.Kill(); _, _ = p.cmd.Process.Wait() }()
	adminB, _ := os.ReadFile(filepath.Join(p.data, "admin.token"))
	var tok apiv1.TokenResponse
	require.NoError(b, p.client(b, strings.TrimSpace(string(adminB))).Do(context.Background(), http.MethodPost, "/v1/tokens", nil, apiv1.TokenRequest{Role: "enroll"}, &tok))
	state := b.TempDir()
	cfg := filepath.Join(state, "agent.yaml")
	require.NoError(b, os.WriteFile(cfg, []byte("defaults:\n  jitter: 0s\nlog_level: warn\n"), 0o644))
	agentBin := filepath.Join(dir, "annexa-agent")
	out, err = exec.Command(agentBin, "enroll", "--server", p.url, "--token", tok.Secret, "--ca", filepath.Join(p.data, "tls.crt"), "--state", state, "--config", cfg).CombinedOutput()
	require.NoError(b, err, string(out))

	b.ResetTimer()
	cmd := exec.Command(agentBin, "run", "--state", state, "--config", cfg)
	require.NoError(b, cmd.Start())
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	// The cycle is done when every collector has a stored record and the
	// outbox is empty (all shipped).
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, _ := exec.Command(agentBin, "status", "-o", "json", "--state", state, "--config", cfg).Output()
		var st struct {
			Records    int                       `json:"outbox_records"`
			Collectors map[string]map[string]any `json:"collectors"`
			Shipment   map[string]any            `json:"last_shipment"`
		}
		if json.Unmarshal(out, &st) == nil && len(st.Collectors) >= 2 && st.Records == 0 && st.Shipment != nil {
			break
		}
		require.True(b, time.Now().Before(deadline), "agent did not finish a cycle")
		time.Sleep(100 * time.Millisecond)
	}
	_, peak, cpu := procStats(b, cmd.Process.Pid)
	time.Sleep(2 * time.Second) // idle
	rss, _, _ := procStats(b, cmd.Process.Pid)
	b.StopTimer()

	idle := exec.Command(filepath.Join(dir, "idle"))
	require.NoError(b, idle.Start())
	time.Sleep(500 * time.Millisecond)
	baseRSS, _, _ := procStats(b, idle.Process.Pid)
	_ = idle.Process.Kill()
	_ = idle.Wait()

	bin, err := os.Stat(agentBin)
	require.NoError(b, err)
	b.ReportMetric(float64(cpu.Milliseconds()), "cycle_cpu_ms")
	b.ReportMetric(float64(peak)/(1<<20), "peak_rss_MiB")
	b.ReportMetric(float64(rss)/(1<<20), "idle_rss_MiB")
	b.ReportMetric(float64(rss)/float64(baseRSS), "x_idle_go_rss")
	b.ReportMetric(float64(bin.Size())/(1<<20), "binary_MiB")
}
