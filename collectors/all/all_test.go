package all_test

import (
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors"
	_ "github.com/annexa-dev/annexa/collectors/all"
	"github.com/annexa-dev/annexa/configs"
)

// Every check a built-in collector declares is in the shipped mapping, with
// the same controls and freshness: what the agent says a check is for and
// what the server rolls it up under cannot drift apart.
func TestCollectorsMatchMapping(t *testing.T) {
	cat, err := configs.Catalog()
	require.NoError(t, err)
	m, err := configs.Mapping(cat, "")
	require.NoError(t, err)
	require.NotEmpty(t, collectors.Names())
	for _, n := range collectors.Names() {
		c, _ := collectors.Get(n)
		for _, ch := range c.Checks() {
			require.Contains(t, ch.ID, n+".", "check ids start with the collector's name")
			got := append([]string(nil), m.Controls(ch.ID)...)
			want := append([]string(nil), ch.Controls...)
			sort.Strings(got)
			sort.Strings(want)
			require.Equal(t, want, got, "controls of %s", ch.ID)
			require.Equal(t, time.Duration(ch.Freshness), m.Freshness(ch.ID, 26*time.Hour), "freshness of %s", ch.ID)
		}
	}
}
