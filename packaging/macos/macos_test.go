// Package macos holds the agent's macOS installer package build, its
// scripts and the configuration profiles an MDM pushes; this test checks
// on Linux that each parses as macOS will parse it.
package macos

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// The profiles and the launchd daemon are property lists Python's
// plistlib (the same XML rules as macOS's) reads, with the payload types
// an MDM expects.
func TestPlistsParse(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: plistlib checks skipped")
	}
	script := `
import plistlib, sys
def load(f):
    with open(f, "rb") as fh:
        return plistlib.load(fh)
p = load("annexa-agent.mobileconfig")
assert p["PayloadType"] == "Configuration", p["PayloadType"]
assert [c["PayloadType"] for c in p["PayloadContent"]] == ["com.annexa.agent"]
q = load("annexa-agent-pppc.mobileconfig")
svc = q["PayloadContent"][0]
assert svc["PayloadType"] == "com.apple.TCC.configuration-profile-policy"
paths = [e["Identifier"] for e in svc["Services"]["SystemPolicyAllFiles"]]
assert paths == ["/usr/local/bin/annexa-agent", "/usr/local/bin/annexa-plugin-host"], paths
assert all(e["Authorization"] == "Allow" for e in svc["Services"]["SystemPolicyAllFiles"])
d = load("../launchd/com.annexa.agent.plist")
assert d["Label"] == "com.annexa.agent"
assert d["ProgramArguments"][:2] == ["/usr/local/bin/annexa-agent", "run"], d["ProgramArguments"]
uuids = [p["PayloadUUID"], q["PayloadUUID"]] + [c["PayloadUUID"] for c in p["PayloadContent"] + q["PayloadContent"]]
assert len(set(uuids)) == len(uuids), "payload UUIDs must differ"
print("ok")
`
	out, err := exec.Command(py, "-c", script).CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "ok")
}

// The package's scripts are POSIX shell (sh -n), and the installed paths
// they use are the ones the launchd daemon runs.
func TestScriptsParse(t *testing.T) {
	for _, f := range []string{"build-pkg.sh", "scripts/preinstall", "scripts/postinstall", "../launchd/install-macos.sh"} {
		out, err := exec.Command("sh", "-n", f).CombinedOutput()
		require.NoError(t, err, "%s: %s", f, out)
	}
}
