package timesync

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/capture"
	"github.com/annexa-dev/annexa/collectors/collectortest"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

func run(t *testing.T, outputs map[string]string) evidence.Result {
	t.Helper()
	rs, err := Collector{}.Collect(context.Background(), &host.Host{OS: "linux", Runner: &host.Replay{Dir: "testdata", Outputs: outputs}}, nil)
	require.NoError(t, err)
	rs = collectors.Complete(Collector{}, rs)
	require.Len(t, rs, 1)
	require.NotEmpty(t, rs[0].Reason)
	return rs[0]
}

func TestSources(t *testing.T) {
	for name, tc := range map[string]struct {
		outputs map[string]string
		want    evidence.Status
		reason  string
	}{
		"systemd synced":   {map[string]string{"timedatectl show": "timedatectl-synced.txt"}, evidence.Pass, "NTPSynchronized=yes"},
		"systemd unsynced": {map[string]string{"timedatectl show": "timedatectl-unsynced.txt"}, evidence.Fail, "network time is off"},
		// This machine: no systemd, chrony without a reachable server.
		"chrony unsynced (real)": {map[string]string{"timedatectl show": "!exit 1", "chronyc tracking": "chrony-unsynced.txt"}, evidence.Fail, "not synchronised"},
		"chrony synced":          {map[string]string{"chronyc tracking": "chrony-synced.txt"}, evidence.Pass, "CB00710F (foo.example.net), stratum 3"},
		"ntpd synced":            {map[string]string{"ntpq -pn": "ntpq-synced.txt"}, evidence.Pass, "system peer 192.0.2.10"},
		"nothing":                {map[string]string{}, evidence.Error, "no time service answered"},
	} {
		t.Run(name, func(t *testing.T) {
			r := run(t, tc.outputs)
			require.Equal(t, tc.want, r.Status, r.Reason)
			require.Contains(t, r.Reason, tc.reason)
		})
	}
}

// The collector also reads this machine and decides every check, or says why not.
func TestLive(t *testing.T) { collectortest.Live(t, Collector{}) }

func FuzzParse(f *testing.F) {
	f.Add([]byte("Leap status     : Normal\nReference ID    : X\n"))
	f.Add([]byte("NTPSynchronized=yes\n"))
	f.Add([]byte("*1.2.3.4 .GPS. 1 u\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, ok := fromChrony(b); ok {
			require.NoError(t, r.Validate())
		}
		if r, ok := fromTimedatectl(b); ok {
			require.NoError(t, r.Validate())
		}
		r := fromNtpq(b)
		require.NoError(t, r.Validate())
	})
}

func TestWindowsAndMacOS(t *testing.T) {
	run := func(osName string, out map[string]string) evidence.Result {
		h := &host.Host{OS: osName, Runner: &host.Replay{Dir: "testdata", Outputs: out},
			Clock: func() time.Time { return time.Date(2026, 11, 27, 5, 0, 0, 0, time.Local) }}
		rs, err := Collector{}.Collect(context.Background(), h, nil)
		require.NoError(t, err)
		return rs[0]
	}
	r := run("windows", map[string]string{"w32tm /query /status": "windows/w32tm-synced.txt"})
	require.Equal(t, evidence.Pass, r.Status)
	require.Equal(t, "Windows Time synchronised to DC01.corp.example.com (stratum 4 (secondary reference - syncd by (S)NTP))", r.Reason)
	r = run("windows", map[string]string{"w32tm /query /status": "windows/w32tm-cmos.txt"})
	require.Equal(t, "Windows Time uses no time source (Local CMOS Clock)", r.Reason)
	r = run("windows", map[string]string{})
	require.Equal(t, evidence.Error, r.Status)
	// A British machine ten days stale: day first, 24-hour clock.
	r = run("windows", map[string]string{"w32tm /query /status": "windows/w32tm-engb-stale.txt"})
	require.Equal(t, evidence.Fail, r.Status, r.Reason)
	require.Contains(t, r.Reason, "17/11/2026 04:12:09, over a day ago")
	// A French machine on its own clock: labels in French (" : "), read
	// by position, the CMOS clock named in French.
	r = run("windows", map[string]string{"w32tm /query /status": "windows/w32tm-fr-cmos.txt"})
	require.Equal(t, evidence.Fail, r.Status, r.Reason)
	require.Equal(t, "Windows Time uses no time source (Horloge CMOS locale)", r.Reason)
	require.Contains(t, string(r.Observations), "position (labels not in English)")

	r = run("darwin", map[string]string{"systemsetup -getusingnetworktime": "macos/using-on.txt", "systemsetup -getnetworktimeserver": "macos/server.txt"})
	require.Equal(t, "network time is on (server time.apple.com)", r.Reason)
	r = run("darwin", map[string]string{"systemsetup -getusingnetworktime": "macos/using-off.txt"})
	require.Equal(t, evidence.Fail, r.Status)
}

// The real Debian 12 machine's chrony, kept as a capture.
func TestCaptures(t *testing.T) {
	h := &host.Host{OS: "linux", Runner: &host.Replay{Dir: "testdata", Outputs: map[string]string{"timedatectl show": "!exit 1", "chronyc tracking": "chrony-unsynced.txt"}}, Clock: time.Now}
	collectortest.Capture(t, Collector{}, h, "testdata/captures/debian12-chrony-unsynced", collectortest.CaptureMeta{
		OSVersion: "Debian GNU/Linux 12 (bookworm), chrony 4.3", Locale: "C", Provenance: capture.Captured,
		Source: "a Debian 12 machine, chronyd started with -x and no reachable server"})
}
