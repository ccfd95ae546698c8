package patchlevel

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

// An update is an upgrade of an installed package. Installing a package
// that was not there is no update: a machine whose last upgrade was 70
// days ago is not patched because someone installed tmux today. So
// last_update_age reads upgrade events only, from every log that records
// them, and says which one decided.

// upgradeLog is what one log says about upgrades.
type upgradeLog struct {
	Files    []string  `json:"files"`
	Upgrades int       `json:"upgrades"`           // upgrade events (transactions or package upgrades)
	Installs int       `json:"installs,omitempty"` // new packages, not counted as updates
	Last     time.Time `json:"last_upgrade,omitzero"`
	By       string    `json:"last_by,omitempty"` // the command that did it, where the log says
}

// maxLogBytes caps one decompressed log: a history log is kilobytes.
const maxLogBytes = 64 << 20

// logFiles is a log and its rotations (name.1, name.2.gz ...), newest first.
func logFiles(h *host.Host, base string) []string {
	m, _ := h.Glob(base + ".*")
	sort.Slice(m, func(i, j int) bool { return rotation(m[i]) < rotation(m[j]) })
	if h.Exists(base) {
		m = append([]string{base}, m...)
	}
	return m
}

func rotation(p string) int {
	s := strings.TrimSuffix(p[strings.LastIndexByte(p, '.'):], ".gz")
	if strings.HasSuffix(p, ".gz") {
		s = strings.TrimSuffix(p, ".gz")
		s = s[strings.LastIndexByte(s, '.'):]
	}
	n := 0
	for _, c := range strings.TrimPrefix(s, ".") {
		if c < '0' || c > '9' {
			return 1 << 30
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// readLog reads a log file, gunzipping a rotated one.
func readLog(h *host.Host, p string) ([]byte, error) {
	f, err := h.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(p, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		r = zr
	}
	b, err := host.ReadAllLimited(r, maxLogBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return b, nil
}

// scanLog feeds each line of the log and its rotations to fn.
func scanLog(h *host.Host, base string, l *upgradeLog, fn func(line string)) error {
	l.Files = []string{}
	for _, p := range logFiles(h, base) {
		b, err := readLog(h, p)
		if err != nil {
			return err
		}
		l.Files = append(l.Files, p)
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			fn(sc.Text())
		}
	}
	return nil
}

func (l *upgradeLog) upgrade(t time.Time, by string) {
	l.Upgrades++
	if t.After(l.Last) {
		l.Last, l.By = t, by
	}
}

// aptHistory reads /var/log/apt/history.log: transactions of
// "Start-Date: 2026-11-20  10:01:02", "Commandline: apt-get upgrade",
// "Upgrade: libc6:amd64 (2.36-9+deb12u8, 2.36-9+deb12u9), ...".
// unattended-upgrades writes its transactions here too.
func aptHistory(h *host.Host) (upgradeLog, error) {
	var start time.Time
	var cmd string
	var l upgradeLog
	err := scanLog(h, "/var/log/apt/history.log", &l, func(line string) {
		switch {
		case strings.HasPrefix(line, "Start-Date: "):
			start, _ = time.ParseInLocation("2006-01-02  15:04:05", strings.TrimPrefix(line, "Start-Date: "), time.Local)
			cmd = ""
		case strings.HasPrefix(line, "Commandline: "):
			cmd = strings.TrimPrefix(line, "Commandline: ")
		case strings.HasPrefix(line, "Upgrade: ") && !start.IsZero():
			l.upgrade(start, cmd)
		case strings.HasPrefix(line, "Install: "):
			l.Installs++
		}
	})
	return l, err
}

// unattendedUpgrades reads unattended-upgrades' own log:
// "2026-11-20 06:25:12,345 INFO All upgrades installed".
func unattendedUpgrades(h *host.Host) (upgradeLog, error) {
	var l upgradeLog
	err := scanLog(h, "/var/log/unattended-upgrades/unattended-upgrades.log", &l, func(line string) {
		if !strings.Contains(line, " INFO All upgrades installed") || len(line) < 19 {
			return
		}
		if t, err := time.ParseInLocation("2006-01-02 15:04:05", line[:19], time.Local); err == nil {
			l.upgrade(t, "unattended-upgrades")
		}
	})
	return l, err
}

// dpkgLog reads /var/log/dpkg.log: "2026-11-20 10:01:05 upgrade
// libc6:amd64 2.36-9+deb12u8 2.36-9+deb12u9"; "install pkg <none> 1.2" is
// a new package.
func dpkgLog(h *host.Host) (upgradeLog, error) {
	var l upgradeLog
	err := scanLog(h, "/var/log/dpkg.log", &l, func(line string) {
		f := strings.Fields(line)
		if len(f) < 6 || (f[2] != "upgrade" && f[2] != "install") {
			return
		}
		t, err := time.ParseInLocation("2006-01-02 15:04:05", f[0]+" "+f[1], time.Local)
		if err != nil {
			return
		}
		if f[2] == "install" && f[4] == "<none>" {
			l.Installs++
			return
		}
		l.upgrade(t, "dpkg")
	})
	return l, err
}

// dnfRPMLog reads /var/log/dnf.rpm.log, dnf's record of each package of
// each transaction: "2026-11-20T10:01:02+0000 SUBDEBUG Upgrade:
// openssl-1:3.0.7-27.el9.x86_64" (with "Upgraded:" for the old one).
func dnfRPMLog(h *host.Host) (upgradeLog, error) {
	var l upgradeLog
	err := scanLog(h, "/var/log/dnf.rpm.log", &l, func(line string) {
		ts, rest, ok := strings.Cut(line, " ")
		if !ok {
			return
		}
		_, action, _ := strings.Cut(rest, " ")
		switch {
		case strings.HasPrefix(action, "Upgrade: "):
			if t, err := time.Parse("2006-01-02T15:04:05-0700", ts); err == nil {
				l.upgrade(t, "dnf")
			}
		case strings.HasPrefix(action, "Installed: ") || strings.HasPrefix(action, "Install: "):
			l.Installs++
		}
	})
	return l, err
}

// source is a log that records upgrades and how to read it.
type source struct {
	path string
	read func(*host.Host) (upgradeLog, error)
}

// sameRun is how close two logs' last upgrades are to be one run of the
// package manager (apt's transaction, then dpkg's per-package lines).
const sameRun = time.Hour

// lastUpgrade decides last_update_age from the newest upgrade any of the
// logs records, and reports what each log held. Logs come most telling
// first: one names the command that upgraded; a later log's upgrade
// decides only when it is not the same run.
func lastUpgrade(h *host.Host, now time.Time, maxDays int, logs []source) evidence.Result {
	r := evidence.Result{Check: checkAge}
	seen := map[string]upgradeLog{}
	var names []string
	var errs []string
	for _, src := range logs {
		name := src.path
		l, err := src.read(h)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if len(l.Files) > 0 {
			seen[name] = l
		}
		names = append(names, name)
	}
	sort.Strings(errs)
	var best string
	installs := 0
	for _, n := range names {
		l, ok := seen[n]
		if !ok {
			continue
		}
		installs += l.Installs
		if l.Upgrades > 0 && (best == "" || l.Last.Sub(seen[best].Last) > sameRun) {
			best = n
		}
	}
	obs := map[string]any{"logs": seen, "max_days": maxDays}
	if len(errs) > 0 {
		obs["unreadable"] = errs
	}
	r.Observations = evidence.Observe(obs)
	switch {
	case best == "" && len(errs) > 0:
		r.Status, r.Reason = evidence.Error, "cannot read the package logs: "+strings.Join(errs, "; ")
		return r
	case len(seen) == 0:
		r.Status, r.Reason = evidence.Error, "none of "+strings.Join(names, ", ")+" exists: nothing records when packages were last upgraded"
		return r
	case best == "":
		r.Status, r.Reason = evidence.Error, fmt.Sprintf("%s hold no package upgrade (%d new installs, which are not updates; older logs rotated away?): cannot tell when the system was last updated", strings.Join(keys(seen), ", "), installs)
		return r
	}
	l := seen[best]
	days := int(now.Sub(l.Last).Hours() / 24)
	obs["decided_by"], obs["last_upgrade"], obs["days"] = best, l.Last.UTC(), days
	r.Observations = evidence.Observe(obs)
	by := ""
	if l.By != "" {
		// The command in full is in the observations; a reason names it.
		cmd := l.By
		if len(cmd) > 80 {
			cmd = cmd[:77] + "..."
		}
		by = " by " + cmd
	}
	if days > maxDays {
		r.Status, r.Reason = evidence.Fail, fmt.Sprintf("packages last upgraded %d days ago (more than %d), per %s%s", days, maxDays, best, by)
	} else {
		r.Status, r.Reason = evidence.Pass, fmt.Sprintf("packages last upgraded %d days ago, per %s%s", days, best, by)
	}
	return r
}

func keys(m map[string]upgradeLog) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
