package collectors_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

// fake is a collector that misbehaves on demand.
type fake struct {
	do func(ctx context.Context) ([]evidence.Result, error)
}

func (fake) Name() string    { return "fake" }
func (fake) Version() string { return "0" }
func (fake) Checks() []evidence.Check {
	return []evidence.Check{{ID: "fake.one"}, {ID: "fake.two"}}
}
func (f fake) Collect(ctx context.Context, _ *host.Host, _ collectors.Settings) ([]evidence.Result, error) {
	return f.do(ctx)
}

func run(t *testing.T, f fake, timeout time.Duration) []evidence.Result {
	t.Helper()
	rs, _ := collectors.Run(context.Background(), f, &host.Host{Root: t.TempDir(), Runner: &host.Replay{}},
		collectors.Limits{Timeout: timeout}, nil, nil)
	require.Len(t, rs, 2, "one result per declared check, whatever happened")
	return rs
}

func TestRunContainsFailures(t *testing.T) {
	for name, tc := range map[string]struct {
		f    fake
		want string
	}{
		"panic": {fake{func(context.Context) ([]evidence.Result, error) { panic("boom") }}, "collector fake panicked: boom"},
		"hang": {fake{func(ctx context.Context) ([]evidence.Result, error) {
			select {} // ignores its context, as a buggy collector would
		}}, "did not finish within 200ms"},
		"error":  {fake{func(context.Context) ([]evidence.Result, error) { return nil, errors.New("no lsblk") }}, "no lsblk"},
		"silent": {fake{func(context.Context) ([]evidence.Result, error) { return nil, nil }}, "returned no result for this check"},
		"garbage": {fake{func(context.Context) ([]evidence.Result, error) {
			return []evidence.Result{{Check: "fake.one", Status: "maybe"}, {Check: "fake.two", Status: evidence.Pass, Reason: "ok"}}, nil
		}}, "invalid result"},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			rs := run(t, tc.f, 200*time.Millisecond)
			require.Less(t, time.Since(start), 5*time.Second)
			require.Equal(t, evidence.Error, rs[0].Status)
			require.Contains(t, rs[0].Reason, tc.want)
		})
	}
}

func TestRunPassesThrough(t *testing.T) {
	rs := run(t, fake{func(context.Context) ([]evidence.Result, error) {
		return []evidence.Result{{Check: "fake.two", Status: evidence.Fail, Reason: "b"}, {Check: "fake.one", Status: evidence.Pass, Reason: "a"}, {Check: "fake.extra", Status: evidence.Pass, Reason: "x"}}, nil
	}}, time.Second)
	require.Equal(t, []evidence.Result{{Check: "fake.one", Status: evidence.Pass, Reason: "a"}, {Check: "fake.two", Status: evidence.Fail, Reason: "b"}}, rs)
}

// Commands are bounded too: a runaway output is cut at the limit and is an
// error, not a memory blow-up.
func TestExecRunnerOutputLimit(t *testing.T) {
	r := host.ExecRunner{MaxOutput: 1000}
	out, err := r.Run(context.Background(), "head", "-c", "100000", "/dev/zero")
	require.ErrorContains(t, err, "output over 1000 bytes")
	require.Len(t, out, 1000)
	_, err = r.Run(context.Background(), "definitely-not-a-command-annexa")
	require.ErrorIs(t, err, host.ErrNotFound)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = r.Run(ctx, "sleep", "5")
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
