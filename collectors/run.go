package collectors

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

// Limits bound one collector run.
type Limits struct {
	// Timeout is how long the run may take (default two minutes).
	Timeout time.Duration
	// MaxOutput caps what one command of the collector may print (0: the
	// host's own cap).
	MaxOutput int64
}

// Run runs one collector within its limits and returns one result per
// declared check. A collector that panics, hangs or fails yields an error
// result for each of its checks, naming why; it never takes the caller
// down. An incremental collector gets cursor and returns the next one (nil
// when the run failed: the cursor then stays where it was and the events
// are read again).
func Run(ctx context.Context, c Collector, h *host.Host, lim Limits, settings Settings, cursor []byte) ([]evidence.Result, []byte) {
	timeout := lim.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hh := *h
	if lim.MaxOutput > 0 {
		hh.MaxOutput = lim.MaxOutput
		if er, ok := hh.Runner.(host.ExecRunner); ok {
			er.MaxOutput = lim.MaxOutput
			hh.Runner = er
		}
	}
	type out struct {
		rs   []evidence.Result
		next []byte
		err  error
	}
	done := make(chan out, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- out{err: fmt.Errorf("collector %s panicked: %v\n%s", c.Name(), p, firstLines(debug.Stack(), 6))}
			}
		}()
		if inc, ok := c.(Incremental); ok {
			rs, next, err := inc.CollectSince(ctx, &hh, settings, cursor)
			done <- out{rs, next, err}
			return
		}
		rs, err := c.Collect(ctx, &hh, settings)
		done <- out{rs: rs, err: err}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			return ErrorResults(c, o.err.Error()), nil
		}
		return Complete(c, o.rs), o.next
	case <-ctx.Done():
		// The goroutine is abandoned; its commands were killed with the context.
		return ErrorResults(c, fmt.Sprintf("collector %s did not finish within %s", c.Name(), timeout)), nil
	}
}

func firstLines(b []byte, n int) string {
	lines := 0
	for i, c := range b {
		if c == '\n' {
			lines++
			if lines == n {
				return string(b[:i])
			}
		}
	}
	return string(b)
}
