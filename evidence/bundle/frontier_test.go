package bundle

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

// The frontier of any size, plus the leaves after it, gives the same root
// as tlog computing the whole tree.
func TestFrontierMatchesTlog(t *testing.T) {
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	var leaves [][]byte
	for i := int64(0); i < 70; i++ {
		d := []byte(fmt.Sprint("leaf ", i))
		leaves = append(leaves, d)
		hs, err := tlog.StoredHashes(i, d, r)
		require.NoError(t, err)
		stored = append(stored, hs...)
	}
	for start := int64(1); start <= 70; start++ {
		fh, err := FrontierAt(start, r)
		require.NoError(t, err)
		f, err := NewFrontier(start, fh)
		require.NoError(t, err)
		root, _ := f.Root()
		want, _ := tlog.TreeHash(start, r)
		require.Equal(t, want, root, "start %d", start)
		for end := start; end < 70; end++ {
			f.Append(leaves[end])
			root, _ := f.Root()
			want, _ := tlog.TreeHash(end+1, r)
			require.Equal(t, want, root, "start %d end %d", start, end+1)
		}
	}
	_, err := NewFrontier(5, []tlog.Hash{{}})
	require.Error(t, err)
}
