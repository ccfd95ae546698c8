package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

type collectedRow struct {
	Collector string `json:"collector"`
	Results   []struct {
		Check  string `json:"check"`
		Status string `json:"status"`
		Reason string `json:"reason"`
	} `json:"results"`
}

// agentJSON runs annexa-agent (with an empty configuration) and decodes its
// -o json rows into check → status and reason.
func agentJSON(t *testing.T, args ...string) map[string][2]string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, nil, 0o600))
	cmd := exec.Command(bin("annexa-agent"), append(args, "--config", cfg, "-o", "json")...)
	out, err := cmd.Output()
	require.NoError(t, err, string(out))
	var rows []collectedRow
	require.NoError(t, json.Unmarshal(out, &rows), string(out))
	got := map[string][2]string{}
	for _, r := range rows {
		for _, res := range r.Results {
			got[res.Check] = [2]string{res.Status, res.Reason}
		}
	}
	return got
}

// A Windows and a macOS capture replay on this Linux machine through the
// real agent binary to the verdicts kept beside them; a capture of this
// machine replays to the verdicts the capture run printed.
func TestCollectReplaysCaptures(t *testing.T) {
	for _, dir := range []string{
		"../../collectors/diskencryption/testdata/captures/windows11-22h2-used-space-only",
		"../../collectors/patchlevel/testdata/captures/macos-10.14-mojave-list",
	} {
		got := agentJSON(t, "collect", "--replay", dir)
		b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
		require.NoError(t, err)
		var want map[string]struct{ Status, Reason string }
		require.NoError(t, json.Unmarshal(b, &want))
		require.Len(t, got, len(want), dir)
		for check, w := range want {
			require.Equal(t, [2]string{w.Status, w.Reason}, got[check], "%s: %s", dir, check)
		}
	}

	capDir := filepath.Join(t.TempDir(), "cap")
	live := agentJSON(t, "capture", "--collector", "disk_encryption", "--collector", "time_sync", "--out", capDir)
	require.NotEmpty(t, live)
	replayed := agentJSON(t, "collect", "--replay", capDir)
	require.Equal(t, live, replayed, "the capture of this machine replays to its live verdicts")
}
