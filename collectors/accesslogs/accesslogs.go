// Package accesslogs summarises authentication events since the last run
// (8.15, 8.16, 8.5, 8.2): logins that succeeded and failed by user and
// source, privileged use (sudo, su), root logins, brute-force bursts, and
// whether authentication logging is kept at all.
//
// It reads incrementally. On Linux the source is auth.log (Debian, Ubuntu)
// or secure (RHEL, Fedora) with their rotations, plain or gzipped, streamed
// line by line; without either, journald's auth facilities. The cursor
// names the file by a fingerprint of its first line and an offset, so it is
// found again after logrotate renames or compresses it: no event is counted
// twice and none is missed across rotation or a restart of the agent.
//
// Windows reads the Security log (4624 logons, 4625 failures, 4672 special
// privileges; the built-in Administrator counts as root) after the last
// EventRecordID; macOS reads the unified log (`log show --style ndjson`)
// after the last event's time.
package accesslogs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

func init() { collectors.Register(Collector{}) }

// Collector is the access_logs collector.
type Collector struct{}

// Name implements collectors.Collector.
func (Collector) Name() string { return "access_logs" }

// Version implements collectors.Collector.
func (Collector) Version() string { return "1.0.0" }

const (
	checkEvents     = "access_logs.auth_events"
	checkPrivileged = "access_logs.privileged_use"
	checkRoot       = "access_logs.root_logins"
	checkBrute      = "access_logs.brute_force"
	checkPersistent = "access_logs.logging_persistent"
)

// Checks implements collectors.Collector.
func (Collector) Checks() []evidence.Check {
	fresh := evidence.Duration(26 * time.Hour)
	p := []string{"linux"}
	return []evidence.Check{
		{ID: checkEvents, Title: "Authentication events are logged and summarised", Controls: []string{"8.15", "8.16", "8.5"}, Platforms: p, Freshness: fresh},
		{ID: checkPrivileged, Title: "Privileged use (sudo, su) by allowed users only", Controls: []string{"8.2", "8.15", "8.16"}, Platforms: p, Freshness: fresh},
		{ID: checkRoot, Title: "No direct root logins", Controls: []string{"8.2", "8.5", "8.16"}, Platforms: p, Freshness: fresh},
		{ID: checkBrute, Title: "No brute-force bursts of failed logins", Controls: []string{"8.5", "8.16"}, Platforms: p, Freshness: fresh},
		{ID: checkPersistent, Title: "Authentication logging present and persistent", Controls: []string{"8.15"}, Platforms: p, Freshness: fresh},
	}
}

// cursor is where the last stored record's reading ended.
type cursor struct {
	Source  string    `json:"source"`            // the log file's path, or "journald"
	FP      string    `json:"fp,omitempty"`      // fingerprint of the file Offset is in
	Offset  int64     `json:"offset,omitempty"`  // bytes of that file already read
	Journal string    `json:"journal,omitempty"` // journald cursor
	Record  uint64    `json:"record,omitempty"`  // Windows Security log EventRecordID
	Last    time.Time `json:"last,omitzero"`     // the last event read
	At      time.Time `json:"at"`                // when the run was
}

// Collect implements collectors.Collector: a run without a cursor, which
// reads the lookback window (`annexa-agent collect`, tests).
func (c Collector) Collect(ctx context.Context, h *host.Host, settings collectors.Settings) ([]evidence.Result, error) {
	rs, _, err := c.CollectSince(ctx, h, settings, nil)
	return rs, err
}

// CollectSince implements collectors.Incremental.
func (c Collector) CollectSince(ctx context.Context, h *host.Host, settings collectors.Settings, raw []byte) ([]evidence.Result, []byte, error) {
	switch h.OS {
	case "linux", "windows", "darwin":
	default:
		return collectors.ErrorResults(c, "access_logs: no reader for "+h.OS), nil, nil
	}
	var prev *cursor
	damaged := ""
	if len(raw) > 0 {
		prev = &cursor{}
		if err := json.Unmarshal(raw, prev); err != nil {
			// A damaged cursor must not stop the evidence: read the lookback
			// window again and say so.
			prev, damaged = nil, err.Error()
		}
	}
	s := collectors.SettingsOf(settings, defaults)
	now := h.Now()
	var err error
	sum := newSummary(s.BruteForceFailures, s.BruteForceWindow.Std())
	rd := &reading{h: h, now: now, prev: prev, since: now.Add(-s.Lookback.Std()), sum: sum}
	var next cursor
	var persistent evidence.Result
	switch h.OS {
	case "windows":
		next, err = rd.readWindows(ctx)
		persistent = securityLogKept(ctx, h)
	case "darwin":
		next, err = rd.readDarwin(ctx)
		persistent = unifiedLogKept(h, now)
	default:
		next, err = rd.read(ctx, s.Path)
		persistent = loggingPersistent(ctx, h, rd.source, s.MaxLogSilence.Std())
	}
	if err != nil {
		rs := collectors.ErrorResults(c, err.Error())
		rs[len(rs)-1] = persistent
		return rs, nil, nil
	}
	next.At = now
	nb, _ := json.Marshal(next)
	if damaged != "" {
		rd.continuity = "the stored cursor was unreadable (" + damaged + "), so the lookback window was read again; events in it may have been counted before. " + rd.continuity
	}
	period := map[string]any{"source": rd.source, "since": rd.sinceLabel(), "through": now.UTC(), "lines_read": sum.Lines,
		"lines_recognised": sum.Recognised, "continuity": rd.continuity}
	if (sum.Lines > 0 && sum.Recognised == 0) || (sum.Lines == 0 && !rd.continued) {
		// Nothing to decide on: an empty log, a log of something else, or
		// garbage. The cursor stays where it was, so a later run that finds
		// authentication records decides on them. (A run that continues
		// from a cursor and finds no new lines is a quiet hour of a log
		// that was recognised before: logging_persistent says whether the
		// log is still written.)
		reason := fmt.Sprintf("read %d lines of %s since %v, recognised none as authentication records: nothing to decide on", sum.Lines, rd.source, rd.sinceLabel())
		if sum.Lines == 0 {
			reason = fmt.Sprintf("read no lines of %s since %v: nothing to decide on", rd.source, rd.sinceLabel())
		}
		rs := collectors.ErrorResults(c, reason)
		for i := range rs {
			rs[i].Observations = evidence.Observe(map[string]any{"period": period})
		}
		rs[len(rs)-1] = persistent
		return rs, nil, nil
	}
	return decide(sum, period, s, persistent), nb, nil
}

// reading is one run's pass over the source.
type reading struct {
	h          *host.Host
	now        time.Time
	prev       *cursor
	since      time.Time
	sum        *summary
	source     string
	continuity string
	continued  bool // from the last run's position, not a lookback window
}

func (r *reading) sinceLabel() any {
	if r.prev != nil && !r.prev.At.IsZero() {
		return r.prev.At.UTC()
	}
	return r.since.UTC()
}

func (r *reading) read(ctx context.Context, path string) (cursor, error) {
	candidates := []string{"/var/log/auth.log", "/var/log/secure"}
	if path != "" {
		candidates = []string{path}
	}
	// A file left behind by a syslog daemon that no longer runs (rsyslog
	// removed in an upgrade to journald only) holds old lines and gets no
	// new ones: where journald runs and no syslog daemon does, the journal
	// is the record.
	stale := ""
	if running, examined := runningLoggers(r.h); path == "" && examined > 0 && slices.Contains(running, "systemd-journald") &&
		!slices.ContainsFunc(running, func(d string) bool { return d != "systemd-journald" }) {
		stale = "no syslog daemon runs, so /var/log/auth.log and /var/log/secure are not written; the journal is read. "
		candidates = nil
	}
	for _, base := range candidates {
		files, err := rotated(r.h, base)
		if err != nil {
			return cursor{}, fmt.Errorf("%s: %w", base, err)
		}
		if len(files) == 0 {
			continue
		}
		r.source = base
		return r.readFiles(ctx, base, files)
	}
	if path != "" {
		return cursor{}, fmt.Errorf("%s: no such log", path)
	}
	r.source = "journald"
	jc := ""
	if r.prev != nil && r.prev.Source == "journald" {
		jc = r.prev.Journal
		r.continuity = "after the journal cursor of the last run"
		r.continued = jc != ""
	} else {
		r.continuity = "first run: the last " + r.now.Sub(r.since).String()
	}
	r.continuity = stale + r.continuity
	next, err := readJournal(ctx, r.h, jc, r.since, r.sum)
	if err != nil {
		if host.IsNotExist(err) {
			return cursor{}, errors.New("no authentication log: neither /var/log/auth.log, /var/log/secure nor journalctl")
		}
		return cursor{}, fmt.Errorf("journalctl: %w", err)
	}
	return cursor{Source: "journald", Journal: next, Last: r.sum.To}, nil
}

func (r *reading) readWindows(ctx context.Context) (cursor, error) {
	r.source = "Windows Security log"
	after := uint64(0)
	if r.prev != nil && r.prev.Source == r.source && r.prev.Record > 0 {
		after = r.prev.Record
		r.continuity = fmt.Sprintf("after event record %d", after)
		r.continued = true
	} else {
		r.continuity = "first run: the last " + r.now.Sub(r.since).String()
	}
	last, err := readWindowsSecurity(ctx, r.h, after, r.now.Sub(r.since), r.sum)
	if err != nil {
		return cursor{}, err
	}
	return cursor{Source: r.source, Record: last, Last: r.sum.To}, nil
}

func (r *reading) readDarwin(ctx context.Context) (cursor, error) {
	r.source = "macOS unified log"
	since := r.since
	if r.prev != nil && r.prev.Source == r.source && !r.prev.Last.IsZero() {
		since = r.prev.Last
		r.continuity = "after the last event read, " + since.UTC().Format(time.RFC3339Nano)
		r.continued = true
	} else {
		r.continuity = "first run: the last " + r.now.Sub(r.since).String()
	}
	last, err := readUnifiedLog(ctx, r.h, since, r.sum)
	if err != nil {
		return cursor{}, err
	}
	return cursor{Source: r.source, Last: last}, nil
}

// unifiedLogKept: macOS writes the persisted part of the unified log
// (where sshd's and sudo's messages go) as .tracev3 files under
// /var/db/diagnostics/Persist; the newest must be recent.
func unifiedLogKept(h *host.Host, now time.Time) evidence.Result {
	r := evidence.Result{Check: checkPersistent}
	files, err := h.Glob("/var/db/diagnostics/Persist/*.tracev3")
	if err != nil || len(files) == 0 {
		r.Status, r.Reason = evidence.Fail, "no persisted unified log under /var/db/diagnostics/Persist"
		return r
	}
	var newest time.Time
	for _, f := range files {
		if st, err := os.Stat(h.Path(f)); err == nil && st.ModTime().After(newest) {
			newest = st.ModTime()
		}
	}
	r.Observations = evidence.Observe(map[string]any{"persist_files": len(files), "newest_write": newest.UTC()})
	if now.Sub(newest) > 48*time.Hour {
		r.Status, r.Reason = evidence.Fail, "the persisted unified log was last written "+newest.UTC().Format(time.RFC3339)
		return r
	}
	r.Status, r.Reason = evidence.Pass, fmt.Sprintf("the unified log is persisted on disk (%d files, last written %s)", len(files), newest.UTC().Format(time.RFC3339))
	return r
}

// securityLogKept: the Security log enabled (`wevtutil gl Security`).
func securityLogKept(ctx context.Context, h *host.Host) evidence.Result {
	r := evidence.Result{Check: checkPersistent}
	out, err := h.Run(ctx, "wevtutil", "gl", "Security")
	if err != nil {
		r.Status, r.Reason = evidence.Error, "wevtutil gl Security: "+err.Error()
		return r
	}
	kv := map[string]string{}
	for _, line := range strings.Split(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ": "); ok {
			kv[k] = strings.TrimSpace(v)
		}
	}
	r.Observations = evidence.Observe(map[string]string{"enabled": kv["enabled"], "retention": kv["retention"], "autoBackup": kv["autoBackup"], "maxSize": kv["maxSize"], "logFileName": kv["logFileName"]})
	switch kv["enabled"] {
	case "true":
		r.Status, r.Reason = evidence.Pass, "the Security event log is enabled ("+kv["logFileName"]+", max "+kv["maxSize"]+" bytes)"
	case "false":
		r.Status, r.Reason = evidence.Fail, "the Security event log is disabled"
	default:
		r.Status, r.Reason = evidence.Error, "wevtutil gl Security: no enabled line"
	}
	return r
}

func (r *reading) readFiles(ctx context.Context, base string, files []logFile) (cursor, error) {
	for i := range files {
		fp, err := files[i].fingerprint(r.h)
		if err != nil {
			return cursor{}, err
		}
		files[i].fp = fp
	}
	start, offset := 0, int64(0)
	var after time.Time // count only events after this (first run, lost cursor)
	switch {
	case r.prev == nil || r.prev.Source != base:
		after = r.since
		r.continuity = "first run: the last " + r.now.Sub(r.since).String()
	default:
		found := -1
		for i := len(files) - 1; i >= 0; i-- {
			f := files[i]
			if f.fp != "" && f.fp == r.prev.FP && (strings.HasSuffix(f.Path, ".gz") || f.size >= r.prev.Offset) {
				found = i
				break
			}
		}
		if found >= 0 {
			start, offset = found, r.prev.Offset
			r.continuity = "continued from the last run's position"
			r.continued = true
			if found < len(files)-1 {
				r.continuity += fmt.Sprintf(" (in %s, since rotated)", files[found].Path)
			}
		} else {
			after = r.prev.Last
			r.continuity = fmt.Sprintf("the last run's file is no longer among the rotated logs: events after %s counted by time; any rotated away unread are missing", r.prev.Last.UTC().Format(time.RFC3339))
		}
	}
	next := cursor{Source: base, Last: r.sum.To}
	if r.prev != nil {
		next.Last = r.prev.Last
	}
	for i := start; i < len(files); i++ {
		if err := ctx.Err(); err != nil {
			return cursor{}, err
		}
		f := files[i]
		if i > start {
			offset = 0
		}
		if !after.IsZero() && f.rank > 0 && f.mod.Before(after) {
			continue // rotated before the window: nothing in it counts
		}
		rc, err := f.open(r.h)
		if err != nil {
			return cursor{}, err
		}
		end, n, err := scanLines(ctx, rc, offset, func(line []byte) {
			ev, ok := parseSyslogBytes(line, r.now)
			if !ok {
				return
			}
			r.sum.Recognised++
			if ev.Kind == noted || (!after.IsZero() && !ev.Time.After(after)) {
				return
			}
			r.sum.add(ev)
		})
		rc.Close()
		if err != nil {
			return cursor{}, fmt.Errorf("%s: %w", f.Path, err)
		}
		r.sum.Lines += n
		if f.fp != "" {
			next.FP, next.Offset = f.fp, end
		}
	}
	if r.sum.To.After(next.Last) {
		next.Last = r.sum.To
	}
	return next, nil
}

func decide(sum *summary, period map[string]any, s *Settings, persistent evidence.Result) []evidence.Result {
	with := func(extra map[string]any) json.RawMessage {
		m := map[string]any{"period": period}
		for k, v := range extra {
			m[k] = v
		}
		return evidence.Observe(m)
	}
	events := evidence.Result{Check: checkEvents, Status: evidence.Pass,
		Reason: fmt.Sprintf("%d successful and %d failed logins since the last run; %d attempts naming unknown users; %d of %d lines read recognised",
			sum.LoginsOK.Total, sum.LoginsFail.Total, sum.InvalidUsers.Total, sum.Recognised, sum.Lines),
		Observations: with(map[string]any{"logins": sum.LoginsOK, "failed_logins": sum.LoginsFail, "invalid_users": sum.InvalidUsers, "by_source": sum.BySource})}

	allowed := s.PrivilegedUsers
	var unexpected []string
	users := make([]string, 0, len(sum.Privileged))
	for u, p := range sum.Privileged {
		users = append(users, u)
		if len(allowed) > 0 && p.OK > 0 && !contains(allowed, u) {
			unexpected = append(unexpected, u)
		}
	}
	sort.Strings(users)
	sort.Strings(unexpected)
	priv := evidence.Result{Check: checkPrivileged, Status: evidence.Pass,
		Observations: with(map[string]any{"by_user": sum.Privileged, "allowed_users": allowed})}
	switch {
	case len(unexpected) > 0:
		priv.Status, priv.Reason = evidence.Fail, "privileged use by users not in privileged_users: "+strings.Join(unexpected, ", ")
	case len(users) == 0:
		priv.Reason = "no privileged use since the last run"
	default:
		priv.Reason = "privileged use by " + strings.Join(users, ", ")
		if len(allowed) == 0 {
			priv.Reason += " (no privileged_users list to compare against)"
		}
	}

	root := evidence.Result{Check: checkRoot, Status: evidence.Pass, Reason: "no direct root logins since the last run",
		Observations: with(map[string]any{"root_logins": sum.RootCount, "first_100": sum.RootLogins})}
	if sum.RootCount > 0 {
		root.Status = evidence.Fail
		root.Reason = fmt.Sprintf("%d direct root logins since the last run", sum.RootCount)
	}

	bursts := sum.burst.Bursts
	brute := evidence.Result{Check: checkBrute, Status: evidence.Pass,
		Reason: fmt.Sprintf("no source had %d or more failed logins within %s", sum.burst.threshold, sum.burst.window),
		Observations: with(map[string]any{"threshold": sum.burst.threshold, "window": sum.burst.window.String(), "bursts": evidence.NonNil(bursts),
			"top_failing_users": topUsers(sum.LoginsFail.ByUser, 10)})}
	if len(bursts) > 0 {
		srcs := map[string]bool{}
		var names []string
		for _, b := range bursts {
			if !srcs[b.Source] {
				srcs[b.Source] = true
				names = append(names, b.Source)
			}
		}
		brute.Status = evidence.Fail
		brute.Reason = fmt.Sprintf("%d brute-force bursts from %s", len(bursts), strings.Join(names, ", "))
	}
	return []evidence.Result{events, priv, root, brute, persistent}
}

func globSorted(h *host.Host, pat string) []string {
	m, _ := h.Glob(pat)
	sort.Strings(m)
	return m
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
