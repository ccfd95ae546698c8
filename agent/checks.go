package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// ChecksFile caches the check ids the server last said it takes.
const ChecksFile = "checks.json"

// serverChecks is what the agent knows of the server's mapping. The server
// refuses a record with a check its mapping does not know, and a refused
// record would stall the chain: so such results are left out of the record
// (and said so in the log and the status) rather than signed.
type serverChecks struct {
	mu      sync.Mutex
	known   map[string]bool // nil: not known yet, nothing is left out
	fetched time.Time
	path    string
}

// refresh asks the server at most every ten minutes; when it does not
// answer, the last answer kept stands.
func (a *Agent) refreshChecks(ctx context.Context) {
	c := &a.checks
	c.mu.Lock()
	if c.path == "" {
		c.path = filepath.Join(a.cfg.StateDir, ChecksFile)
		if b, err := os.ReadFile(c.path); err == nil {
			var list []string
			if json.Unmarshal(b, &list) == nil {
				c.known = set(list)
			}
		}
	}
	due := time.Since(c.fetched) > 10*time.Minute
	if due {
		// Asked at most every ten minutes, answered or not: a server that
		// does not answer must not cost every collector run a timeout.
		c.fetched = time.Now()
	}
	c.mu.Unlock()
	if !due {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var resp apiv1.Checks
	if err := a.client.Do(ctx, http.MethodGet, "/v1/checks", nil, nil, &resp); err != nil {
		a.log.Debug("cannot ask the server which checks it takes: using the last answer", "err", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.known = set(resp.Checks)
	if err := saveJSON(c.path, resp.Checks, 0o600); err != nil {
		a.log.Warn("checks not kept", "err", err)
	}
}

// keep returns the results the server takes, logging what it leaves out.
func (c *serverChecks) keep(collector string, rs []evidence.Result, log *slog.Logger) []evidence.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known == nil {
		return rs
	}
	out := rs[:0:0]
	var left []string
	for _, r := range rs {
		if c.known[r.Check] || evidence.IsPluginFailureCheck(r.Check) {
			out = append(out, r)
			continue
		}
		left = append(left, r.Check)
	}
	if len(left) > 0 {
		log.Warn("results not reported: the server's mapping does not know these checks (add them to its mapping file)",
			"collector", collector, "checks", left)
	}
	return out
}

func set(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, x := range list {
		m[x] = true
	}
	return m
}
