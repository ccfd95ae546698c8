package accesslogs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

// loggers are the daemons that write authentication logs, by the name
// the kernel gives them in /proc/PID/comm (at most 15 characters).
var loggers = map[string]string{
	"systemd-journal": "systemd-journald", "rsyslogd": "rsyslogd", "syslog-ng": "syslog-ng",
	"syslogd": "syslogd", "metalog": "metalog", "busybox syslog": "syslogd",
}

// loggingPersistent decides whether authentication logging happens and
// survives a reboot, from the running system and not from configuration
// alone: a daemon that writes the log runs, the log is kept on disk, and
// its newest entry is recent (its age is reported). A configuration that
// would keep logs on a machine where nothing logs is a fail.
func loggingPersistent(ctx context.Context, h *host.Host, source string, maxSilence time.Duration) (r evidence.Result) {
	r.Check = checkPersistent
	obs := map[string]any{"source": source}
	defer func() { r.Observations = evidence.Observe(obs) }()

	running, examined := runningLoggers(h)
	obs["processes_examined"], obs["logging_daemons"] = examined, running
	if examined == 0 {
		r.Status, r.Reason = evidence.Error, "no process list under /proc: cannot tell whether anything logs"
		return r
	}
	has := func(names ...string) bool {
		for _, n := range names {
			for _, d := range running {
				if d == n {
					return true
				}
			}
		}
		return false
	}

	var newest time.Time
	var where string
	switch {
	case source == "":
		r.Status, r.Reason = evidence.Fail, "no authentication log was found to read"
		return r
	case source != "journald":
		if !has("rsyslogd", "syslog-ng", "syslogd", "metalog") {
			r.Status, r.Reason = evidence.Fail, fmt.Sprintf("%s is not being written: no syslog daemon runs (examined %d processes)", source, examined)
			return r
		}
		t, from, err := newestFileEntry(h, source)
		if err != nil {
			r.Status, r.Reason = evidence.Error, err.Error()
			return r
		}
		newest, where = t, from
	default:
		if !has("systemd-journald") {
			r.Status, r.Reason = evidence.Fail, fmt.Sprintf("systemd-journald does not run (examined %d processes)", examined)
			return r
		}
		storage, from := journaldStorage(h)
		files, _ := h.Glob("/var/log/journal/*/*.journal")
		obs["journald_storage"], obs["set_in"], obs["journal_files"] = storage, from, len(files)
		switch {
		case storage == "volatile" || storage == "none":
			r.Status, r.Reason = evidence.Fail, "journald Storage="+storage+" and no auth log file: authentication events are lost at reboot"
			return r
		case storage != "persistent" && !h.Exists("/var/log/journal"):
			r.Status, r.Reason = evidence.Fail, "no auth log file and journald keeps its journal in memory only (Storage=auto without /var/log/journal)"
			return r
		case len(files) == 0:
			r.Status, r.Reason = evidence.Fail, "journald is set to keep its journal on disk (Storage="+storage+") but /var/log/journal holds no journal file: nothing has been written there"
			return r
		}
		t, err := newestJournalEntry(ctx, h)
		if err != nil {
			r.Status, r.Reason = evidence.Error, err.Error()
			return r
		}
		newest, where = t, fmt.Sprintf("the journal (%d files under /var/log/journal)", len(files))
	}
	age := h.Now().Sub(newest)
	obs["newest_entry"], obs["newest_entry_age"], obs["max_log_silence"] = newest.UTC(), age.Round(time.Second).String(), maxSilence.String()
	if age > maxSilence {
		r.Status, r.Reason = evidence.Fail, fmt.Sprintf("the newest entry of %s is %s old (at most %s expected): nothing is being logged", where, age.Round(time.Minute), maxSilence)
		return r
	}
	writer := "systemd-journald"
	if source != "journald" {
		writer = strings.Join(slicesWithout(running, "systemd-journald"), ", ")
	}
	r.Status, r.Reason = evidence.Pass, fmt.Sprintf("%s is written by %s and kept on disk; its newest entry is %s old", where, writer, age.Round(time.Second))
	return r
}

// runningLoggers lists the logging daemons among the host's processes and
// how many processes it examined.
func runningLoggers(h *host.Host) ([]string, int) {
	comms, _ := h.Glob("/proc/[0-9]*/comm")
	found := map[string]bool{}
	for _, c := range comms {
		b, err := h.ReadFile(c)
		if err != nil {
			continue // the process ended
		}
		if d, ok := loggers[strings.TrimSpace(string(b))]; ok {
			found[d] = true
		}
	}
	out := make([]string, 0, len(found))
	for d := range found {
		out = append(out, d)
	}
	sort.Strings(out)
	return out, len(comms)
}

func journaldStorage(h *host.Host) (storage, from string) {
	storage, from = "auto", "default"
	for _, p := range append([]string{"/etc/systemd/journald.conf"}, globSorted(h, "/etc/systemd/journald.conf.d/*.conf")...) {
		b, err := h.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Storage="); ok {
				storage, from = strings.TrimSpace(v), p
			}
		}
	}
	return storage, from
}

// newestJournalEntry asks journald for its newest entry's time.
func newestJournalEntry(ctx context.Context, h *host.Host) (time.Time, error) {
	out, err := h.Run(ctx, "journalctl", "-n", "1", "-o", "json", "--no-pager", "-q")
	if err != nil {
		return time.Time{}, fmt.Errorf("journalctl -n 1: %w", err)
	}
	var e journalEntry
	if err := json.Unmarshal(bytes.TrimSpace(out), &e); err != nil {
		return time.Time{}, fmt.Errorf("journalctl -n 1: not a journal entry: %w", err)
	}
	usec, err := strconv.ParseInt(e.Realtime, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("journalctl -n 1: no __REALTIME_TIMESTAMP in the newest entry")
	}
	return time.UnixMicro(usec), nil
}

// tailBytes is how much of a log's end is read to find its newest entry.
const tailBytes = 64 << 10

// newestFileEntry is the time of the last dated line of the log, or of its
// newest plain rotation when logrotate has just emptied it.
func newestFileEntry(h *host.Host, base string) (time.Time, string, error) {
	var tried []string
	for _, p := range []string{base, base + ".1"} {
		t, ok, err := lastDated(h, p)
		if err != nil {
			if os.IsNotExist(err) && p != base {
				break
			}
			return time.Time{}, "", fmt.Errorf("%s: %w", p, err)
		}
		if ok {
			return t, p, nil
		}
		tried = append(tried, path.Base(p))
	}
	return time.Time{}, "", fmt.Errorf("no dated line at the end of %s: cannot tell when it was last written", strings.Join(tried, " or "))
}

func lastDated(h *host.Host, p string) (time.Time, bool, error) {
	f, err := h.Open(p)
	if err != nil {
		return time.Time{}, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return time.Time{}, false, err
	}
	off := max(st.Size()-tailBytes, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return time.Time{}, false, err
	}
	now := h.Now()
	for len(buf) > 0 {
		buf = bytes.TrimRight(buf, "\n")
		nl := bytes.LastIndexByte(buf, '\n')
		line := buf[nl+1:]
		buf = buf[:max(nl, 0)]
		if t, ok := lineTime(line, now); ok {
			return t, true, nil
		}
		if nl < 0 {
			break
		}
	}
	return time.Time{}, false, nil
}

// lineTime is a syslog line's timestamp.
func lineTime(line []byte, now time.Time) (time.Time, bool) {
	switch {
	case len(line) > 20 && line[4] == '-' && line[10] == 'T':
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			return time.Time{}, false
		}
		t, err := time.Parse(time.RFC3339Nano, string(line[:sp]))
		return t, err == nil
	case len(line) > 16 && line[3] == ' ' && line[15] == ' ':
		return yearless(line[:15], now)
	}
	return time.Time{}, false
}

func slicesWithout(list []string, drop string) []string {
	out := make([]string, 0, len(list))
	for _, v := range list {
		if v != drop {
			out = append(out, v)
		}
	}
	return out
}
