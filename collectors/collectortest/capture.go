package collectortest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/capture"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

// WriteCapturesEnv, set to 1, makes Capture (re)write the capture
// directories from the fixtures instead of replaying them.
const WriteCapturesEnv = "ANNEXA_WRITE_CAPTURES"

// ExpectedFile is the verdicts a capture must replay to, beside its
// manifest.
const ExpectedFile = "expected.json"

// Expected is one check's verdict in expected.json.
type Expected struct {
	Status evidence.Status `json:"status"`
	Reason string          `json:"reason"`
}

// CaptureMeta is what a capture says of where its outputs come from.
type CaptureMeta struct {
	OSVersion, Locale  string
	Provenance, Source string
	// Sources cites each command's output by its command line.
	Sources map[string]string
}

// Capture keeps a fixture scenario as a capture directory (the format
// annexa-agent capture writes and collect --replay reads) at dir, with the
// verdicts it gives in expected.json. With ANNEXA_WRITE_CAPTURES=1 it runs c
// on h (the test's fixture host) through a recorder and writes the
// directory; otherwise it replays the directory and requires the verdicts
// in expected.json, so fixture, capture and collector stay in agreement.
func Capture(t *testing.T, c collectors.Collector, h *host.Host, dir string, meta CaptureMeta) {
	t.Helper()
	if os.Getenv(WriteCapturesEnv) == "1" {
		writeCapture(t, c, h, dir, meta)
	}
	got := ReplayCapture(t, dir)
	want := ReadExpected(t, dir)
	for check, w := range want {
		r, ok := got[check]
		require.True(t, ok, "%s: %s has no result", dir, check)
		require.Equal(t, w.Status, r.Status, "%s: %s: %s", dir, check, r.Reason)
		require.Equal(t, w.Reason, r.Reason, "%s: %s", dir, check)
	}
	require.Len(t, got, len(want), "%s: expected.json names every check", dir)
}

// ReplayCapture runs the capture's collectors on it, as
// annexa-agent collect --replay does, and returns the results by check.
func ReplayCapture(t testing.TB, dir string) map[string]evidence.Result {
	t.Helper()
	h, m, err := capture.Open(dir)
	require.NoError(t, err)
	out := map[string]evidence.Result{}
	for _, n := range m.Collectors {
		c, ok := collectors.Get(n)
		require.True(t, ok, "%s: no collector %s", dir, n)
		rs, _ := collectors.Run(context.Background(), c, h, collectors.Limits{}, nil, nil)
		for _, r := range rs {
			out[r.Check] = r
		}
	}
	return out
}

// ReadExpected reads a capture's expected.json.
func ReadExpected(t testing.TB, dir string) map[string]Expected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ExpectedFile))
	require.NoError(t, err, "%s: a capture kept as a fixture has its verdicts in %s (write them with %s=1)", dir, ExpectedFile, WriteCapturesEnv)
	var want map[string]Expected
	require.NoError(t, json.Unmarshal(b, &want))
	require.NotEmpty(t, want)
	return want
}

func writeCapture(t *testing.T, c collectors.Collector, h *host.Host, dir string, meta CaptureMeta) {
	t.Helper()
	require.NoError(t, os.RemoveAll(dir))
	at := h.Now().UTC().Truncate(time.Second)
	fixed := *h
	fixed.Clock = func() time.Time { return at }
	rec := capture.Record(&fixed)
	rs, _ := collectors.Run(context.Background(), c, rec.Host, collectors.Limits{}, nil, nil)
	m, err := rec.Write(dir, []string{c.Name()}, "fixture")
	require.NoError(t, err)
	m.OS, m.Arch, m.OSVersion, m.Locale, m.Provenance, m.Source = h.OS, "", meta.OSVersion, meta.Locale, meta.Provenance, meta.Source
	for i := range m.Commands {
		m.Commands[i].Source = meta.Sources[m.Commands[i].Line]
	}
	b, err := json.MarshalIndent(m, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.json"), append(b, '\n'), 0o644))
	want := map[string]Expected{}
	for _, r := range rs {
		want[r.Check] = Expected{Status: r.Status, Reason: r.Reason}
	}
	b, err = json.MarshalIndent(want, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ExpectedFile), append(b, '\n'), 0o644))
}
