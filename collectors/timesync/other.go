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
	text := strings.ReplaceAll(string(out), "\r\n", "\n")
	p := properties([]byte(text), ": ")
	src, leap, last := p["Source"], p["Leap Indicator"], p["Last Successful Sync Time"]
	how := "labels"
	if leap == "" {
		// Windows prints these labels in its display language (LC_ALL
		// means nothing there), in a fixed order: read them by position.
		if v, ok := w32tmByPosition(text); ok {
			leap, p["Stratum"], last, src = v[0], v[1], v[6], v[7]
			how = "position (labels not in English)"
		}
	}
	r.Observations = evidence.Observe(map[string]string{"source": "w32tm /query /status", "Source": src, "Leap Indicator": leap,
		"Stratum": p["Stratum"], "Last Successful Sync Time": last, "read_by": how})
	switch {
	case src == "":
		r.Status, r.Reason = evidence.Error, "w32tm printed no Source line"
	case localClock(src):
		r.Status, r.Reason = evidence.Fail, "Windows Time uses no time source ("+src+")"
	case strings.HasPrefix(leap, "3"):
		r.Status, r.Reason = evidence.Fail, "Windows Time is not synchronised (Leap Indicator: "+leap+")"
	default:
		t, ok := syncTime(last)
		if !ok {
			// A date it cannot read is not a recent sync.
			r.Status, r.Reason = evidence.Error, "Windows Time's last successful sync time "+strconvQuote(last)+" is not a date this reads: cannot tell how long ago it synchronised"
			return r
		}
		if h.Now().Sub(t) > 24*time.Hour {
			r.Status, r.Reason = evidence.Fail, "last successful sync with "+src+" was "+last+", over a day ago"
			return r
		}
		r.Status, r.Reason = evidence.Pass, "Windows Time synchronised to "+src+" (stratum "+p["Stratum"]+")"
	}
	return r
}

// w32tmByPosition reads /query /status's nine "label: value" lines in
// their fixed order when the labels are not English: Leap Indicator,
// Stratum, Precision, Root Delay, Root Dispersion, ReferenceId, Last
// Successful Sync Time, Source, Poll Interval. The shape is checked (the
// first two values are numbers, the sixth is a hexadecimal id) before it
// is trusted.
func w32tmByPosition(text string) ([]string, bool) {
	var vals []string
	for _, l := range strings.Split(text, "\n") {
		if _, v, ok := strings.Cut(l, ": "); ok {
			vals = append(vals, strings.TrimSpace(v))
		}
	}
	if len(vals) < 9 || !startsWithDigit(vals[0]) || !startsWithDigit(vals[1]) || !strings.HasPrefix(strings.ToLower(vals[5]), "0x") {
		return nil, false
	}
	return vals, true
}

func startsWithDigit(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }

// localClock: Windows Time's own clock as its source, in the languages
// Windows names it in.
func localClock(src string) bool {
	for _, name := range []string{"Local CMOS Clock", "Free-running System Clock", "Horloge CMOS locale", "Lokale CMOS-Uhr",
		"Reloj CMOS local", "Orologio CMOS locale", "Relógio CMOS Local", "Lokale CMOS-klok", "本地 CMOS 时钟", "ローカル CMOS クロック"} {
		if strings.HasPrefix(strings.ToLower(src), strings.ToLower(name)) {
			return true
		}
	}
	return false
}

// syncTime reads the last sync time in the formats Windows prints it in:
// the user's locale decides. A 12-hour clock with AM/PM is month first
// (en-US); a 24-hour one is day first (en-GB, French, German, most of the
// world) or year first (ISO, Chinese, Japanese).
func syncTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"1/2/2006 3:04:05 PM", "2006/1/2 15:04:05", "2006-01-02 15:04:05", "2/1/2006 15:04:05", "2.1.2006 15:04:05", "2-1-2006 15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func strconvQuote(s string) string { return "\"" + s + "\"" }

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
