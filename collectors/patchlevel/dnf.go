package patchlevel

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

// collectDNF is the RHEL/Fedora path: `dnf check-update` (exit 100 when
// updates are pending), `dnf updateinfo list --security`, dnf-automatic,
// /var/log/dnf.rpm.log and `needs-restarting -r`.
func collectDNF(ctx context.Context, h *host.Host, s *Settings, now time.Time) []evidence.Result {
	out := pendingDNF(ctx, h, s.MaxPending)
	out = append(out, automaticDNF(h), ageDNF(h, now, s.MaxDays), rebootDNF(ctx, h))
	return out
}

func pendingDNF(ctx context.Context, h *host.Host, maxPending int) []evidence.Result {
	errBoth := func(reason string) []evidence.Result {
		return []evidence.Result{{Check: checkPending, Status: evidence.Error, Reason: reason}, {Check: checkSecurity, Status: evidence.Error, Reason: reason}}
	}
	list, err := h.Run(ctx, "dnf", "-q", "--cacheonly", "check-update")
	if err != nil && !host.IsExit(err, 100) {
		return errBoth("dnf check-update failed: " + err.Error())
	}
	var ups []update
	sc := bufio.NewScanner(bytes.NewReader(list))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(sc.Text(), "Obsoleting") {
			if len(f) > 0 {
				break // the obsoletes section repeats packages
			}
			continue
		}
		if len(f) != 3 || !strings.Contains(f[0], ".") {
			continue
		}
		ups = append(ups, update{Package: f[0], To: f[1], Origin: f[2]})
	}
	if err != nil && len(ups) == 0 {
		return errBoth("dnf check-update said updates are pending (exit 100) but listed none")
	}
	sec, serr := h.Run(ctx, "dnf", "-q", "--cacheonly", "updateinfo", "list", "--security")
	if serr != nil {
		pend := pendingResult(ups, nil, maxPending)
		return []evidence.Result{pend, {Check: checkSecurity, Status: evidence.Error, Reason: "dnf updateinfo list --security failed: " + serr.Error()}}
	}
	// "RHSA-2026:1234 Important/Sec. openssl-1:3.0.7-27.el9.x86_64"
	secPkgs := map[string][]string{}
	sc = bufio.NewScanner(bytes.NewReader(sec))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && strings.Contains(f[1], "Sec.") {
			secPkgs[nameOfNEVRA(f[2])] = append(secPkgs[nameOfNEVRA(f[2])], f[0]+" "+f[1])
		}
	}
	var secUps []update
	for i, u := range ups {
		name := u.Package[:strings.LastIndexByte(u.Package, '.')]
		if adv, ok := secPkgs[name]; ok {
			ups[i].Security = true
			ups[i].Origin += " " + strings.Join(adv, ",")
			secUps = append(secUps, ups[i])
		}
	}
	return []evidence.Result{pendingResult(ups, secUps, maxPending), securityResult(secUps)}
}

// nameOfNEVRA: "openssl-1:3.0.7-27.el9.x86_64" -> "openssl".
func nameOfNEVRA(s string) string {
	for range 2 { // strip -release.arch, then -[epoch:]version
		if i := strings.LastIndexByte(s, '-'); i > 0 {
			s = s[:i]
		}
	}
	return s
}

func pendingResult(ups, sec []update, maxPending int) evidence.Result {
	pend := evidence.Result{Check: checkPending, Observations: evidence.Observe(map[string]any{"pending": len(ups), "updates": evidence.NonNil(ups), "max_pending": maxPending})}
	if len(ups) > maxPending {
		pend.Status, pend.Reason = evidence.Fail, fmt.Sprintf("%d package updates pending (%d security)", len(ups), len(sec))
	} else {
		pend.Status, pend.Reason = evidence.Pass, fmt.Sprintf("%d package updates pending", len(ups))
	}
	return pend
}

func securityResult(sec []update) evidence.Result {
	r := evidence.Result{Check: checkSecurity, Observations: evidence.Observe(map[string]any{"pending_security": len(sec), "updates": evidence.NonNil(sec)})}
	if len(sec) == 0 {
		r.Status, r.Reason = evidence.Pass, "no security updates pending"
		return r
	}
	names := make([]string, len(sec))
	for i, u := range sec {
		names[i] = u.Package
	}
	sort.Strings(names)
	r.Status, r.Reason = evidence.Fail, fmt.Sprintf("%d security updates pending: %s", len(sec), strings.Join(names, ", "))
	return r
}

// automaticDNF: dnf-automatic applying updates from an enabled timer
// (dnf-automatic-install.timer, or dnf-automatic.timer with
// apply_updates = yes).
func automaticDNF(h *host.Host) evidence.Result {
	r := evidence.Result{Check: checkAuto}
	conf, _ := h.ReadFile("/etc/dnf/automatic.conf")
	apply := ""
	section := ""
	for _, line := range strings.Split(string(conf), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && section == "[commands]" && strings.TrimSpace(k) == "apply_updates" {
			apply = strings.TrimSpace(v)
		}
	}
	timers := map[string]bool{}
	for _, t := range []string{"dnf-automatic.timer", "dnf-automatic-install.timer"} {
		timers[t] = h.Lexists("/etc/systemd/system/timers.target.wants/" + t)
	}
	r.Observations = evidence.Observe(map[string]any{"apply_updates": apply, "timers_enabled": timers, "automatic_conf_present": conf != nil})
	switch {
	case timers["dnf-automatic-install.timer"]:
		r.Status, r.Reason = evidence.Pass, "dnf-automatic-install.timer is enabled: updates are downloaded and applied"
	case timers["dnf-automatic.timer"] && (apply == "yes" || apply == "true" || apply == "1"):
		r.Status, r.Reason = evidence.Pass, "dnf-automatic.timer is enabled with apply_updates = "+apply
	case timers["dnf-automatic.timer"]:
		r.Status, r.Reason = evidence.Fail, "dnf-automatic.timer is enabled but apply_updates is not yes: updates are only downloaded"
	default:
		r.Status, r.Reason = evidence.Fail, "no dnf-automatic timer is enabled"
	}
	return r
}

// ageDNF: the newest upgrade in dnf's package log.
func ageDNF(h *host.Host, now time.Time, maxDays int) evidence.Result {
	return lastUpgrade(h, now, maxDays, []source{{"/var/log/dnf.rpm.log", dnfRPMLog}})
}

// rebootDNF: `needs-restarting -r` exits 1 when a reboot is needed.
func rebootDNF(ctx context.Context, h *host.Host) evidence.Result {
	r := evidence.Result{Check: checkReboot}
	out, err := h.Run(ctx, "needs-restarting", "-r")
	text := strings.TrimSpace(string(out))
	r.Observations = evidence.Observe(map[string]any{"needs_restarting": text})
	switch {
	case err == nil:
		r.Status, r.Reason = evidence.Pass, "needs-restarting: reboot should not be necessary"
	case host.IsExit(err, 1) && strings.Contains(text, "Reboot is required"):
		var items []string
		for _, l := range strings.Split(text, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "* "); ok {
				items = append(items, v)
			}
		}
		r.Status, r.Reason = evidence.Fail, "a reboot is required to finish updates ("+strings.Join(items, ", ")+")"
	default:
		r.Status, r.Reason = evidence.Error, "needs-restarting -r (dnf-utils): "+err.Error()
	}
	return r
}
