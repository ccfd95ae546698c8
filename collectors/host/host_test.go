package host_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors/host"
)

// Exit codes decide verdicts (dnf check-update's 100, reg query's 1), so
// they are read as numbers: the text "exit status 1" is also a prefix of
// "exit status 10" and "exit status 100".
func TestExecRunnerExitCode(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	ctx := context.Background()
	for _, code := range []int{1, 10, 100} {
		_, err := host.ExecRunner{}.Run(ctx, "sh", "-c", "echo oops >&2; exit "+strconv.Itoa(code))
		require.Error(t, err)
		got, ok := host.ExitCode(err)
		require.True(t, ok, "exit %d: %v", code, err)
		assert.Equal(t, code, got)
		assert.Equal(t, code == 1, host.IsExit(err, 1), "code %d", code)
		var ee *host.ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, "oops", ee.Stderr)
	}
	_, err := host.ExecRunner{}.Run(ctx, "annexa-no-such-command")
	require.ErrorIs(t, err, host.ErrNotFound)
	_, ok := host.ExitCode(err)
	assert.False(t, ok, "a missing command has no exit code")
}

func TestReplayExitCode(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "out.txt"), []byte("pkg 1.0\n"), 0o644))
	r := &host.Replay{Dir: dir, Outputs: map[string]string{
		"dnf check-update": "!exit 100 out.txt",
		"reg query X":      "!exit 1",
		"bad":              "!exit one",
	}}
	out, err := r.Run(context.Background(), "dnf", "check-update")
	assert.Equal(t, "pkg 1.0\n", string(out))
	assert.True(t, host.IsExit(err, 100))
	assert.False(t, host.IsExit(err, 1))
	_, err = r.Run(context.Background(), "reg", "query", "X")
	assert.True(t, host.IsExit(err, 1))
	_, err = r.Run(context.Background(), "bad")
	_, ok := host.ExitCode(err)
	assert.False(t, ok, "a malformed replay entry is not an exit code: %v", err)
	_, err = r.Run(context.Background(), "missing")
	assert.ErrorIs(t, err, host.ErrNotFound)
}
