// Package collectortest holds what every collector's tests share.
package collectortest

import (
	"context"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/host"
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
