package all_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors/capture"
	"github.com/annexa-dev/annexa/collectors/collectortest"
)

// captureDirs are every collector's captures kept as fixtures.
func captureDirs(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob("../*/testdata/captures/*")
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	return dirs
}

// Every capture kept as a fixture replays, on this machine whatever OS it
// was taken on, to the verdicts in its expected.json, and says where its
// outputs come from.
func TestCapturesReplay(t *testing.T) {
	oses := map[string]bool{}
	for _, dir := range captureDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			_, m, err := capture.Open(dir)
			require.NoError(t, err)
			oses[m.OS] = true
			switch m.Provenance {
			case capture.Captured, capture.Published, capture.Composed:
				assert.NotEmpty(t, m.Source, "a kept capture says where it comes from")
			case capture.Mixed:
				for _, c := range m.Commands {
					if !c.NotFound {
						assert.NotEmpty(t, c.Source, "%s: a mixed capture cites each output", c.Line)
					}
				}
			default:
				t.Errorf("provenance %q", m.Provenance)
			}
			got := collectortest.ReplayCapture(t, dir)
			for check, w := range collectortest.ReadExpected(t, dir) {
				assert.Equal(t, w.Status, got[check].Status, "%s: %s", check, got[check].Reason)
				assert.Equal(t, w.Reason, got[check].Reason, check)
			}
		})
	}
	for _, os := range []string{"linux", "darwin", "windows"} {
		assert.True(t, oses[os], "a %s capture replays here", os)
	}
}

// The collectors' README says, for each collector and platform, how many
// real captures (captured, or published by someone who ran the commands)
// its parsers are tested on: the count the captures give.
func TestReadmeCountsRealCaptures(t *testing.T) {
	counts := map[string]map[string]int{} // collector → os → real captures
	for _, dir := range captureDirs(t) {
		_, m, err := capture.Open(dir)
		require.NoError(t, err)
		if !m.Real() {
			continue
		}
		for _, c := range m.Collectors {
			if counts[c] == nil {
				counts[c] = map[string]int{}
			}
			counts[c][m.OS]++
		}
	}
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|.*\\| ([0-9]+) / ([0-9]+) / ([0-9]+) \\|$")
	seen := map[string]bool{}
	for _, mm := range row.FindAllStringSubmatch(string(readme), -1) {
		name := mm[1]
		seen[name] = true
		want := fmt.Sprintf("%d / %d / %d", counts[name]["linux"], counts[name]["darwin"], counts[name]["windows"])
		assert.Equal(t, want, strings.Join(mm[2:], " / "), "README row of %s: real captures Linux / macOS / Windows", name)
	}
	var names []string
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		assert.True(t, seen[n], "README has no real-captures count for %s", n)
	}
	assert.NotEmpty(t, seen, "the README table has a real-captures column")
}
