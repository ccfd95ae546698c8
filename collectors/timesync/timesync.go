// Package timesync checks that the clock is synchronised to a time source
// (8.17): logs and evidence from machines whose clocks disagree cannot be
// put in order.
package timesync

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

func init() { collectors.Register(Collector{}) }

// Collector is the time_sync collector.
type Collector struct{}

// Name implements collectors.Collector.
func (Collector) Name() string { return "time_sync" }

// Version implements collectors.Collector.
func (Collector) Version() string { return "1.0.0" }

const checkSynced = "time_sync.synchronized"

// Checks implements collectors.Collector.
func (Collector) Checks() []evidence.Check {
	return []evidence.Check{{ID: checkSynced, Title: "Clock synchronised to a time source", Controls: []string{"8.17"},
		Platforms: []string{"linux", "darwin", "windows"}, Freshness: evidence.Duration(26 * time.Hour)}}
}

// Collect asks, in order, systemd (timedatectl), chrony (chronyc) and ntpd
// (ntpq): the first that answers decides. None answering is an error, not a
// pass: an unknown clock is not a synchronised one.
func (c Collector) Collect(ctx context.Context, h *host.Host, _ collectors.Settings) ([]evidence.Result, error) {
	switch h.OS {
	case "windows":
		return []evidence.Result{fromW32tm(ctx, h)}, nil
	case "darwin":
		return []evidence.Result{fromDarwin(ctx, h)}, nil
	case "linux":
	default:
		return collectors.ErrorResults(c, "time_sync: no reader for "+h.OS), nil
	}
	var tried []string
	if out, err := h.Run(ctx, "timedatectl", "show"); err == nil {
		if r, ok := fromTimedatectl(out); ok {
			return []evidence.Result{r}, nil
		}
		tried = append(tried, "timedatectl: no NTPSynchronized property")
	} else {
		tried = append(tried, err.Error())
	}
	if out, err := h.Run(ctx, "chronyc", "tracking"); err == nil {
		if r, ok := fromChrony(out); ok {
			return []evidence.Result{r}, nil
		}
		tried = append(tried, "chronyc tracking: no Leap status line")
	} else {
		tried = append(tried, err.Error())
	}
	if out, err := h.Run(ctx, "ntpq", "-pn"); err == nil {
		return []evidence.Result{fromNtpq(out)}, nil
	} else {
		tried = append(tried, err.Error())
	}
	return []evidence.Result{{Check: checkSynced, Status: evidence.Error, Reason: "no time service answered: " + strings.Join(tried, "; "),
		Observations: evidence.Observe(map[string]any{"tried": tried})}}, nil
}

func properties(out []byte, sep string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), sep); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

func fromTimedatectl(out []byte) (evidence.Result, bool) {
	p := properties(out, "=")
	synced, ok := p["NTPSynchronized"]
	if !ok {
		return evidence.Result{}, false
	}
	obs := map[string]string{"source": "timedatectl show", "NTP": p["NTP"], "NTPSynchronized": synced, "Timezone": p["Timezone"]}
	r := evidence.Result{Check: checkSynced, Observations: evidence.Observe(obs)}
	switch {
	case synced == "yes":
		r.Status, r.Reason = evidence.Pass, "systemd reports the clock synchronised (NTPSynchronized=yes)"
	case p["NTP"] != "yes":
		r.Status, r.Reason = evidence.Fail, "network time is off (NTP="+p["NTP"]+") and the clock is not synchronised"
	default:
		r.Status, r.Reason = evidence.Fail, "network time is on but the clock is not synchronised (NTPSynchronized=no)"
	}
	return r, true
}

func fromChrony(out []byte) (evidence.Result, bool) {
	p := properties(out, ":")
	leap, ok := p["Leap status"]
	if !ok {
		return evidence.Result{}, false
	}
	obs := map[string]string{"source": "chronyc tracking", "Reference ID": p["Reference ID"], "Stratum": p["Stratum"],
		"System time": p["System time"], "Leap status": leap, "Ref time (UTC)": p["Ref time (UTC)"]}
	r := evidence.Result{Check: checkSynced, Observations: evidence.Observe(obs)}
	ref := p["Reference ID"]
	if leap == "Not synchronised" || strings.HasPrefix(ref, "00000000") {
		r.Status, r.Reason = evidence.Fail, "chrony is not synchronised to any source (Leap status: "+leap+")"
		return r, true
	}
	r.Status, r.Reason = evidence.Pass, "chrony synchronised to "+ref+", stratum "+p["Stratum"]+", "+p["System time"]
	return r, true
}

func fromNtpq(out []byte) evidence.Result {
	var peers []string
	var sys string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if len(line) < 2 || strings.HasPrefix(line, "=") || strings.Contains(line, "remote") {
			continue
		}
		peers = append(peers, strings.TrimSpace(line))
		if f := strings.Fields(line[1:]); line[0] == '*' && len(f) > 0 {
			sys = f[0]
		}
	}
	r := evidence.Result{Check: checkSynced, Observations: evidence.Observe(map[string]any{"source": "ntpq -pn", "peers": peers})}
	switch {
	case sys != "":
		r.Status, r.Reason = evidence.Pass, "ntpd synchronised to system peer "+sys
	case len(peers) == 0:
		r.Status, r.Reason = evidence.Error, "ntpq listed no peers"
	default:
		r.Status, r.Reason = evidence.Fail, "ntpd has peers but no system peer (no '*'): not synchronised"
	}
	return r
}
