package compliance_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence/compliance"
)

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		result string
		stale  bool
		want   compliance.Status
	}{
		{"pass", false, compliance.Passing},
		{"fail", false, compliance.Failing},
		{"error", false, compliance.Error},
		{"not_applicable", false, compliance.NotApplicable},
		{"fail", true, compliance.Stale}, // a stale failure says nothing about now
		{"pass", true, compliance.Stale},
	} {
		assert.Equal(t, tc.want, compliance.Of(tc.result, tc.stale), "%s stale=%v", tc.result, tc.stale)
	}
}

// An asset is as bad as its worst check, whatever order the checks come in.
func TestRollupWorstWins(t *testing.T) {
	order := []compliance.Status{compliance.Passing, compliance.NotApplicable, compliance.Stale, compliance.Error, compliance.Failing}
	for i := range order {
		r := compliance.NewRollup[string](true)
		for j := range order {
			st := order[(i+j)%len(order)]
			r.Add([]string{"8.24", "8.1"}, "host:a", st, string(st))
		}
		r.Add([]string{"8.24"}, "host:b", compliance.NotApplicable, "na")
		r.Add([]string{"8.24"}, "host:c", compliance.Passing, "ok")
		assets := r.Assets("8.24")
		assert.Equal(t, compliance.Failing, assets[0].Status, "rotation %d", i)
		assert.Len(t, assets[0].Checks, len(order))
		assert.Equal(t, compliance.Counts{Assets: 3, Failing: 1, Passing: 1, NotApplicable: 1}, r.Counts("8.24"))
		assert.Equal(t, []string{"8.1", "8.24"}, r.Controls(), "catalog order, not string order")
		assert.Equal(t, []string{"host:a", "host:c", "host:b"}, []string{assets[0].Asset, assets[1].Asset, assets[2].Asset}, "worst first")
	}
	r := compliance.NewRollup[string](false)
	r.Add([]string{"5.1"}, "host:a", compliance.Passing, "x")
	assert.Empty(t, r.Assets("5.1")[0].Checks, "checks are kept only when asked")
}

// Paging a control's assets n at a time, each page from the last one's
// end, gives Assets' order exactly, whatever n, with the checks kept.
func TestPageWalksAssetsInOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	statuses := []compliance.Status{compliance.Failing, compliance.Error, compliance.Stale, compliance.Passing, compliance.NotApplicable}
	r := compliance.NewRollup[int](true)
	for i := range 2000 {
		asset := fmt.Sprintf("host:%04d", rng.IntN(700))
		r.Add([]string{"8.24", "8.1"}, asset, statuses[rng.IntN(len(statuses))], i)
	}
	all := r.Assets("8.24")
	require.Greater(t, len(all), 500)
	for _, n := range []int{1, 7, 100, 1000} {
		var walked []*compliance.Asset[int]
		rank, after := -1, ""
		for {
			page := r.Page("8.24", rank, after, n)
			require.LessOrEqual(t, len(page), n)
			if len(page) == 0 {
				break
			}
			walked = append(walked, page...)
			last := page[len(page)-1]
			rank, after = last.Status.Rank(), last.Asset
		}
		require.Equal(t, all, walked, "pages of %d", n)
	}
	require.Empty(t, r.Page("5.1", -1, "", 10), "a control with no assets")
}
