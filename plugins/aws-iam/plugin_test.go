package main

import (
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/configs"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/plugins"
)

// The checks the plugin declares carry the controls of the shipped mapping.
func TestChecksMatchMapping(t *testing.T) {
	cat, err := configs.Catalog()
	require.NoError(t, err)
	m, err := configs.Mapping(cat, "")
	require.NoError(t, err)
	for _, c := range checks {
		got := append([]string(nil), m.Controls(c.ID)...)
		want := append([]string(nil), c.Controls...)
		sort.Strings(got)
		sort.Strings(want)
		require.Equal(t, want, got, c.ID)
	}
}

// The real binary, started by the agent's plugin runner (pinned checksum,
// go-plugin handshake, log forwarding), audits the fake account through the
// real SDK, its credentials from the environment it inherits.
func TestBinaryThroughTheRunner(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin")
	}
	bin := filepath.Join(t.TempDir(), "annexa-plugin-aws-iam")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	sum, err := plugins.FileSHA256(bin)
	require.NoError(t, err)

	now := time.Now()
	f := newFakeAWS(t, now)
	a := cleanAccount(t, "111122223333")
	a.ReportReadyAfter = 2
	f.addAccount("AKIABINARY", a)
	testEnv(t, "AKIABINARY")

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	outcome, err := plugins.Run(ctx, plugins.Spec{Name: "aws_iam", Path: bin, SHA256: sum, Timeout: 30 * time.Second,
		Settings: fakeSettings(f, nil)}, log)
	require.NoError(t, err, logs.String())
	require.Equal(t, "aws_iam", outcome.Description.Name)
	require.Len(t, outcome.Assets, 1)
	require.Equal(t, evidence.Asset("aws-account:111122223333"), outcome.Assets[0].Asset)
	for _, r := range outcome.Assets[0].Results {
		require.Equal(t, evidence.Pass, r.Status, "%s: %s", r.Check, r.Reason)
	}
	require.Contains(t, logs.String(), "auditing account")

	// Unknown credentials: the run fails with the reason, which the agent
	// turns into an error result naming the plugin.
	testEnv(t, "AKIANOBODY")
	_, err = plugins.Run(ctx, plugins.Spec{Name: "aws_iam", Path: bin, SHA256: sum, Timeout: 30 * time.Second,
		Settings: fakeSettings(f, map[string]any{"max_attempts": 1})}, log)
	require.ErrorContains(t, err, "InvalidClientTokenId")
}
