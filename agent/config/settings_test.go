package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors"
	_ "github.com/annexa-dev/annexa/collectors/all"
)

// Every built-in collector's settings are refused at load when a key is
// unknown or a value has the wrong shape, with the collector, the key and
// the line named: the fleet-wide typo fails on the first machine.
func TestEveryCollectorRefusesBadSettings(t *testing.T) {
	known := Known(collectors.SettingsFactories())
	names := known.names()
	configurable := 0
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if known[name] == nil {
				_, err := Parse([]byte("collectors:\n  "+name+":\n    settings:\n      anything: 1\n"), known)
				require.ErrorContains(t, err, "line 4: collectors."+name+".settings: "+name+" takes no settings")
				return
			}
			configurable++
			// Line 5 is the key in each document below.
			doc := func(key, value string) []byte {
				return fmt.Appendf(nil, "log_level: info\ncollectors:\n  %s:\n    settings:\n      %s: %s\n", name, key, value)
			}
			_, err := Parse(doc("no_such_setting", "1"), known)
			require.ErrorContains(t, err, "line 5: collectors."+name+".settings.no_such_setting: unknown key (takes ")

			v := reflect.ValueOf(known[name]()).Elem()
			for i := 0; i < v.NumField(); i++ {
				key, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
				// A mapping is the wrong shape for every setting.
				_, err := Parse(doc(key, "{oops: 1}"), known)
				require.ErrorContains(t, err, "line 5: collectors."+name+".settings."+key+": want ", "field %s", key)
			}
			// The defaults themselves are valid.
			require.NoError(t, known[name]().Validate())
		})
	}
	assert.GreaterOrEqual(t, configurable, 8, "the collectors that take settings were all tried")
}

// What a new user tried: each used to run on the defaults, exit 0.
func TestSettingsMistakesAreRefused(t *testing.T) {
	known := collectors.SettingsFactories()
	for in, want := range map[string]string{
		// A typo in a key.
		"collectors:\n  screen_lock:\n    settings:\n      max_idle_minute: 5\n": "line 4: collectors.screen_lock.settings.max_idle_minute: unknown key (takes max_idle_minutes)",
		// Words for a duration.
		"collectors:\n  access_logs:\n    settings:\n      lookback: 2 days\n": `line 4: collectors.access_logs.settings.lookback: "2 days" is not a duration`,
		// A string where a list is wanted: it changed a verdict.
		"collectors:\n  accounts:\n    settings:\n      allowed_admins: alice\n": `line 4: collectors.accounts.settings.allowed_admins: want a list of strings (e.g. [a, b]), got "alice"`,
		// A number where words are.
		"collectors:\n  antimalware:\n    settings:\n      max_definitions_age_days: three\n": `line 4: collectors.antimalware.settings.max_definitions_age_days: want a whole number, got "three"`,
		// Zero where zero means nothing sensible: refused, not defaulted.
		"collectors:\n  screen_lock:\n    settings:\n      max_idle_minutes: 0\n":     "collectors.screen_lock.settings: max_idle_minutes: 0, want 1 to 1440",
		"collectors:\n  access_logs:\n    settings:\n      brute_force_failures: 0\n": "brute_force_failures: 0, want at least 1",
		// A key given twice.
		"collectors:\n  ssh:\n    settings:\n      config: /a\n      config: /b\n": "collectors.ssh",
	} {
		_, err := Parse([]byte(in), known)
		require.ErrorContains(t, err, want, "%q", in)
	}
}

// A zero that means something is honoured, never replaced by the default.
func TestZeroSettingsAreHonoured(t *testing.T) {
	c, err := Parse([]byte("collectors:\n  patch_level:\n    settings:\n      max_pending: 0\n      max_days: 0\n"), collectors.SettingsFactories())
	require.NoError(t, err)
	got := reflect.ValueOf(c.Settings("patch_level")).Elem()
	assert.Equal(t, int64(0), got.FieldByName("MaxPending").Int())
	assert.Equal(t, int64(0), got.FieldByName("MaxDays").Int(), "max_days: 0 means today, not the default 30")

	c, err = Parse([]byte("collectors:\n  access_logs:\n    settings:\n      lookback: 7d\n      privileged_users: [alice, bob]\n"), collectors.SettingsFactories())
	require.NoError(t, err)
	al := reflect.ValueOf(c.Settings("access_logs")).Elem()
	assert.Equal(t, int64(7*24*time.Hour), al.FieldByName("Lookback").Int())
	assert.Equal(t, int64(10), al.FieldByName("BruteForceFailures").Int(), "keys not given keep their defaults")
	users := al.FieldByName("PrivilegedUsers").Interface().([]string)
	sort.Strings(users)
	assert.Equal(t, []string{"alice", "bob"}, users)
	assert.Nil(t, c.Settings("ssh"), "no settings block: the collector runs on its defaults")
}
