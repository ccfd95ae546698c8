package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// A snapshot read for one question is read for the next: the dashboard
// and an auditor ask about instants near each other, answered from the
// same snapshot, and decoding a fleet's snapshot (three million pairs at
// 100,000 hosts) costs more than answering from it. The store keeps the
// last snapshot it read decoded into columns: the fleet's asset names once,
// and per check and pair an asset number, a status code and a time (13
// bytes a pair, about 40 MiB at 100,000 hosts × 30 checks). Snapshots never
// change once stored, so the columns are never stale; a check is decoded
// the first time a question needs it.

// snapCols is one snapshot's checks, decoded as asked for.
type snapCols struct {
	takenAt, logSize int64
	// numbering names this decoding's asset numbers (StateFilter.Current):
	// another decoding of the same snapshot numbers them otherwise.
	numbering uint64

	mu     sync.Mutex
	assets []string // by asset number; only appended to
	idx    map[string]int32
	checks map[string]*checkCols // nil: the snapshot has no such check
}

// checkCols is one check's pairs in asset order.
type checkCols struct {
	asset     []int32
	status    []uint8 // a code in snapStatuses, or snapStatusOther
	collected []int64
	// other holds the statuses stored literally, agents the agents that
	// are not the asset's own host's ("host:" + agent), by pair.
	other  map[int32]string
	agents map[int32]string
}

// snapCache holds the columns of the snapshot read last.
type snapCache struct {
	mu       sync.Mutex
	cur      *snapCols
	numbered uint64 // the numberings handed out
}

func (c *snapCache) get(takenAt, logSize int64) *snapCols {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || c.cur.takenAt != takenAt || c.cur.logSize != logSize {
		c.numbered++
		c.cur = &snapCols{takenAt: takenAt, logSize: logSize, numbering: c.numbered, idx: map[string]int32{}, checks: map[string]*checkCols{}}
	}
	return c.cur
}

func (c *snapCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = nil
}

// check is the snapshot's columns for check, read and decoded the first
// time, with the asset names as they stand after it (indexes below its
// length never change).
func (sc *snapCols) check(ctx context.Context, s *DB, check string) (*checkCols, []string, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if cc, ok := sc.checks[check]; ok {
		return cc, sc.assets, nil
	}
	var data []byte
	err := s.queryRow(ctx, `SELECT data FROM state_snapshot_checks WHERE taken_at = ? AND check_id = ?`, sc.takenAt, check).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		sc.checks[check] = nil
		return nil, sc.assets, nil
	}
	if err != nil {
		return nil, nil, err
	}
	// The checks of a snapshot mostly hold the same assets in the same
	// order: the asset after the last one is most often next, found
	// without a lookup, and a name seen before is not allocated again.
	cc := &checkCols{}
	var ai, next int32
	intern := func(name []byte) string {
		if int(next) < len(sc.assets) && sc.assets[next] == string(name) {
			ai = next
		} else if i, ok := sc.idx[string(name)]; ok {
			ai = i
		} else {
			ai = int32(len(sc.assets))
			sc.assets = append(sc.assets, string(name))
			sc.idx[sc.assets[ai]] = ai
		}
		next = ai + 1
		return sc.assets[ai]
	}
	err = scanSnapshot(data, sc.takenAt, intern, func(e *snapEntry) {
		i := int32(len(cc.asset))
		cc.asset = append(cc.asset, ai)
		cc.collected = append(cc.collected, e.collected)
		code := uint8(snapStatusOther)
		for k, st := range snapStatuses {
			if st == e.status {
				code = uint8(k)
			}
		}
		cc.status = append(cc.status, code)
		if code == snapStatusOther {
			if cc.other == nil {
				cc.other = map[int32]string{}
			}
			cc.other[i] = e.status
		}
		if !strings.HasPrefix(e.asset, "host:") || e.asset[len("host:"):] != e.agent {
			if cc.agents == nil {
				cc.agents = map[int32]string{}
			}
			cc.agents[i] = e.agent
		}
	})
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s, check %s: %w", fromNanos(sc.takenAt).Format(time.RFC3339Nano), check, err)
	}
	sc.checks[check] = cc
	return cc, sc.assets, nil
}

// at is pair i's asset, agent and status.
func (cc *checkCols) at(i int, assets []string) (asset, agent, status string) {
	asset = assets[cc.asset[i]]
	if a, ok := cc.agents[int32(i)]; ok {
		agent = a
	} else {
		agent = asset[len("host:"):]
	}
	if code := cc.status[i]; code < uint8(len(snapStatuses)) {
		status = snapStatuses[code]
	} else {
		status = cc.other[int32(i)]
	}
	return asset, agent, status
}
