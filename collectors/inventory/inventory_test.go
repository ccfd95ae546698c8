package inventory

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors/collectortest"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

// Replay trims the command line, so the format's final newline is not in the key.
const dpkgCmd = "dpkg-query -W -f=${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}"

func TestDebianFixture(t *testing.T) {
	h := &host.Host{Root: "testdata/debian12", OS: "linux", Runner: &host.Replay{Dir: "testdata/debian12", Outputs: map[string]string{dpkgCmd: "dpkg-query.txt"}}}
	rs, err := Collector{}.Collect(context.Background(), h, nil)
	require.NoError(t, err)
	require.Equal(t, evidence.Pass, rs[0].Status)
	require.Contains(t, rs[0].Reason, "debian 12")
	require.Equal(t, evidence.Pass, rs[1].Status)
	require.Equal(t, "40 packages installed (dpkg-query)", rs[1].Reason)
	var obs struct {
		Packages []Package `json:"packages"`
	}
	require.NoError(t, json.Unmarshal(rs[1].Observations, &obs))
	require.Equal(t, Package{Name: "adduser", Version: "3.134", Arch: "all"}, obs.Packages[0])

	// Truncation keeps the count honest.
	rs, _ = Collector{}.Collect(context.Background(), h, &Settings{MaxPackages: 5})
	require.Contains(t, string(rs[1].Observations), `"truncated_to":5`)
	require.Contains(t, string(rs[1].Observations), `"count":40`)
}

func TestNoPackageManagerIsError(t *testing.T) {
	h := &host.Host{Root: "testdata/debian12", OS: "linux", Runner: &host.Replay{Outputs: map[string]string{}}}
	rs, _ := Collector{}.Collect(context.Background(), h, nil)
	require.Equal(t, evidence.Error, rs[1].Status)
	require.Contains(t, rs[1].Reason, "no package database")
}

func TestEmptyListIsError(t *testing.T) {
	h := &host.Host{Root: "testdata/debian12", OS: "linux", Runner: &host.Replay{Dir: "testdata/debian12", Outputs: map[string]string{dpkgCmd: "etc/empty"}}}
	rs, _ := Collector{}.Collect(context.Background(), h, nil)
	require.Equal(t, evidence.Error, rs[1].Status)
	require.Contains(t, rs[1].Reason, "empty inventory is not evidence")
	pk, bad := parseDpkg(nil)
	require.Empty(t, pk)
	require.Zero(t, bad)
	pk, bad = parseDpkg([]byte("a\t1\tall\tii \nb\t2\tall\trc \n"))
	require.Len(t, pk, 1)
	require.Zero(t, bad)
	rpm, bad := parseRPM([]byte("bash\t0:5.2.26-3.fc40\tx86_64\ngpg-pubkey\t0:1-1\t(none)\n"))
	require.Equal(t, []Package{{Name: "bash", Version: "5.2.26-3.fc40", Arch: "x86_64"}}, rpm)
	require.Zero(t, bad)
	// Lines that are not the query's format are counted, not read as packages.
	pk, bad = parseDpkg([]byte("a\t1\tall\tii \n\x01\x02\tz z\t\n"))
	require.Len(t, pk, 1)
	require.Equal(t, 1, bad)
}

// The collector also reads this machine and decides every check, or says why not.
func TestLive(t *testing.T) { collectortest.Live(t, Collector{}) }

func FuzzParse(f *testing.F) {
	f.Add([]byte("adduser\t3.134\tall\tii \n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, _ := parseDpkg(b)
		r, _ := parseRPM(b)
		for _, p := range append(d, r...) {
			require.NotEmpty(t, p.Name)
		}
		parseOSRelease(b)
	})
}

func TestSoftwareMacOSAndWindows(t *testing.T) {
	for _, tc := range []struct{ os, cmd, file, reason string }{
		{"darwin", "system_profiler SPApplicationsDataType -json", "other/sp-applications.json", "2 packages installed (system_profiler SPApplicationsDataType -json)"},
		{"windows", "powershell -NoProfile -NonInteractive -Command " + psUninstall, "other/uninstall.json", "3 packages installed (Uninstall registry keys)"},
	} {
		h := &host.Host{OS: tc.os, Runner: &host.Replay{Dir: "testdata", Outputs: map[string]string{tc.cmd: tc.file}}}
		r := software(context.Background(), h, 1000)
		require.Equal(t, evidence.Pass, r.Status, r.Reason)
		require.Equal(t, tc.reason, r.Reason)
		h.Runner = &host.Replay{Dir: "testdata", Outputs: map[string]string{}}
		require.Equal(t, evidence.Error, software(context.Background(), h, 1000).Status)
	}
}
