package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"howett.net/plist"

	"github.com/annexa-dev/annexa/collectors"
)

var managedKnown = Known{"inventory": nil, "ssh": nil, "screen_lock": nil, "patch_level": nil}

func TestReadManagedXMLAndBinary(t *testing.T) {
	var got []*Managed
	for _, f := range []string{"com.annexa.agent.plist", "com.annexa.agent.binary.plist"} {
		m, err := ReadManaged(filepath.Join("testdata/managed", f))
		require.NoError(t, err, f)
		require.NotNil(t, m)
		assert.Equal(t, "anx_fromTheProfile", m.EnrollmentToken)
		assert.Contains(t, m.CACertificate, "BEGIN CERTIFICATE")
		assert.NotContains(t, m.Settings, "PayloadUUID", "the profile's bookkeeping is not a setting")
		assert.NotContains(t, m.Settings, ManagedEnrollmentToken)
		assert.Equal(t, "https://annexa.example.com:8443", m.Settings["server"])
		m.Path = ""
		got = append(got, m)
	}
	assert.Equal(t, got[0], got[1], "XML and binary plists read the same")
}

func TestReadManagedRefusesUnknownKeysAndBadValues(t *testing.T) {
	_, err := ReadManaged("testdata/managed/unknown-key.plist")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown key "log_levle"`)
	assert.Contains(t, err.Error(), "log_level", "it lists the keys it knows")

	dir := t.TempDir()
	for name, doc := range map[string]map[string]any{
		"token not a string": {"enrollment_token": 42},
		"ca not PEM":         {"ca_certificate": "just text"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".plist")
		b, err := plist.MarshalIndent(doc, plist.XMLFormat, "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, b, 0o644))
		_, err = ReadManaged(path)
		require.Error(t, err, name)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk.plist"), []byte("not a plist"), 0o644))
	_, err = ReadManaged(filepath.Join(dir, "junk.plist"))
	require.ErrorContains(t, err, "not a property list")

	m, err := ReadManaged(filepath.Join(dir, "absent.plist"))
	require.NoError(t, err)
	assert.Nil(t, m, "no profile installed")
}

// The profile lies over agent.yaml: its scalars replace the file's, its
// maps merge key by key, and each setting says where it came from.
func TestLoadLayered(t *testing.T) {
	file := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`log_level: warn
state_dir: /var/lib/annexa
shipping:
  interval: 5m
  batch_size: 100
collectors:
  ssh:
    enabled: false
  inventory:
    interval: 12h
`), 0o644))
	m, err := ReadManaged("testdata/managed/com.annexa.agent.plist")
	require.NoError(t, err)
	c, src, err := LoadLayered(file, m, managedKnown)
	require.NoError(t, err)
	assert.Equal(t, "debug", c.LogLevel, "the profile's value wins")
	assert.Equal(t, "https://annexa.example.com:8443", c.Server)
	assert.Equal(t, 3, c.Concurrency)
	assert.Equal(t, "/var/lib/annexa", c.StateDir, "the file's, the profile has none")
	assert.Equal(t, time.Minute, c.Shipping.Interval.Std(), "the profile's key of a map")
	assert.Equal(t, 100, c.Shipping.BatchSize, "the file's key of the same map")
	assert.False(t, c.Collectors["ssh"].On(), "the file disabled ssh; the profile only changed its interval")
	assert.Equal(t, 2*time.Hour, c.Collectors["ssh"].Interval.Std())
	assert.False(t, c.Collectors["screen_lock"].On())
	assert.Equal(t, 12*time.Hour, c.Collectors["inventory"].Interval.Std())

	assert.Equal(t, SourceManaged, src["log_level"])
	assert.Equal(t, SourceManaged, src["server"])
	assert.Equal(t, SourceManaged, src["collectors.ssh"])
	assert.Equal(t, SourceFile, src["state_dir"])
	assert.Equal(t, SourceFile, src["collectors.inventory"])
	assert.Equal(t, SourceDefault, src["outbox"])

	// Without a profile: the file alone, its errors with its own lines.
	c, src, err = LoadLayered(file, nil, managedKnown)
	require.NoError(t, err)
	assert.Equal(t, "warn", c.LogLevel)
	assert.Equal(t, SourceFile, src["log_level"])

	// A profile's bad value is an error that names the profile.
	bad := &Managed{Path: "/Library/Managed Preferences/com.annexa.agent.plist", Settings: map[string]any{"log_level": "loud"}}
	_, _, err = LoadLayered(file, bad, managedKnown)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "com.annexa.agent.plist")
	assert.Contains(t, err.Error(), "log_level")

	// A profile and no file.
	c, src, err = LoadLayered("", m, managedKnown)
	require.NoError(t, err)
	assert.Equal(t, "debug", c.LogLevel)
	assert.Equal(t, SourceDefault, src["state_dir"])
}

// The profile template that ships (packaging/macos) holds only keys the
// agent reads, and the agent accepts every value in it.
func TestShippedProfileMatchesWhatTheAgentReads(t *testing.T) {
	b, err := os.ReadFile("../../packaging/macos/annexa-agent.mobileconfig")
	require.NoError(t, err)
	var profile struct {
		PayloadContent []map[string]any
	}
	_, err = plist.Unmarshal(b, &profile)
	require.NoError(t, err)
	var payload map[string]any
	for _, p := range profile.PayloadContent {
		if p["PayloadType"] == "com.annexa.agent" {
			payload = p
		}
	}
	require.NotNil(t, payload, "no com.annexa.agent payload")
	// What macOS writes to Managed Preferences is the payload's dictionary.
	path := filepath.Join(t.TempDir(), "com.annexa.agent.plist")
	out, err := plist.Marshal(payload, plist.BinaryFormat)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, out, 0o644))
	m, err := ReadManaged(path)
	require.NoError(t, err)
	assert.NotEmpty(t, m.EnrollmentToken)
	assert.NotEmpty(t, m.CACertificate)
	for k := range payload {
		if strings.HasPrefix(k, "Payload") || k == ManagedEnrollmentToken || k == ManagedCACertificate {
			continue
		}
		assert.Contains(t, FileKeys(), k)
	}
	c, _, err := LoadLayered("", m, collectors.SettingsFactories())
	require.NoError(t, err, "the real collectors accept the template's settings")
	assert.Equal(t, "https://annexa.example.com:8443", c.Server)
}
