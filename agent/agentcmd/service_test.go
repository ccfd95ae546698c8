package agentcmd

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// The unit the packages install is the one `service install` renders, for
// the packaged paths: one template, no drift. ANNEXA_UPDATE=1 rewrites it.
func TestPackagedUnitIsRendered(t *testing.T) {
	want, err := SystemdUnit("/usr/bin/annexa-agent", "/etc/annexa/agent.yaml", "/var/lib/annexa")
	require.NoError(t, err)
	const path = "../../packaging/systemd/annexa-agent.service"
	if os.Getenv("ANNEXA_UPDATE") == "1" {
		require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
	}
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, want, string(got), "run ANNEXA_UPDATE=1 go test ./agent/agentcmd to regenerate")
	for _, h := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/annexa", "ProtectHome=read-only", "PrivateTmp=yes", "Restart=on-failure"} {
		require.Contains(t, want, h+"\n")
	}
}
