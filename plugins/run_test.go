package plugins_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/plugins"
)

var bins string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "annexa-plugins")
	if err != nil {
		panic(err)
	}
	bins = dir
	for _, p := range []string{"./testdata/good", "./testdata/crash", "./testdata/hang", "./testdata/garbage", "./exec"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, filepath.Base(p)), p).CombinedOutput()
		if err != nil {
			fmt.Fprintln(os.Stderr, string(out))
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func spec(t *testing.T, name string, settings map[string]any) plugins.Spec {
	path := filepath.Join(bins, name)
	sum, err := plugins.FileSHA256(path)
	require.NoError(t, err)
	return plugins.Spec{Name: name, Path: path, SHA256: sum, Timeout: 10 * time.Second, Settings: settings}
}

func logger() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

func TestGoodPlugin(t *testing.T) {
	log, logs := logger()
	out, err := plugins.Run(context.Background(), spec(t, "good", map[string]any{"account": "123456789012"}), log)
	require.NoError(t, err)
	require.Equal(t, "demo", out.Description.Name)
	require.Len(t, out.Assets, 1)
	require.Equal(t, evidence.Asset("aws-account:123456789012"), out.Assets[0].Asset)
	require.Equal(t, evidence.Pass, out.Assets[0].Results[0].Status)
	// The plugin's own logs reach the agent's, tagged with the plugin.
	require.Contains(t, logs.String(), `msg="demo plugin collecting"`)
	require.Contains(t, logs.String(), "account=123456789012")
	require.Contains(t, logs.String(), "plugin=good")
}

func TestChecksumRefused(t *testing.T) {
	log, _ := logger()
	s := spec(t, "good", nil)
	s.SHA256 = "00" + s.SHA256[2:]
	_, err := plugins.Run(context.Background(), s, log)
	require.ErrorIs(t, err, plugins.ErrChecksum)
	s.SHA256 = "nope"
	_, err = plugins.Run(context.Background(), s, log)
	require.ErrorContains(t, err, "not a hex sha256")
}

func TestMisbehavingPlugins(t *testing.T) {
	log, _ := logger()
	for name, want := range map[string]string{
		"crash":   "plugin crash",
		"hang":    "plugin hang did not finish within 2s",
		"garbage": `plugin garbage returned garbage: check garbage.x: unknown status "probably"`,
	} {
		t.Run(name, func(t *testing.T) {
			s := spec(t, name, nil)
			s.Timeout = 2 * time.Second
			start := time.Now()
			out, err := plugins.Run(context.Background(), s, log)
			require.ErrorContains(t, err, want)
			require.Less(t, time.Since(start), 10*time.Second)
			if name != "hang" {
				// It described itself before failing: the agent can name the checks it owes.
				require.NotNil(t, out)
				require.NotEmpty(t, out.Description.Checks)
			}
		})
	}
}

func script(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "check.sh")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return p
}

func TestExecPlugin(t *testing.T) {
	log, _ := logger()
	settings := func(cmd string) map[string]any {
		return map[string]any{"name": "backups", "command": cmd, "timeout": "2s",
			"checks": []any{map[string]any{"id": "backups.last_success", "title": "recent backup", "controls": []any{"8.13"}}}}
	}
	good := script(t, `echo '{"results":[{"check":"backups.last_success","status":"pass","reason":"3h ago","observations":{"age_hours":3}}]}'`)
	out, err := plugins.Run(context.Background(), spec(t, "exec", settings(good)), log)
	require.NoError(t, err)
	require.Equal(t, "backups", out.Description.Name)
	require.Equal(t, evidence.Pass, out.Assets[0].Results[0].Status)
	require.JSONEq(t, `{"age_hours":3}`, string(out.Assets[0].Results[0].Observations))

	for name, tc := range map[string]struct{ body, want string }{
		"not json":         {`echo hello`, "printed no valid result JSON"},
		"fails":            {`echo broken >&2; exit 4`, "failed: exit status 4 broken"},
		"undeclared check": {`echo '{"results":[{"check":"backups.other","status":"pass","reason":"x"}]}'`, `undeclared check "backups.other"`},
		"missing check":    {`echo '{"results":[]}'`, "no result for check backups.last_success"},
		"bad status":       {`echo '{"results":[{"check":"backups.last_success","status":"ok","reason":"x"}]}'`, `unknown status "ok"`},
		"no reason":        {`echo '{"results":[{"check":"backups.last_success","status":"pass"}]}'`, "without a reason"},
		"too slow":         {`sleep 5`, "failed"},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := plugins.Run(context.Background(), spec(t, "exec", settings(script(t, tc.body))), log)
			require.NoError(t, err, "bad output is an error result, not a failed plugin")
			r := out.Assets[0].Results[0]
			require.Equal(t, evidence.Error, r.Status)
			require.Contains(t, r.Reason, tc.want)
		})
	}
	// Bad settings fail the plugin run with the reason.
	_, err = plugins.Run(context.Background(), spec(t, "exec", map[string]any{"name": "x"}), log)
	require.ErrorContains(t, err, "name, command and checks are required")
}
