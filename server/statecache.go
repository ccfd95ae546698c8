package server

import (
	"context"
	"errors"
	"sync"

	"github.com/annexa-dev/annexa/server/store"
)

// stateMirror keeps the state table in memory for the "now" queries
// (/v1/controls, /v1/hosts), which read all of it. Each query first pulls
// the rows moved since the last look (state.log_idx > the highest seen):
// log indexes are handed out under the sequencer lock, held to commit, so
// commits become visible in index order and nothing is skipped, on one
// server or several sharing a database. Point-in-time queries go to SQL.
type stateMirror struct {
	mu     sync.Mutex
	rows   map[[2]string]store.State
	maxIdx int64
	// purgeGen is the purge generation the rows were loaded under: a purge
	// (on any replica) removes rows, which an incremental refresh by log
	// index cannot see, so a new generation reloads everything.
	purgeGen string
}

func newStateMirror() *stateMirror {
	return &stateMirror{rows: map[[2]string]store.State{}, maxIdx: -1}
}

func (m *stateMirror) refresh(ctx context.Context, db *store.DB) error {
	gen, err := db.Meta(ctx, "purge_gen")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if gen != m.purgeGen {
		m.rows, m.maxIdx, m.purgeGen = map[[2]string]store.State{}, -1, gen
	}
	return db.StatesAfter(ctx, m.maxIdx, func(st *store.State) error {
		m.rows[[2]string{st.Asset, st.Check}] = *st
		if st.LogIndex > m.maxIdx {
			m.maxIdx = st.LogIndex
		}
		return nil
	})
}

// each refreshes and calls fn for every row matching f (f.At is ignored).
func (m *stateMirror) each(ctx context.Context, db *store.DB, f store.StateFilter, fn func(*store.State) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.refresh(ctx, db); err != nil {
		return err
	}
	if f.None {
		return nil
	}
	checks, assets, agents := set(f.Checks), set(f.Assets), set(f.Agents)
	for _, st := range m.rows {
		if (checks != nil && !checks[st.Check]) || (assets != nil && !assets[st.Asset]) || (agents != nil && !agents[st.AgentID]) {
			continue
		}
		if err := fn(&st); err != nil {
			return err
		}
	}
	return nil
}

func set(vals []string) map[string]bool {
	if len(vals) == 0 {
		return nil
	}
	out := make(map[string]bool, len(vals))
	for _, v := range vals {
		out[v] = true
	}
	return out
}
