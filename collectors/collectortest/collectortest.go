// Package collectortest holds what every collector's tests share.
package collectortest

import (
	"context"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

// Live runs c against the machine the tests run on (Linux only) and
// requires a decided or honest error result, with a reason, for every
// check it declares.
func Live(t *testing.T, c collectors.Collector) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("live test on Linux")
	}
	if testing.Short() {
		t.Skip("reads the live machine: skipped with -short")
	}
	rs, err := c.Collect(context.Background(), host.Live(), nil)
	require.NoError(t, err)
	rs = collectors.Complete(c, rs)
	require.Len(t, rs, len(c.Checks()))
	for _, r := range rs {
		require.True(t, r.Status.Valid(), r.Check)
		require.NotEmpty(t, r.Reason, r.Check)
		t.Logf("%s: %s — %s", r.Check, r.Status, r.Reason)
	}
}

// Collect runs c on h with settings (nil: its defaults), completes the
// results as the agent does, requires a reason on each, and returns them
// by check id.
func Collect(t testing.TB, c collectors.Collector, h *host.Host, settings collectors.Settings) map[string]evidence.Result {
	t.Helper()
	rs, err := c.Collect(context.Background(), h, settings)
	require.NoError(t, err)
	return ByCheck(t, c, rs)
}

// ByCheck completes results as the agent does, requires a reason on each,
// and returns them by check id.
func ByCheck(t testing.TB, c collectors.Collector, rs []evidence.Result) map[string]evidence.Result {
	t.Helper()
	out := map[string]evidence.Result{}
	for _, r := range collectors.Complete(c, rs) {
		require.NotEmpty(t, r.Reason, r.Check)
		out[r.Check] = r
	}
	return out
}

// Statuses maps results by check to their statuses.
func Statuses(rs map[string]evidence.Result) map[string]evidence.Status {
	out := make(map[string]evidence.Status, len(rs))
	for k, r := range rs {
		out[k] = r.Status
	}
	return out
}
