package patchlevel

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

// supportedMacOS are the macOS major versions Apple still ships security
// updates for: by practice the three newest (Apple publishes no dates).
// Override with the collector setting supported_macos.
var supportedMacOS = []string{"14", "15", "26"}

func collectDarwin(ctx context.Context, h *host.Host, s *Settings) []evidence.Result {
	now := h.Now()
	vers, versErr := h.Run(ctx, "sw_vers", "-productVersion")
	out := []evidence.Result{releaseDarwin(vers, versErr, s)}
	current := ""
	if versErr == nil {
		current = strings.TrimSpace(string(vers))
	}
	// "No new software available." goes to stderr, and Big Sur and later
	// print no banner at all: the answer is stdout and stderr together.
	list, errOut, err := h.RunFull(ctx, "softwareupdate", "-l")
	text := string(list) + "\n" + string(errOut)
	var ups []update
	var listErr error
	switch {
	case err != nil && len(list) == 0 && !strings.Contains(text, noNewSoftware):
		listErr = fmt.Errorf("softwareupdate -l: %w", err)
	default:
		ups, listErr = parseSoftwareUpdate(text)
	}
	if listErr != nil {
		out = append(out, evidence.Result{Check: checkPending, Status: evidence.Error, Reason: listErr.Error()}, evidence.Result{Check: checkSecurity, Status: evidence.Error, Reason: listErr.Error()})
	} else {
		// A newer major macOS on offer is an upgrade the owner may take,
		// not a missing patch of the installed one.
		var kept, upgrades []update
		for _, u := range ups {
			if isMajorUpgrade(u, current) {
				upgrades = append(upgrades, u)
				continue
			}
			kept = append(kept, u)
		}
		var sec []update
		for _, u := range kept {
			if u.Security {
				sec = append(sec, u)
			}
		}
		pend := pendingResult(kept, sec, s.MaxPending)
		if len(upgrades) > 0 {
			names := make([]string, len(upgrades))
			for i, u := range upgrades {
				names[i] = u.Package
			}
			pend.Reason += fmt.Sprintf(" (a major upgrade on offer, not counted: %s)", strings.Join(names, ", "))
		}
		out = append(out, pend, securityResult(sec))
	}
	out = append(out, automaticDarwin(ctx, h), ageDarwin(ctx, h, now, s.MaxDays), rebootDarwin(ups, listErr))
	return out
}

const noNewSoftware = "No new software available"

// isMajorUpgrade: an offered macOS whose major version is above the
// installed one's (Sonoma offered on a fully patched Ventura).
func isMajorUpgrade(u update, current string) bool {
	if current == "" || u.To == "" || !strings.HasPrefix(strings.ToLower(u.From), "macos") {
		return false
	}
	offered, _, _ := strings.Cut(u.To, ".")
	have, _, _ := strings.Cut(current, ".")
	o, err1 := strconv.Atoi(offered)
	c, err2 := strconv.Atoi(have)
	return err1 == nil && err2 == nil && o > c
}

// rebootDarwin: macOS installs an update that needs a restart during the
// restart itself, so an installed update never waits for one; an update
// listed with "Action: restart" is a pending update, which pending_updates
// reports. Nothing here can be pending a restart: not applicable, saying
// so, with the listed updates that will restart when installed.
func rebootDarwin(ups []update, listErr error) evidence.Result {
	r := evidence.Result{Check: checkReboot}
	if listErr != nil {
		r.Status, r.Reason = evidence.Error, listErr.Error()
		return r
	}
	var restart []string
	for _, u := range ups {
		if u.Restart {
			restart = append(restart, u.Package)
		}
	}
	r.Observations = evidence.Observe(map[string]any{"restart_when_installed": evidence.NonNil(restart), "updates_listed": len(ups)})
	r.Status = evidence.NotApplicable
	r.Reason = fmt.Sprintf("macOS installs updates that need a restart during the restart itself, so none waits for one after installing; %d of %d listed updates will restart when installed (pending_updates reports them)", len(restart), len(ups))
	return r
}

// parseSoftwareUpdate reads `softwareupdate -l` (stdout and stderr): the
// current "* Label: X" lines, each followed by "Title: ..., Version: ...,
// Recommended: YES, Action: restart,", and the format before Catalina,
// "   * label" followed by "Title (version), 123K [recommended] [restart]".
// macOS updates and security responses carry the security fixes; they are
// counted as security updates. An output that announces updates and yields
// none, or says nothing recognisable, is an error.
func parseSoftwareUpdate(s string) ([]update, error) {
	found := strings.Contains(s, "found the following new or updated software")
	none := strings.Contains(s, noNewSoftware)
	if !found && !none && !strings.Contains(s, "Software Update Tool") && !strings.Contains(s, "Label:") {
		return nil, fmt.Errorf("softwareupdate -l: unrecognised output")
	}
	var ups []update
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, line := range lines {
		t := strings.TrimSpace(line)
		var u update
		if label, ok := strings.CutPrefix(t, "* Label: "); ok {
			u = update{Package: label, Origin: "Apple Software Update"}
			if i+1 < len(lines) {
				for _, f := range strings.Split(strings.TrimSpace(lines[i+1]), ", ") {
					k, v, _ := strings.Cut(f, ": ")
					switch k {
					case "Title":
						u.From = v
					case "Version":
						u.To = v
					case "Action":
						u.Restart = strings.TrimSpace(strings.TrimSuffix(v, ",")) == "restart"
					}
				}
			}
		} else if label, ok := cutOldItem(line); ok {
			u = update{Package: label, Origin: "Apple Software Update"}
			if i+1 < len(lines) {
				detail := strings.TrimSpace(lines[i+1])
				if open := strings.LastIndex(detail, " ("); open >= 0 {
					u.From = strings.TrimSuffix(detail[:open], ",")
					if end := strings.Index(detail[open:], ")"); end > 0 {
						u.To = detail[open+2 : open+end]
					}
				}
				u.Restart = strings.Contains(detail, "[restart]")
			}
		} else {
			continue
		}
		// The OS's own updates and Apple's security responses; "Command
		// Line Tools (macOS Mojave ...)" names macOS but patches Xcode.
		from, pkg := strings.ToLower(u.From), strings.ToLower(u.Package)
		u.Security = strings.HasPrefix(from, "macos") || strings.HasPrefix(pkg, "macos") || strings.HasPrefix(from, "os x") || strings.HasPrefix(pkg, "os x") ||
			strings.Contains(from+" "+pkg, "security")
		ups = append(ups, u)
	}
	if found && len(ups) == 0 {
		return nil, fmt.Errorf("softwareupdate -l announces updates but none could be read")
	}
	return ups, nil
}

// cutOldItem reads a pre-Catalina item line, "   * label" or "   - label"
// (not recommended), indented.
func cutOldItem(line string) (string, bool) {
	if !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t") {
		return "", false
	}
	t := strings.TrimSpace(line)
	for _, p := range []string{"* ", "- "} {
		if l, ok := strings.CutPrefix(t, p); ok && !strings.HasPrefix(l, "Label:") {
			return strings.TrimSpace(l), l != ""
		}
	}
	return "", false
}

// automaticDarwin reads /Library/Preferences/com.apple.SoftwareUpdate.
func automaticDarwin(ctx context.Context, h *host.Host) evidence.Result {
	r := evidence.Result{Check: checkAuto}
	out, err := h.Run(ctx, "defaults", "read", "/Library/Preferences/com.apple.SoftwareUpdate")
	if err != nil {
		r.Status, r.Reason = evidence.Error, "defaults read com.apple.SoftwareUpdate: "+err.Error()
		return r
	}
	// defaults prints the domain as an old-style plist dictionary.
	if t := strings.TrimSpace(string(out)); !strings.HasPrefix(t, "{") || !strings.HasSuffix(t, "}") {
		r.Status, r.Reason = evidence.Error, fmt.Sprintf("defaults read com.apple.SoftwareUpdate: %d bytes that are not a { ... } dictionary", len(out))
		return r
	}
	kv := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " = ")
		if ok {
			kv[k] = strings.Trim(strings.TrimSuffix(v, ";"), `"`)
		}
	}
	keys := []string{"AutomaticCheckEnabled", "AutomaticDownload", "CriticalUpdateInstall", "AutomaticallyInstallMacOSUpdates"}
	obs := map[string]string{}
	var off []string
	for _, k := range keys {
		v, ok := kv[k]
		obs[k] = v
		// An unset key is macOS's default, which is on for all four since macOS 13.
		if ok && v != "1" {
			off = append(off, k)
		}
	}
	r.Observations = evidence.Observe(obs)
	if len(off) > 0 {
		r.Status, r.Reason = evidence.Fail, "automatic updates partly off: "+strings.Join(off, ", ")+" = 0"
	} else {
		r.Status, r.Reason = evidence.Pass, "automatic check, download, security responses and macOS updates are on"
	}
	return r
}

// ageDarwin: the newest macOS update in the install history.
func ageDarwin(ctx context.Context, h *host.Host, now time.Time, maxDays int) evidence.Result {
	r := evidence.Result{Check: checkAge}
	out, err := h.Run(ctx, "system_profiler", "SPInstallHistoryDataType", "-json")
	if err != nil {
		r.Status, r.Reason = evidence.Error, "system_profiler SPInstallHistoryDataType: "+err.Error()
		return r
	}
	var hist struct {
		Items []struct {
			Name    string `json:"_name"`
			Date    string `json:"install_date"`
			Version string `json:"install_version"`
			Source  string `json:"package_source"`
		} `json:"SPInstallHistoryDataType"`
	}
	if err := json.Unmarshal(out, &hist); err != nil {
		r.Status, r.Reason = evidence.Error, "system_profiler: not JSON: "+err.Error()
		return r
	}
	var last time.Time
	what := ""
	for _, it := range hist.Items {
		// The question is when the system itself was last updated: Apple's
		// OS and security updates only. Signature data (XProtect, MRT,
		// Gatekeeper) updates silently, and a third-party package
		// installed today says nothing about the system's patches.
		if !systemUpdate(it.Name) {
			continue
		}
		if t, err := time.Parse(time.RFC3339, it.Date); err == nil && t.After(last) {
			last, what = t, it.Name+" "+it.Version
		}
	}
	if last.IsZero() {
		r.Status, r.Reason = evidence.Error, "no software update in the install history"
		return r
	}
	days := int(now.Sub(last).Hours() / 24)
	r.Observations = evidence.Observe(map[string]any{"last_change": last.UTC(), "what": what, "days": days, "max_days": maxDays})
	if days > maxDays {
		r.Status, r.Reason = evidence.Fail, fmt.Sprintf("last update (%s) %d days ago (more than %d)", what, days, maxDays)
	} else {
		r.Status, r.Reason = evidence.Pass, fmt.Sprintf("last update (%s) %d days ago", what, days)
	}
	return r
}

// releaseDarwin decides os_supported from `sw_vers -productVersion`.
func releaseDarwin(out []byte, err error, s *Settings) evidence.Result {
	r := evidence.Result{Check: checkRelease}
	if err != nil {
		r.Status, r.Reason = evidence.Error, "sw_vers: "+err.Error()
		return r
	}
	v := strings.TrimSpace(string(out))
	major, _, _ := strings.Cut(v, ".")
	supported := s.SupportedMacOS
	if supported == nil {
		supported = supportedMacOS
	}
	r.Observations = evidence.Observe(map[string]any{"version": v, "supported_majors": supported})
	for _, s := range supported {
		if s == major {
			r.Status, r.Reason = evidence.Pass, "macOS "+v+" is a supported major version ("+strings.Join(supported, ", ")+")"
			return r
		}
	}
	r.Status, r.Reason = evidence.Fail, "macOS "+v+" is not among the supported major versions ("+strings.Join(supported, ", ")+")"
	return r
}

// systemUpdate: an install-history entry that updates macOS itself.
func systemUpdate(name string) bool {
	for _, p := range []string{"macOS ", "OS X ", "Security Update", "Rapid Security Response", "Background Security"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return strings.Contains(name, "Security Response")
}
