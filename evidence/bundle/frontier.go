package bundle

import (
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// Frontier is the right edge of an RFC 6962 tree: the roots of the perfect
// subtrees its leaves decompose into, largest first. It is all a verifier
// needs to keep to append leaves and compute the root, so checking that a
// period's entries rebuild the end root from the start root costs
// O(log n) memory however long the period.
type Frontier struct {
	Size  int64
	nodes []node
}

type node struct {
	level int
	hash  tlog.Hash
}

// FrontierAt reads the frontier of the tree of size n from stored hashes.
func FrontierAt(n int64, r tlog.HashReader) ([]tlog.Hash, error) {
	var idx []int64
	var start int64
	for level := 62; level >= 0; level-- {
		if n&(1<<level) != 0 {
			idx = append(idx, tlog.StoredHashIndex(level, start>>level))
			start += 1 << level
		}
	}
	if len(idx) == 0 {
		return nil, nil
	}
	return r.ReadHashes(idx)
}

// NewFrontier starts from the frontier hashes of a tree of size n.
func NewFrontier(n int64, hashes []tlog.Hash) (*Frontier, error) {
	f := &Frontier{Size: n}
	i := 0
	for level := 62; level >= 0; level-- {
		if n&(1<<level) != 0 {
			if i >= len(hashes) {
				return nil, fmt.Errorf("frontier of size %d needs more than %d hashes", n, len(hashes))
			}
			f.nodes = append(f.nodes, node{level, hashes[i]})
			i++
		}
	}
	if i != len(hashes) {
		return nil, fmt.Errorf("frontier of size %d has %d hashes, want %d", n, len(hashes), i)
	}
	return f, nil
}

// Append adds a leaf (its data, hashed as an RFC 6962 leaf).
func (f *Frontier) Append(data []byte) {
	f.nodes = append(f.nodes, node{0, tlog.RecordHash(data)})
	for len(f.nodes) >= 2 {
		a, b := f.nodes[len(f.nodes)-2], f.nodes[len(f.nodes)-1]
		if a.level != b.level {
			break
		}
		f.nodes = append(f.nodes[:len(f.nodes)-2], node{a.level + 1, tlog.NodeHash(a.hash, b.hash)})
	}
	f.Size++
}

// Root is the tree's root hash.
func (f *Frontier) Root() (tlog.Hash, error) {
	if len(f.nodes) == 0 {
		return tlog.Hash{}, errors.New("empty tree")
	}
	h := f.nodes[len(f.nodes)-1].hash
	for i := len(f.nodes) - 2; i >= 0; i-- {
		h = tlog.NodeHash(f.nodes[i].hash, h)
	}
	return h, nil
}
