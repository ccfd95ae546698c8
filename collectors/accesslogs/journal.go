package accesslogs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/annexa-dev/annexa/collectors/host"
)

// journalEntry is the part of `journalctl -o json` this reads. MESSAGE is
// a string, or an array of bytes when it is not valid UTF-8.
type journalEntry struct {
	Cursor     string          `json:"__CURSOR"`
	Realtime   string          `json:"__REALTIME_TIMESTAMP"`
	Identifier string          `json:"SYSLOG_IDENTIFIER"`
	Message    json.RawMessage `json:"MESSAGE"`
}

// readJournal reads the auth and authpriv facilities from journald after
// cursor (or since `since` the first time). Output over the runner's cap is
// read up to its last complete entry; the rest comes next run.
func readJournal(ctx context.Context, h *host.Host, cursor string, since time.Time, sum *summary) (string, error) {
	args := []string{"-o", "json", "--no-pager", "-q", "SYSLOG_FACILITY=4", "SYSLOG_FACILITY=10"}
	if cursor != "" {
		args = append(args, "--after-cursor="+cursor)
	} else {
		args = append(args, "--since=@"+strconv.FormatInt(since.Unix(), 10))
	}
	out, err := h.Run(ctx, "journalctl", args...)
	if err != nil && len(out) == 0 {
		return cursor, err
	}
	last, perr := parseJournal(out, sum)
	if last == "" {
		last = cursor
	}
	if perr != nil {
		return last, perr
	}
	return last, nil
}

// parseJournal feeds every complete entry to sum and returns the cursor of
// the last one.
func parseJournal(out []byte, sum *summary) (string, error) {
	last := ""
	for len(out) > 0 {
		nl := bytes.IndexByte(out, '\n')
		if nl < 0 {
			break // a cut-off last line
		}
		line := out[:nl]
		out = out[nl+1:]
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e journalEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return last, fmt.Errorf("journalctl: not JSON: %w", err)
		}
		sum.Lines++
		if e.Cursor != "" {
			last = e.Cursor
		}
		usec, err := strconv.ParseInt(e.Realtime, 10, 64)
		if err != nil {
			continue
		}
		// Every entry of the auth facilities is part of the record.
		sum.Recognised++
		var msg string
		if json.Unmarshal(e.Message, &msg) != nil {
			var raw []int
			if json.Unmarshal(e.Message, &raw) != nil {
				continue
			}
			b := make([]byte, len(raw))
			for i, c := range raw {
				b[i] = byte(c)
			}
			msg = string(b)
		}
		if ev, ok := parseMessage(time.UnixMicro(usec).UTC(), e.Identifier, msg); ok {
			sum.add(ev)
		}
	}
	return last, nil
}
