package patchlevel

import (
	"context"
	"encoding/json"
	"fmt"
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
	out := []evidence.Result{releaseDarwin(ctx, h, s)}
	list, err := h.Run(ctx, "softwareupdate", "-l")
	if err != nil && len(list) == 0 {
		reason := "softwareupdate -l: " + err.Error()
		out = append(out, evidence.Result{Check: checkPending, Status: evidence.Error, Reason: reason}, evidence.Result{Check: checkSecurity, Status: evidence.Error, Reason: reason})
	} else {
		ups, err := parseSoftwareUpdate(string(list))
		if err != nil {
			out = append(out, evidence.Result{Check: checkPending, Status: evidence.Error, Reason: err.Error()}, evidence.Result{Check: checkSecurity, Status: evidence.Error, Reason: err.Error()})
		} else {
			var sec []update
			for _, u := range ups {
				if u.Security {
					sec = append(sec, u)
				}
			}
			out = append(out, pendingResult(ups, sec, s.MaxPending), securityResult(sec))
		}
	}
	out = append(out, automaticDarwin(ctx, h), ageDarwin(ctx, h, now, s.MaxDays), rebootDarwin(list, err))
	return out
}

// rebootDarwin: macOS installs an update that needs a restart during the
// restart itself, so one waits for a restart exactly when `softwareupdate
// -l` lists an update with "Action: restart".
func rebootDarwin(list []byte, listErr error) evidence.Result {
	r := evidence.Result{Check: checkReboot}
	if listErr != nil && len(list) == 0 {
		r.Status, r.Reason = evidence.Error, "softwareupdate -l: "+listErr.Error()
		return r
	}
	if _, err := parseSoftwareUpdate(string(list)); err != nil {
		r.Status, r.Reason = evidence.Error, err.Error()
		return r
	}
	var waiting []string
	label := ""
	for _, line := range strings.Split(string(list), "\n") {
		if l, ok := strings.CutPrefix(strings.TrimSpace(line), "* Label: "); ok {
			label = l
			continue
		}
		if label != "" && strings.Contains(line, "Action: restart") {
			waiting = append(waiting, label)
		}
	}
	r.Observations = evidence.Observe(map[string]any{"restart_required_by": evidence.NonNil(waiting)})
	if len(waiting) > 0 {
		r.Status, r.Reason = evidence.Fail, "updates wait for a restart to install: "+strings.Join(waiting, ", ")
	} else {
		r.Status, r.Reason = evidence.Pass, "no update waits for a restart"
	}
	return r
}

// parseSoftwareUpdate reads `softwareupdate -l`: "* Label: X" lines, each
// followed by a "Title: ..., Version: ..., Recommended: YES, Action:
// restart," line. macOS point releases and security responses carry the
// security fixes; they are counted as security updates.
func parseSoftwareUpdate(s string) ([]update, error) {
	if !strings.Contains(s, "Software Update Tool") && !strings.Contains(s, "Label:") {
		return nil, fmt.Errorf("softwareupdate -l: unrecognised output")
	}
	var ups []update
	lines := strings.Split(s, "\n")
	for i, line := range lines {
		label, ok := strings.CutPrefix(strings.TrimSpace(line), "* Label: ")
		if !ok {
			continue
		}
		u := update{Package: label, Origin: "Apple Software Update"}
		if i+1 < len(lines) {
			for _, f := range strings.Split(strings.TrimSpace(lines[i+1]), ", ") {
				k, v, _ := strings.Cut(f, ": ")
				switch k {
				case "Title":
					u.From = v
				case "Version":
					u.To = v
				}
			}
		}
		t := strings.ToLower(u.From + " " + label)
		u.Security = strings.Contains(t, "macos") || strings.Contains(t, "security") || strings.Contains(t, "rapid")
		ups = append(ups, u)
	}
	return ups, nil
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
		// Signature data (XProtect, MRT, Gatekeeper) updates silently; the
		// question is when the system itself was last updated.
		if strings.HasPrefix(it.Name, "XProtect") || strings.HasPrefix(it.Name, "MRT") || strings.HasPrefix(it.Name, "Gatekeeper") {
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

func releaseDarwin(ctx context.Context, h *host.Host, s *Settings) evidence.Result {
	r := evidence.Result{Check: checkRelease}
	out, err := h.Run(ctx, "sw_vers", "-productVersion")
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
