package config

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors"
	_ "github.com/annexa-dev/annexa/collectors/all"
)

var known = Known{"inventory": nil, "ssh": nil}

func TestSampleConfigLoads(t *testing.T) {
	// The sample names every built-in collector the agent has, with the
	// settings each takes (decoded strictly into their structs).
	c, err := Load("../../configs/agent.yaml", collectors.SettingsFactories())
	require.NoError(t, err)
	require.Equal(t, 6*time.Hour, c.ScheduleFor("ssh").Interval.Std())
	require.Equal(t, 24*time.Hour, c.ScheduleFor("inventory").Interval.Std())
	require.Equal(t, 10*time.Minute, c.ScheduleFor("inventory").Jitter.Std())
	require.True(t, c.Enabled("ssh"))
}

func TestEmptyConfigIsDefaults(t *testing.T) {
	c, err := Parse([]byte(""), known)
	require.NoError(t, err)
	require.Equal(t, Default().Shipping, c.Shipping)
	require.True(t, c.Enabled("inventory"))
}

func TestErrorsNameKeyAndLine(t *testing.T) {
	cases := map[string]string{
		"servr: https://x\n":                                    "line 1: unknown key servr",
		"shipping:\n  batch: 5\n":                               "line 2: unknown key batch",
		"collectors:\n  ssh:\n    interval: soon\n":             `line 3: "soon" is not a duration`,
		"collectors:\n  sssh:\n    enabled: false\n":            "line 3: collectors.sssh: unknown collector",
		"outbox:\n  limit: lots\n":                              `line 2: "lots" is not a size`,
		"log_level: loud\n":                                     `log_level: "loud"`,
		"concurrency: 0\n":                                      "concurrency: 0",
		"server: ftp://x\n":                                     `"ftp://x" is not an http(s) URL`,
		"collectors:\n  ssh:\n    interval: 10s\n":              "collectors.ssh.interval: under a minute",
		"collectors:\n  ssh:\n    settings: {a: 1}\n    x: 1\n": "line 4: unknown key x",
		"server: [\n":                                           "line 1",
	}
	for in, want := range cases {
		_, err := Parse([]byte(in), known)
		require.ErrorContains(t, err, want, "%q", in)
	}
}

func TestSizesAndDurations(t *testing.T) {
	c, err := Parse([]byte("outbox:\n  limit: 64MiB\ndefaults:\n  interval: 7d\n"), known)
	require.NoError(t, err)
	require.Equal(t, Size(64<<20), c.Outbox.Limit)
	require.Equal(t, 7*24*time.Hour, c.Defaults.Interval.Std())
	_, err = os.Stat("../../configs/agent.yaml")
	require.NoError(t, err)
}

func TestPlugins(t *testing.T) {
	sum := "3f5c0000000000000000000000000000000000000000000000000000000000aa"
	c, err := Parse([]byte("plugins:\n  - name: backups\n    path: /usr/lib/annexa/annexa-plugin-exec\n    sha256: "+sum+"\n    interval: 6h\n    settings: {command: /bin/true}\n"), known)
	require.NoError(t, err)
	require.Len(t, c.Plugins, 1)
	require.Equal(t, 6*time.Hour, c.PluginSchedule(c.Plugins[0]).Interval.Std())
	require.Equal(t, "/bin/true", c.Plugins[0].Settings["command"])
	for in, want := range map[string]string{
		"plugins:\n  - name: ssh\n    path: /x\n    sha256: " + sum + "\n":                                       "is a built-in collector's name",
		"plugins:\n  - name: b\n    path: x\n    sha256: " + sum + "\n":                                          "want an absolute path",
		"plugins:\n  - name: b\n    path: /x\n    sha256: abc\n":                                                 "line 2: plugins.b.sha256",
		"plugins:\n  - name: b\n    path: /x\n    sha256: " + sum + "\n    colour: red\n":                        "line 5: unknown key colour",
		"plugins:\n  - {name: b, path: /x, sha256: " + sum + "}\n  - {name: b, path: /y, sha256: " + sum + "}\n": "listed twice",
	} {
		_, err := Parse([]byte(in), known)
		require.ErrorContains(t, err, want, in)
	}
}
