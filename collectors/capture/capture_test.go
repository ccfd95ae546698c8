package capture_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors"
	_ "github.com/annexa-dev/annexa/collectors/all"
	"github.com/annexa-dev/annexa/collectors/capture"
	"github.com/annexa-dev/annexa/evidence"
)

// A capture of this machine, replayed, gives the verdicts the live run
// gave, with the same reasons: word for word but for counts, since other
// tests start and end processes between a glob of /proc and its reading.
var digits = regexp.MustCompile(`[0-9]+`)

func TestCaptureReplaysTheLiveVerdicts(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("captures this Linux machine")
	}
	if testing.Short() {
		t.Skip("reads the live machine: skipped with -short")
	}
	names := collectors.Names() // every collector
	rec := capture.NewRecorder()
	live := map[string]evidence.Result{}
	for _, n := range names {
		c, _ := collectors.Get(n)
		rs, _ := collectors.Run(context.Background(), c, rec.Host, collectors.Limits{}, nil, nil)
		for _, r := range rs {
			live[r.Check] = r
		}
	}
	dir := filepath.Join(t.TempDir(), "cap")
	m, err := rec.Write(dir, names, "test")
	require.NoError(t, err)
	require.NotEmpty(t, m.Files)
	_, err = rec.Write(dir, names, "test")
	require.ErrorContains(t, err, "not empty", "a capture never overwrites one")

	h, m2, err := capture.Open(dir)
	require.NoError(t, err)
	require.Equal(t, m.CapturedAt, m2.CapturedAt)
	for _, n := range names {
		c, _ := collectors.Get(n)
		rs, _ := collectors.Run(context.Background(), c, h, collectors.Limits{}, nil, nil)
		for _, r := range rs {
			require.Equal(t, live[r.Check].Status, r.Status, "%s: %s | %s", r.Check, live[r.Check].Reason, r.Reason)
			require.Equal(t, digits.ReplaceAllString(live[r.Check].Reason, "N"), digits.ReplaceAllString(r.Reason, "N"), r.Check)
		}
	}
}

// Commands replay with their exit codes and the first line of standard
// error; a command the capture did not record is not installed.
func TestReplayCommands(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "commands"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "files", "etc"), 0o755))
	for name, body := range map[string]string{"000.out": "partial\n", "000.err": "denied: Operation not permitted\nmore\n", "001.out": "ok\n", "001.err": ""} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "commands", name), []byte(body), 0o644))
	}
	m := capture.Manifest{Format: capture.Format, OS: "linux", Commands: []capture.Command{
		{Line: "nft -j list ruleset", Stdout: "000.out", Stderr: "000.err", Exit: 1},
		{Line: "timedatectl show", Stdout: "001.out", Stderr: "001.err"},
		{Line: "iptables-save", NotFound: true},
	}}
	b, _ := json.Marshal(m)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644))
	h, _, err := capture.Open(dir)
	require.NoError(t, err)
	out, err := h.Run(context.Background(), "nft", "-j", "list", "ruleset")
	require.Equal(t, "partial\n", string(out))
	require.EqualError(t, err, "nft: exit status 1: denied: Operation not permitted")
	out, err = h.Run(context.Background(), "timedatectl", "show")
	require.NoError(t, err)
	require.Equal(t, "ok\n", string(out))
	for _, cmd := range [][]string{{"iptables-save"}, {"ufw", "status"}} {
		_, err = h.Run(context.Background(), cmd[0], cmd[1:]...)
		require.ErrorContains(t, err, "command not found", cmd[0])
	}

	// Another format is refused, not misread.
	m.Format = 99
	b, _ = json.Marshal(m)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644))
	_, _, err = capture.Open(dir)
	require.ErrorContains(t, err, "capture format 99")
}
