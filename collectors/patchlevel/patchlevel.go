// Package patchlevel checks the management of technical vulnerabilities
// (8.8): pending and security updates, automatic updates, how long since
// packages last changed, a pending reboot, and whether the release is still
// supported. Linux with apt (Debian, Ubuntu) or dnf (RHEL, Rocky, Alma,
// Fedora); macOS with softwareupdate; Windows with the Windows Update agent.
package patchlevel

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

func init() { collectors.Register(Collector{}) }

// Collector is the patch_level collector.
type Collector struct{}

// Name implements collectors.Collector.
func (Collector) Name() string { return "patch_level" }

// Version implements collectors.Collector.
func (Collector) Version() string { return "1.0.0" }

const (
	checkPending  = "patch_level.pending_updates"
	checkSecurity = "patch_level.security_updates"
	checkAuto     = "patch_level.automatic_updates"
	checkAge      = "patch_level.last_update_age"
	checkReboot   = "patch_level.reboot_pending"
	checkRelease  = "patch_level.os_supported"
)

// Checks implements collectors.Collector.
func (Collector) Checks() []evidence.Check {
	f := evidence.Duration(26 * time.Hour)
	l := []string{"linux", "darwin", "windows"}
	return []evidence.Check{
		{ID: checkPending, Title: "No pending package updates", Controls: []string{"8.8", "8.1"}, Platforms: l, Freshness: f},
		{ID: checkSecurity, Title: "No pending security updates", Controls: []string{"8.8", "8.1"}, Platforms: l, Freshness: f},
		{ID: checkAuto, Title: "Automatic updates enabled", Controls: []string{"8.8", "8.1"}, Platforms: l, Freshness: f},
		{ID: checkAge, Title: "Packages updated recently", Controls: []string{"8.8"}, Platforms: l, Freshness: f},
		{ID: checkReboot, Title: "No reboot pending after updates", Controls: []string{"8.8"}, Platforms: l, Freshness: f},
		{ID: checkRelease, Title: "Operating system release still supported", Controls: []string{"8.8", "8.1"}, Platforms: l, Freshness: f},
	}
}

// endOfSupport is when each release stops receiving security updates
// (Debian: the end of LTS; Ubuntu: the end of standard support), from the
// vendors' published schedules. Update it as releases come and go.
var endOfSupport = map[string]string{
	"debian 10": "2024-06-30", "debian 11": "2026-08-31", "debian 12": "2028-06-30", "debian 13": "2030-06-30",
	"ubuntu 20.04": "2025-05-31", "ubuntu 22.04": "2027-06-01", "ubuntu 24.04": "2029-05-31", "ubuntu 26.04": "2031-05-31",
	// RHEL and its rebuilds: the end of Maintenance Support.
	"rhel 8": "2029-05-31", "rhel 9": "2032-05-31", "rhel 10": "2035-05-31",
	"rocky 8": "2029-05-31", "rocky 9": "2032-05-31", "almalinux 8": "2029-03-01", "almalinux 9": "2032-05-31",
	"fedora 39": "2024-11-26", "fedora 40": "2025-05-13",
}

// Collect implements collectors.Collector.
func (c Collector) Collect(ctx context.Context, h *host.Host, settings collectors.Settings) ([]evidence.Result, error) {
	s := collectors.SettingsOf(settings, defaults)
	switch h.OS {
	case "darwin":
		return collectDarwin(ctx, h, s), nil
	case "windows":
		return collectWindows(ctx, h, s), nil
	case "linux":
	default:
		return collectors.ErrorResults(c, "patch_level: no reader for "+h.OS), nil
	}
	osr, err := h.ReadFile("/etc/os-release")
	if err != nil {
		return collectors.ErrorResults(c, "cannot read /etc/os-release: "+err.Error()), nil
	}
	rel := parseKV(osr, "=")
	now := h.Now()
	out := []evidence.Result{release(rel, now)}
	sim, simErr := h.Run(ctx, "apt-get", "-s", "-o", "Debug::NoLocking=1", "upgrade")
	if host.IsNotExist(simErr) {
		if _, err := h.Run(ctx, "rpm", "--version"); err == nil || !host.IsNotExist(err) {
			return append(out, collectDNF(ctx, h, s, now)...), nil
		}
		reason := "neither apt-get nor rpm is installed: apt- and dnf-based systems are supported"
		for _, id := range []string{checkPending, checkSecurity, checkAuto, checkAge, checkReboot} {
			out = append(out, evidence.Result{Check: id, Status: evidence.Error, Reason: reason})
		}
		return out, nil
	}
	out = append(out, pending(sim, simErr, s.MaxPending)...)
	out = append(out, automatic(h), age(h, now, s.MaxDays), reboot(h))
	return out, nil
}

// key is os-release's ID and the major VERSION_ID for the rebuilds, whose
// minor releases share one support date.
func releaseKey(rel map[string]string) string {
	v := rel["VERSION_ID"]
	switch rel["ID"] {
	case "rhel", "rocky", "almalinux", "centos":
		v, _, _ = strings.Cut(v, ".")
	}
	return rel["ID"] + " " + v
}

func parseKV(b []byte, sep string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), sep); ok && !strings.HasPrefix(k, "#") {
			m[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return m
}

func release(rel map[string]string, now time.Time) evidence.Result {
	key := releaseKey(rel)
	r := evidence.Result{Check: checkRelease, Observations: evidence.Observe(map[string]string{"release": key, "pretty_name": rel["PRETTY_NAME"]})}
	eos, ok := endOfSupport[key]
	if !ok {
		r.Status, r.Reason = evidence.Error, fmt.Sprintf("no support dates known for %q", key)
		return r
	}
	end, _ := time.Parse("2006-01-02", eos)
	r.Observations = evidence.Observe(map[string]string{"release": key, "pretty_name": rel["PRETTY_NAME"], "end_of_support": eos})
	if now.After(end.Add(24 * time.Hour)) {
		r.Status, r.Reason = evidence.Fail, fmt.Sprintf("%s has been unsupported since %s", rel["PRETTY_NAME"], eos)
	} else {
		r.Status, r.Reason = evidence.Pass, fmt.Sprintf("%s is supported until %s", rel["PRETTY_NAME"], eos)
	}
	return r
}

// instLine is apt's simulation line: Inst name [old] (new origin [arch]).
var instLine = regexp.MustCompile(`^Inst (\S+) (?:\[([^\]]*)\] )?\((\S+) ([^\[]*?) ?\[`)

type update struct {
	Package  string `json:"package"`
	From     string `json:"from,omitempty"`
	To       string `json:"to"`
	Origin   string `json:"origin"`
	Security bool   `json:"security"`
	Restart  bool   `json:"restart,omitempty"` // macOS: installing it restarts the Mac
}

func pending(sim []byte, simErr error, maxPending int) []evidence.Result {
	if simErr != nil {
		reason := "apt-get -s upgrade failed: " + simErr.Error()
		return []evidence.Result{{Check: checkPending, Status: evidence.Error, Reason: reason}, {Check: checkSecurity, Status: evidence.Error, Reason: reason}}
	}
	var ups []update
	sc := bufio.NewScanner(bytes.NewReader(sim))
	sawSummary := false
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, " upgraded, ") && strings.Contains(line, " newly installed") {
			sawSummary = true
		}
		m := instLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ups = append(ups, update{Package: m[1], From: m[2], To: m[3], Origin: m[4], Security: strings.Contains(m[4], "-security") || strings.Contains(m[4], "Debian-Security")})
	}
	if !sawSummary {
		reason := "apt-get -s upgrade printed no summary line: cannot tell what is pending"
		return []evidence.Result{{Check: checkPending, Status: evidence.Error, Reason: reason}, {Check: checkSecurity, Status: evidence.Error, Reason: reason}}
	}
	var sec []update
	for _, u := range ups {
		if u.Security {
			sec = append(sec, u)
		}
	}
	pend := evidence.Result{Check: checkPending, Observations: evidence.Observe(map[string]any{"pending": len(ups), "updates": ups, "max_pending": maxPending})}
	if len(ups) > maxPending {
		pend.Status, pend.Reason = evidence.Fail, fmt.Sprintf("%d package updates pending (%d security)", len(ups), len(sec))
	} else {
		pend.Status, pend.Reason = evidence.Pass, fmt.Sprintf("%d package updates pending", len(ups))
	}
	secr := evidence.Result{Check: checkSecurity, Observations: evidence.Observe(map[string]any{"pending_security": len(sec), "updates": sec})}
	if len(sec) > 0 {
		names := make([]string, len(sec))
		for i, u := range sec {
			names[i] = u.Package
		}
		secr.Status, secr.Reason = evidence.Fail, fmt.Sprintf("%d security updates pending: %s", len(sec), strings.Join(names, ", "))
	} else {
		secr.Status, secr.Reason = evidence.Pass, "no security updates pending"
	}
	return []evidence.Result{pend, secr}
}

func automatic(h *host.Host) evidence.Result {
	r := evidence.Result{Check: checkAuto}
	files, _ := h.Glob("/etc/apt/apt.conf.d/*")
	sort.Strings(files)
	settings := map[string]string{}
	for _, f := range files {
		b, err := h.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			for _, k := range []string{"APT::Periodic::Unattended-Upgrade", "APT::Periodic::Update-Package-Lists"} {
				if v, ok := strings.CutPrefix(line, k); ok {
					settings[k] = strings.Trim(strings.TrimSuffix(strings.TrimSpace(v), ";"), `" `)
				}
			}
		}
	}
	r.Observations = evidence.Observe(map[string]any{"settings": settings, "files": files})
	if v := settings["APT::Periodic::Unattended-Upgrade"]; v != "" && v != "0" {
		r.Status, r.Reason = evidence.Pass, "unattended upgrades on (APT::Periodic::Unattended-Upgrade \""+v+"\")"
	} else {
		r.Status, r.Reason = evidence.Fail, "unattended upgrades are not configured (no APT::Periodic::Unattended-Upgrade in /etc/apt/apt.conf.d)"
	}
	return r
}

// age: the newest upgrade recorded by apt's history, unattended-upgrades or
// dpkg.
func age(h *host.Host, now time.Time, maxDays int) evidence.Result {
	return lastUpgrade(h, now, maxDays, []source{
		{"/var/log/apt/history.log", aptHistory}, {"/var/log/unattended-upgrades/unattended-upgrades.log", unattendedUpgrades},
		{"/var/log/dpkg.log", dpkgLog},
	})
}

// reboot: a reboot is due when update-notifier's flag file says so, or when
// a newer kernel is installed than the one running. No flag is evidence
// only where something writes it; without that and without kernels to
// compare, the check cannot tell.
func reboot(h *host.Host) evidence.Result {
	r := evidence.Result{Check: checkReboot}
	for _, flag := range []string{"/var/run/reboot-required", "/run/reboot-required"} {
		if !h.Exists(flag) {
			continue
		}
		pkgs, _ := h.ReadFile(flag + ".pkgs")
		list := strings.Fields(string(pkgs))
		r.Observations = evidence.Observe(map[string]any{"flag": flag, "packages": list})
		r.Status, r.Reason = evidence.Fail, "a reboot is required to finish updates"
		if len(list) > 0 {
			r.Reason += " (" + strings.Join(list, ", ") + ")"
		}
		return r
	}
	running := ""
	if b, err := h.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		running = strings.TrimSpace(string(b))
	}
	var installed []string
	vmlinuz, _ := h.Glob("/boot/vmlinuz-*")
	for _, k := range vmlinuz {
		installed = append(installed, strings.TrimPrefix(path.Base(k), "vmlinuz-"))
	}
	sort.Slice(installed, func(i, j int) bool { return versionLess(installed[i], installed[j]) })
	notifier := h.Exists("/etc/kernel/postinst.d/update-notifier") || h.Exists("/usr/share/update-notifier/notify-reboot-required")
	obs := map[string]any{"running_kernel": running, "installed_kernels": evidence.NonNil(installed), "flag_writer_installed": notifier}
	r.Observations = evidence.Observe(obs)
	if running != "" && slices.Contains(installed, running) {
		newest := installed[len(installed)-1]
		if newest != running && versionLess(running, newest) {
			r.Status, r.Reason = evidence.Fail, fmt.Sprintf("kernel %s is installed but %s is running: a reboot is due", newest, running)
			return r
		}
		r.Status, r.Reason = evidence.Pass, fmt.Sprintf("the running kernel %s is the newest of %d installed, and no reboot-required flag is set", running, len(installed))
		return r
	}
	if notifier {
		r.Status, r.Reason = evidence.Pass, "no reboot-required flag, which update-notifier-common sets when an update needs one"
		return r
	}
	r.Status, r.Reason = evidence.Error, fmt.Sprintf("cannot tell: the running kernel %q is not among the %d under /boot, and nothing on this host writes /var/run/reboot-required (update-notifier-common)", running, len(installed))
	return r
}

// versionLess orders kernel releases ("6.1.0-27-amd64" < "6.1.0-28-amd64",
// "6.1.0-9" < "6.1.0-10"): runs of digits compare as numbers.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitsPrefix(a), digitsPrefix(b)
		switch {
		case da != "" && db != "":
			na, _ := strconv.Atoi(da)
			nb, _ := strconv.Atoi(db)
			if na != nb {
				return na < nb
			}
			a, b = a[len(da):], b[len(db):]
		case a[0] != b[0]:
			return a[0] < b[0]
		default:
			a, b = a[1:], b[1:]
		}
	}
	return len(a) < len(b)
}

func digitsPrefix(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}
