package timesync

import (
	"context"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

// fromW32tm reads `w32tm /query /status`: synchronised when the source is
// not the local clock, the leap indicator is not 3 (unsynchronised) and the
// last successful sync is recent.
func fromW32tm(ctx context.Context, h *host.Host) evidence.Result {
	r := evidence.Result{Check: checkSynced}
	out, err := h.Run(ctx, "w32tm", "/query", "/status")
	if err != nil {
		r.Status, r.Reason = evidence.Error, "w32tm /query /status (Windows Time service stopped?): "+err.Error()
		return r
	}
	p := properties([]byte(strings.ReplaceAll(string(out), "\r\n", "\n")), ": ")
	src, leap, last := p["Source"], p["Leap Indicator"], p["Last Successful Sync Time"]
	r.Observations = evidence.Observe(map[string]string{"source": "w32tm /query /status", "Source": src, "Leap Indicator": leap,
		"Stratum": p["Stratum"], "Last Successful Sync Time": last})
	switch {
	case src == "":
		r.Status, r.Reason = evidence.Error, "w32tm printed no Source line"
	case strings.HasPrefix(src, "Local CMOS Clock") || strings.HasPrefix(src, "Free-running System Clock"):
		r.Status, r.Reason = evidence.Fail, "Windows Time uses no time source ("+src+")"
	case strings.HasPrefix(leap, "3"):
		r.Status, r.Reason = evidence.Fail, "Windows Time is not synchronised (Leap Indicator: "+leap+")"
	default:
		if t, err := time.ParseInLocation("1/2/2006 3:04:05 PM", last, time.Local); err == nil && h.Now().Sub(t) > 24*time.Hour {
			r.Status, r.Reason = evidence.Fail, "last successful sync with "+src+" was "+last+", over a day ago"
			return r
		}
		r.Status, r.Reason = evidence.Pass, "Windows Time synchronised to "+src+" (stratum "+p["Stratum"]+")"
	}
	return r
}

// fromDarwin: network time on (`systemsetup -getusingnetworktime`) and
// timed's server (`systemsetup -getnetworktimeserver`).
func fromDarwin(ctx context.Context, h *host.Host) evidence.Result {
	r := evidence.Result{Check: checkSynced}
	out, err := h.Run(ctx, "systemsetup", "-getusingnetworktime")
	if err != nil {
		r.Status, r.Reason = evidence.Error, "systemsetup -getusingnetworktime (needs root): "+err.Error()
		return r
	}
	using := strings.TrimSpace(string(out))
	server := ""
	if out, err := h.Run(ctx, "systemsetup", "-getnetworktimeserver"); err == nil {
		server = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "Network Time Server:"))
	}
	r.Observations = evidence.Observe(map[string]string{"source": "systemsetup", "usingnetworktime": using, "networktimeserver": server})
	switch using {
	case "Network Time: On":
		r.Status, r.Reason = evidence.Pass, "network time is on (server "+server+")"
	case "Network Time: Off":
		r.Status, r.Reason = evidence.Fail, "network time is off: the clock is set by hand"
	default:
		r.Status, r.Reason = evidence.Error, "systemsetup: unrecognised answer: "+using
	}
	return r
}
