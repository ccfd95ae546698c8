package accesslogs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"time"

	"github.com/annexa-dev/annexa/collectors/host"
)

// macPredicate selects the processes whose messages carry authentication
// events; their messages are the same as on Linux (OpenSSH, sudo, su,
// login).
const macPredicate = `process == "sshd" OR process == "sshd-session" OR process == "sudo" OR process == "su" OR process == "login"`

// macTime is the unified log's timestamp format.
const macTime = "2006-01-02 15:04:05.000000-0700"

// readUnifiedLog reads `log show --style ndjson` from just after the
// cursor's last event (or the lookback window), oldest first.
func readUnifiedLog(ctx context.Context, h *host.Host, since time.Time, sum *summary) (time.Time, error) {
	out, err := h.Run(ctx, "log", "show", "--style", "ndjson", "--info", "--predicate", macPredicate,
		"--start", since.Local().Format("2006-01-02 15:04:05"))
	if err != nil {
		return since, fmt.Errorf("log show: %w", err)
	}
	return parseUnifiedLog(out, since, sum)
}

func parseUnifiedLog(out []byte, since time.Time, sum *summary) (time.Time, error) {
	last := since
	for len(out) > 0 {
		nl := bytes.IndexByte(out, '\n')
		if nl < 0 {
			break
		}
		line := bytes.TrimSpace(out[:nl])
		out = out[nl+1:]
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var e struct {
			Timestamp string `json:"timestamp"`
			Message   string `json:"eventMessage"`
			Image     string `json:"processImagePath"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			return last, fmt.Errorf("log show: not ndjson: %w", err)
		}
		if e.Timestamp == "" {
			continue // the trailing summary object
		}
		ts, err := time.Parse(macTime, e.Timestamp)
		if err != nil {
			continue
		}
		// --start has a one-second resolution: skip what the last run read.
		if !ts.After(since) {
			continue
		}
		sum.Lines++
		sum.Recognised++ // the query selected authentication events only
		if ts.After(last) {
			last = ts
		}
		if ev, ok := parseMessage(ts.UTC(), path.Base(e.Image), e.Message); ok {
			sum.add(ev)
		}
	}
	return last, nil
}
