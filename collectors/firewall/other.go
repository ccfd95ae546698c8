package firewall

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

const socketfilterfw = "/usr/libexec/ApplicationFirewall/socketfilterfw"

// collectDarwin: the application firewall on ("Firewall is enabled. (State
// = 1)", 2 is "essential services only"), and inbound denied unless allowed:
// block-all, or stealth mode with signed apps not allowed in automatically.
func collectDarwin(ctx context.Context, h *host.Host) []evidence.Result {
	q := func(flag string) (string, error) {
		out, err := h.Run(ctx, socketfilterfw, flag)
		return strings.TrimSpace(string(out)), err
	}
	state, err := q("--getglobalstate")
	if err != nil {
		return collectors.ErrorResults(Collector{}, "socketfilterfw --getglobalstate: "+err.Error())
	}
	blockAll, err1 := q("--getblockall")
	stealth, err2 := q("--getstealthmode")
	signed, err3 := q("--getallowsigned")
	obs := evidence.Observe(map[string]string{"globalstate": state, "blockall": blockAll, "stealthmode": stealth, "allowsigned": signed})
	enabled := evidence.Result{Check: checkEnabled, Observations: obs}
	deny := evidence.Result{Check: checkDeny, Observations: obs}
	on := strings.Contains(state, "enabled") || strings.Contains(state, "State = 1") || strings.Contains(state, "State = 2")
	switch {
	case on:
		enabled.Status, enabled.Reason = evidence.Pass, "the application firewall is on ("+state+")"
	case strings.Contains(state, "disabled") || strings.Contains(state, "State = 0"):
		enabled.Status, enabled.Reason = evidence.Fail, "the application firewall is off"
	default:
		enabled.Status, enabled.Reason = evidence.Error, "socketfilterfw: unrecognised answer: "+state
	}
	switch {
	case err1 != nil || err2 != nil || err3 != nil:
		deny.Status, deny.Reason = evidence.Error, fmt.Sprintf("socketfilterfw: %v %v %v", err1, err2, err3)
	case !on:
		deny.Status, deny.Reason = evidence.Fail, "the application firewall is off: nothing is denied"
	case strings.Contains(strings.ToLower(blockAll), "block all") && !strings.Contains(strings.ToLower(blockAll), "disabled"):
		deny.Status, deny.Reason = evidence.Pass, "all incoming connections are blocked but essential services"
	case strings.Contains(state, "State = 2"):
		deny.Status, deny.Reason = evidence.Pass, "essential services only (State = 2)"
	default:
		deny.Status, deny.Reason = evidence.Fail, "incoming connections are allowed to any app the user approves ("+firstLine(blockAll)+")"
	}
	return []evidence.Result{enabled, deny}
}

const psProfiles = "Get-NetFirewallProfile | Select-Object Name,Enabled,DefaultInboundAction,AllowLocalFirewallRules | ConvertTo-Json"

// collectWindows: every profile (Domain, Private, Public) on, and each
// profile's default inbound action Block ("NotConfigured" means Windows'
// default, which is Block).
func collectWindows(ctx context.Context, h *host.Host) []evidence.Result {
	out, err := h.Run(ctx, "powershell", "-NoProfile", "-NonInteractive", "-Command", psProfiles)
	if err != nil {
		return collectors.ErrorResults(Collector{}, "Get-NetFirewallProfile: "+err.Error())
	}
	type profile struct {
		Name                 string
		Enabled              json.RawMessage // true/false, or 1/0 from older PowerShell
		DefaultInboundAction json.RawMessage // "Block", or 4 (Block) / 2 (Allow) / 0 (NotConfigured)
	}
	ps, err := host.PowerShellList[profile](out)
	if err != nil {
		return collectors.ErrorResults(Collector{}, "Get-NetFirewallProfile: not JSON: "+err.Error())
	}
	type seen struct {
		Name    string `json:"name"`
		Enabled bool   `json:"enabled"`
		Inbound string `json:"default_inbound"`
	}
	var all []seen
	var off, open []string
	for _, p := range ps {
		en := strings.Trim(string(p.Enabled), `"`)
		s := seen{Name: p.Name, Enabled: en == "true" || en == "1" || en == "True"}
		in := strings.Trim(string(p.DefaultInboundAction), `"`)
		switch in {
		case "4", "Block":
			s.Inbound = "Block"
		case "2", "Allow":
			s.Inbound = "Allow"
		case "0", "NotConfigured":
			s.Inbound = "NotConfigured (Block)"
		default:
			s.Inbound = in
		}
		all = append(all, s)
		if !s.Enabled {
			off = append(off, s.Name)
		}
		if !strings.HasPrefix(s.Inbound, "Block") && !strings.HasPrefix(s.Inbound, "NotConfigured") {
			open = append(open, s.Name+" ("+s.Inbound+")")
		}
	}
	obs := evidence.Observe(map[string]any{"profiles": all})
	enabled := evidence.Result{Check: checkEnabled, Observations: obs}
	deny := evidence.Result{Check: checkDeny, Observations: obs}
	switch {
	case len(all) == 0:
		enabled.Status, enabled.Reason = evidence.Error, "Get-NetFirewallProfile returned no profiles"
	case len(off) > 0:
		enabled.Status, enabled.Reason = evidence.Fail, "Windows Defender Firewall is off for: "+strings.Join(off, ", ")
	default:
		enabled.Status, enabled.Reason = evidence.Pass, fmt.Sprintf("Windows Defender Firewall is on for all %d profiles", len(all))
	}
	switch {
	case len(all) == 0:
		deny.Status, deny.Reason = evidence.Error, "Get-NetFirewallProfile returned no profiles"
	case len(off) > 0:
		deny.Status, deny.Reason = evidence.Fail, "profiles with the firewall off deny nothing: "+strings.Join(off, ", ")
	case len(open) > 0:
		deny.Status, deny.Reason = evidence.Fail, "inbound allowed by default: "+strings.Join(open, ", ")
	default:
		deny.Status, deny.Reason = evidence.Pass, "inbound blocked by default in every profile"
	}
	return []evidence.Result{enabled, deny}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }
