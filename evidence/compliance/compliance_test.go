package compliance_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

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
