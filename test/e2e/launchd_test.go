package e2e

import (
	"encoding/xml"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The launchd plist is well-formed and runs the agent the way the install
// script places it; the install script at least parses.
func TestLaunchdPlist(t *testing.T) {
	b, err := os.ReadFile("../../packaging/launchd/com.annexa.agent.plist")
	require.NoError(t, err)
	dec := xml.NewDecoder(strings.NewReader(string(b)))
	var strs []string
	for {
		tok, err := dec.Token()
		if err != nil {
			require.EqualError(t, err, "EOF", "plist is not well-formed XML")
			break
		}
		if cd, ok := tok.(xml.CharData); ok && strings.TrimSpace(string(cd)) != "" {
			strs = append(strs, strings.TrimSpace(string(cd)))
		}
	}
	joined := strings.Join(strs, " ")
	require.Contains(t, joined, "Label com.annexa.agent")
	require.Contains(t, joined, "/usr/local/bin/annexa-agent run --config /etc/annexa/agent.yaml --state /var/lib/annexa")
	script, err := os.ReadFile("../../packaging/launchd/install-macos.sh")
	require.NoError(t, err)
	require.Contains(t, string(script), "/usr/local/bin/annexa-agent")
	require.Contains(t, string(script), "/Library/LaunchDaemons/com.annexa.agent.plist")
	out, err := exec.Command("sh", "-n", "../../packaging/launchd/install-macos.sh").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, s := range []string{"agent-postinstall.sh", "agent-preremove.sh", "agent-postremove.sh", "server-postinstall.sh", "server-preremove.sh", "server-postremove.sh"} {
		out, err := exec.Command("sh", "-n", "../../packaging/scripts/"+s).CombinedOutput()
		require.NoError(t, err, s+": "+string(out))
	}
}
