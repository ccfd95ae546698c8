package parallel_test

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/internal/parallel"
)

// Every index is visited exactly once, whatever n.
func TestForVisitsEachOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 1000} {
		seen := make([]atomic.Int32, n)
		parallel.For(n, func(i int) { seen[i].Add(1) })
		for i := range seen {
			require.Equal(t, int32(1), seen[i].Load(), "n=%d i=%d", n, i)
		}
	}
}
