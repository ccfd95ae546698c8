package server

import (
	"context"
	"errors"
	"time"

	"github.com/annexa-dev/annexa/server/store"
)

// defaultSnapshotInterval is how often the state is snapshotted for
// point-in-time queries (store/snapshot.go): what a past instant's answer
// replays at most, in changes after the snapshot before it.
const defaultSnapshotInterval = time.Hour

// snapshotter takes the state snapshots ?at= reads. Replicas sharing a
// database each run one; each looks at the newest snapshot first, so
// together they take about one per interval.
type snapshotter struct {
	s        *Server
	interval time.Duration
	stop     chan struct{}
	done     chan struct{}
}

func (s *Server) startSnapshots() *snapshotter {
	sn := &snapshotter{s: s, interval: s.cfg.SnapshotInterval, stop: make(chan struct{}), done: make(chan struct{})}
	if sn.interval == 0 {
		sn.interval = defaultSnapshotInterval
	}
	if sn.interval < 0 {
		close(sn.done)
		return sn
	}
	go sn.run()
	return sn
}

func (sn *snapshotter) close() {
	select {
	case <-sn.done:
		return
	default:
	}
	close(sn.stop)
	<-sn.done
}

func (sn *snapshotter) run() {
	defer close(sn.done)
	for {
		wait, err := sn.takeIfDue()
		if err != nil {
			sn.s.log.Warn("state snapshot failed; point-in-time queries read the results instead", "err", err)
			wait = time.Minute
		}
		select {
		case <-sn.stop:
			return
		case <-time.After(wait):
		}
	}
}

// takeIfDue takes a snapshot if the newest is an interval old, and says how
// long until the next is due.
func (sn *snapshotter) takeIfDue() (time.Duration, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sn.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	now := sn.s.now().UTC()
	latest, err := sn.s.db.LatestSnapshot(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	if err == nil {
		if due := latest.TakenAt.Add(sn.interval).Sub(now); due > 0 {
			return due, nil
		}
	}
	start := time.Now()
	info, err := sn.s.db.TakeSnapshot(ctx, now)
	if err != nil {
		return 0, err
	}
	sn.s.log.Info("state snapshot taken", "pairs", info.Pairs, "bytes", info.Bytes, "log_size", info.LogSize, "took", time.Since(start).Round(time.Millisecond))
	if r := sn.s.cfg.SnapshotRetention; r > 0 {
		if n, err := sn.s.db.PruneSnapshots(ctx, now.Add(-r)); err != nil {
			return 0, err
		} else if n > 0 {
			sn.s.log.Info("state snapshots pruned", "deleted", n, "before", now.Add(-r))
		}
	}
	return sn.interval, nil
}
