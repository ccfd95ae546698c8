package firewall

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/capture"
	"github.com/annexa-dev/annexa/collectors/collectortest"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

func run(t *testing.T, outputs map[string]string) map[string]evidence.Result {
	t.Helper()
	return collectortest.Collect(t, Collector{}, &host.Host{OS: "linux", Runner: &host.Replay{Dir: "testdata", Outputs: outputs}}, nil)
}

func TestRulesets(t *testing.T) {
	for name, tc := range map[string]struct {
		outputs         map[string]string
		enabled, denies evidence.Status
	}{
		"nft default deny":        {map[string]string{"nft -j list ruleset": "nft-default-deny.json"}, evidence.Pass, evidence.Pass},
		"nft as Debian ships it":  {map[string]string{"nft -j list ruleset": "nft-debian-default.json"}, evidence.Fail, evidence.Fail},
		"nft empty":               {map[string]string{"nft -j list ruleset": "nft-empty.json"}, evidence.Fail, evidence.Fail},
		"iptables default deny":   {map[string]string{"iptables-save": "iptables-default-deny.txt"}, evidence.Pass, evidence.Pass},
		"iptables nothing loaded": {map[string]string{"iptables-save": "iptables-empty.txt"}, evidence.Fail, evidence.Fail},
		"no tools, or not root":   {map[string]string{"nft -j list ruleset": "!exit 1"}, evidence.Error, evidence.Error},
	} {
		t.Run(name, func(t *testing.T) {
			rs := run(t, tc.outputs)
			require.Equal(t, tc.enabled, rs[checkEnabled].Status, rs[checkEnabled].Reason)
			require.Equal(t, tc.denies, rs[checkDeny].Status, rs[checkDeny].Reason)
		})
	}
	rs := run(t, map[string]string{"nft -j list ruleset": "nft-default-deny.json"})
	require.Equal(t, "inbound denied by default in inet filter input", rs[checkDeny].Reason)
}

// Without a ruleset the result names the real cause: which tool is
// missing, or which call was denied and what it said; never a guess.
func TestNoRulesetCause(t *testing.T) {
	for name, tc := range map[string]struct {
		outputs map[string]string
		reason  string
	}{
		"neither tool installed (running as root)": {nil, "cannot read the firewall rules: neither nft nor iptables-save is installed"},
		"nft missing, iptables-save denied": {map[string]string{"iptables-save": "!exit 1 :iptables-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)"},
			"cannot read the firewall rules: nft is not installed; iptables-save was denied (exit 1: iptables-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)): reading the ruleset needs CAP_NET_ADMIN"},
		"nft denied, iptables-save missing": {map[string]string{"nft -j list ruleset": "!exit 1 :netlink: Error: cache initialization failed: Operation not permitted"},
			"cannot read the firewall rules: nft -j list ruleset was denied (exit 1: netlink: Error: cache initialization failed: Operation not permitted): reading the ruleset needs CAP_NET_ADMIN; iptables-save is not installed"},
		"nft fails otherwise": {map[string]string{"nft -j list ruleset": "!exit 1 :Error: syntax error, unexpected junk"},
			"cannot read the firewall rules: nft -j list ruleset exited 1: Error: syntax error, unexpected junk; iptables-save is not installed"},
	} {
		rs := run(t, tc.outputs)
		for _, id := range []string{checkEnabled, checkDeny} {
			require.Equal(t, evidence.Error, rs[id].Status, name)
			require.Equal(t, tc.reason, rs[id].Reason, name)
			require.NotContains(t, rs[id].Reason, "root needed", name)
		}
	}
}

func TestFinalDropRule(t *testing.T) {
	// Policy accept, but the chain ends in an unconditional drop.
	b := []byte(`{"nftables":[{"chain":{"family":"inet","table":"f","name":"in","hook":"input","policy":"accept"}},
	{"rule":{"family":"inet","table":"f","chain":"in","expr":[{"match":{"op":"==","left":{"meta":{"key":"iifname"}},"right":"lo"}},{"accept":null}]}},
	{"rule":{"family":"inet","table":"f","chain":"in","expr":[{"counter":{"packets":0,"bytes":0}},{"drop":null}]}}]}`)
	chains, err := parseNft(b)
	require.NoError(t, err)
	rs := decide("nft", chains)
	require.Equal(t, evidence.Pass, rs[1].Status, rs[1].Reason)
	_, err = parseNft([]byte("not json"))
	require.Error(t, err)
}

// The collector also reads this machine and decides every check, or says why not.
func TestLive(t *testing.T) { collectortest.Live(t, Collector{}) }

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("testdata/nft-default-deny.json")
	f.Add(b)
	i, _ := os.ReadFile("testdata/iptables-default-deny.txt")
	f.Add(i)
	f.Fuzz(func(t *testing.T, data []byte) {
		if chains, err := parseNft(data); err == nil {
			for _, r := range decide("nft", chains) {
				require.NoError(t, r.Validate())
			}
		}
		for _, r := range decide("iptables", parseIptables(data)) {
			require.NoError(t, r.Validate())
		}
	})
}

func otherOS(t *testing.T, osName string, outputs map[string]string) (evidence.Result, evidence.Result) {
	t.Helper()
	h := &host.Host{OS: osName, Runner: &host.Replay{Dir: "testdata", Outputs: outputs}}
	rs, err := Collector{}.Collect(context.Background(), h, nil)
	require.NoError(t, err)
	rs = collectors.Complete(Collector{}, rs)
	return rs[0], rs[1]
}

func TestMacOSApplicationFirewall(t *testing.T) {
	out := map[string]string{
		socketfilterfw + " --getglobalstate": "macos/globalstate-on.txt",
		socketfilterfw + " --getblockall":    "macos/blockall-off.txt",
		socketfilterfw + " --getstealthmode": "macos/stealth-on.txt",
		socketfilterfw + " --getallowsigned": "macos/allowsigned.txt",
	}
	en, deny := otherOS(t, "darwin", out)
	require.Equal(t, evidence.Pass, en.Status)
	require.Equal(t, evidence.Fail, deny.Status)
	require.Contains(t, deny.Reason, "allowed to any app the user approves")

	out[socketfilterfw+" --getblockall"] = "macos/blockall-on.txt"
	_, deny = otherOS(t, "darwin", out)
	require.Equal(t, evidence.Pass, deny.Status)

	out[socketfilterfw+" --getglobalstate"] = "macos/globalstate-off.txt"
	en, deny = otherOS(t, "darwin", out)
	require.Equal(t, "the application firewall is off", en.Reason)
	require.Equal(t, evidence.Fail, deny.Status)

	en, _ = otherOS(t, "darwin", map[string]string{})
	require.Equal(t, evidence.Error, en.Status)
}

func TestWindowsProfiles(t *testing.T) {
	cmd := "powershell -NoProfile -NonInteractive -Command " + psProfiles
	en, deny := otherOS(t, "windows", map[string]string{cmd: "windows/profiles-on.json"})
	require.Equal(t, "Windows Defender Firewall is on for all 3 profiles", en.Reason)
	require.Equal(t, evidence.Pass, deny.Status)

	en, deny = otherOS(t, "windows", map[string]string{cmd: "windows/profiles-mixed.json"})
	require.Equal(t, "Windows Defender Firewall is off for: Domain", en.Reason)
	require.Equal(t, evidence.Fail, deny.Status)

	en, _ = otherOS(t, "windows", map[string]string{cmd: "macos/stealth-on.txt"})
	require.Equal(t, evidence.Error, en.Status)
	require.Contains(t, en.Reason, "not JSON")
}

// The real Debian 12 machine's ruleset, kept as a capture.
func TestCaptures(t *testing.T) {
	h := &host.Host{OS: "linux", Runner: &host.Replay{Dir: "testdata", Outputs: map[string]string{"nft -j list ruleset": "nft-debian-default.json"}}, Clock: time.Now}
	collectortest.Capture(t, Collector{}, h, "testdata/captures/debian12-nft-default", collectortest.CaptureMeta{
		OSVersion: "Debian GNU/Linux 12 (bookworm), nftables 1.0.6", Locale: "C", Provenance: capture.Captured,
		Source: "a Debian 12 machine's ruleset as Debian ships it"})
}
