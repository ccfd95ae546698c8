package agent

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/annexa-dev/annexa/agent/config"
	"github.com/annexa-dev/annexa/agent/outbox"
	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/internal/buildinfo"
	"github.com/annexa-dev/annexa/internal/keyfile"
)

// Agent is a running agent: identity, key, chain writer, outbox, client.
type Agent struct {
	cfg    *config.Config
	id     *Identity
	log    *slog.Logger
	host   *host.Host
	client *client.Client
	outbox *outbox.Outbox
	unlock func()

	mu     sync.Mutex // one record appended at a time: sign, then store durably
	writer *chain.Writer
	// cursors of incremental collectors, moved with their records
	cursors cursorStore

	wake     chan struct{}
	statusMu sync.Mutex
	// logKey is the server's log key from enrollment: receipts must verify under it.
	logKey note.Verifier
	// checks are the check ids the server takes (nil until known).
	checks serverChecks
}

// Open loads the identity and key, takes the state lock, opens the outbox
// and continues the chain from its last durable record.
func Open(cfg *config.Config, log *slog.Logger) (*Agent, error) {
	id, err := LoadIdentity(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	unlock, err := lockState(filepath.Join(cfg.StateDir, LockFile))
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, id: id, log: log, host: host.Live(), unlock: unlock, wake: make(chan struct{}, 1)}
	if err := a.open(); err != nil {
		unlock()
		return nil, err
	}
	return a, nil
}

func (a *Agent) open() error {
	key, err := a.currentKey()
	if err != nil {
		return err
	}
	if lines := strings.Fields(a.id.ServerKeys); len(lines) > 0 {
		if a.logKey, err = note.NewVerifier(lines[0]); err != nil {
			return fmt.Errorf("%s: server log key: %w", IdentityFile, err)
		}
	}
	server := a.cfg.Server
	if server == "" {
		server = a.id.Server
	}
	ca := a.cfg.CA
	if ca == "" {
		if _, err := os.Stat(filepath.Join(a.cfg.StateDir, CAFile)); err == nil {
			ca = filepath.Join(a.cfg.StateDir, CAFile)
		}
	}
	a.client, err = client.New(client.Options{Server: server, Credential: a.id.Credential, CAFile: ca,
		Timeout: a.cfg.Shipping.Timeout.Std(), UserAgent: buildinfo.String("annexa-agent")})
	if err != nil {
		return err
	}
	a.outbox, err = outbox.Open(filepath.Join(a.cfg.StateDir, OutboxDir), int64(a.cfg.Outbox.Limit), a.signGap)
	if err != nil {
		return err
	}
	if a.outbox.Torn > 0 {
		a.log.Warn("outbox: cut off a torn last record (the agent stopped mid-write); the chain continues from the last durable record", "bytes", a.outbox.Torn)
	}
	head := chain.Head{Digest: a.id.Genesis}
	if m, ok := a.outbox.Head(); ok {
		head = chain.Head{Seq: m.Seq, Digest: m.Digest}
	}
	a.writer, err = chain.NewWriter(a.id.AgentID, key, head)
	if err != nil {
		return err
	}
	a.cursors = cursorStore{dir: filepath.Join(a.cfg.StateDir, CursorDir)}
	notes, err := a.cursors.settle(head)
	for _, n := range notes {
		a.log.Warn("cursor left pending by a crash", "note", n)
	}
	return err
}

// currentKey loads agent.key, finishing a rotation that a crash interrupted:
// if the newest durable record announces the key in agent.key.next, that
// key is now the agent's.
func (a *Agent) currentKey() (ed25519.PrivateKey, error) {
	keyPath, nextPath := filepath.Join(a.cfg.StateDir, KeyFile), filepath.Join(a.cfg.StateDir, NextKeyFile)
	key, err := keyfile.Load(keyPath)
	if err != nil {
		return nil, err
	}
	next, err := keyfile.Load(nextPath)
	if err != nil {
		return key, nil
	}
	ob, err := outbox.Open(filepath.Join(a.cfg.StateDir, OutboxDir), 0, nil)
	if err != nil {
		return nil, err
	}
	defer ob.Close()
	if m, ok := ob.Head(); ok {
		if it, ok := ob.Find(m.Seq); ok && announces(it.Raw, next) {
			a.retire(m.Seq, key)
			if err := os.Rename(nextPath, keyPath); err != nil {
				return nil, err
			}
			return next, nil
		}
	}
	os.Remove(nextPath) // the rotation never became durable
	return key, nil
}

func announces(raw []byte, k ed25519.PrivateKey) bool {
	rec, err := parseRaw(raw)
	if err != nil || rec.Predicate.Rotation == nil {
		return false
	}
	return ed25519.PublicKey(rec.Predicate.Rotation.NewPublic).Equal(k.Public())
}

// Close releases the outbox and the state lock.
func (a *Agent) Close() {
	if a.outbox != nil {
		a.outbox.Close()
	}
	if a.unlock != nil {
		a.unlock()
	}
}

// ID is the agent id.
func (a *Agent) ID() string { return a.id.AgentID }

// Outbox exposes the outbox (status, tests).
func (a *Agent) Outbox() *outbox.Outbox { return a.outbox }

// append signs an entry as the next record and stores it durably. If it
// cannot be stored (full disk), the record never existed: the writer's head
// goes back and the error is returned, so nothing is counted as collected
// that is not on disk.
func (a *Agent) append(e chain.Entry) (*chain.Signed, error) {
	return a.appendWithCursor(e, nil)
}

// appendWithCursor appends a record and, for an incremental collector,
// moves its cursor with it: prepared before the append, committed after
// (see cursorStore). All under a.mu, so a failed append's seq is not
// reused before its pending cursor is gone.
func (a *Agent) appendWithCursor(e chain.Entry, cur []byte) (*chain.Signed, error) {
	e.Results = a.checks.keep(e.Collector, e.Results, a.log)
	a.mu.Lock()
	defer a.mu.Unlock()
	before := a.writer.Head()
	s, err := a.writer.Append(e)
	if err != nil {
		return nil, err
	}
	if cur != nil {
		if err := a.cursors.prepare(e.Collector, s.Record.Predicate.Seq, s.Record.Digest, cur); err != nil {
			a.writer.Reset(before)
			return nil, fmt.Errorf("cursor: %w", err)
		}
	}
	if err := a.outbox.Append(outbox.Item{Seq: s.Record.Predicate.Seq, Digest: s.Record.Digest, Raw: s.JSON}); err != nil {
		if cur != nil {
			a.cursors.abort(e.Collector)
		}
		a.writer.Reset(before)
		return nil, err
	}
	if cur != nil {
		if err := a.cursors.commit(e.Collector); err != nil {
			// The record is stored; the next start commits the pending cursor.
			a.log.Warn("cursor not committed", "collector", e.Collector, "err", err)
		}
	}
	a.notify()
	return s, nil
}

func (a *Agent) notify() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// signGap is the outbox's gap signer: with the key valid at from, and
// repeating a rotation the dropped records announced.
func (a *Agent) signGap(from, to uint64, prev, last string, dropped iter.Seq[outbox.Item]) (outbox.Item, error) {
	if prev == "" {
		prev = a.id.Genesis
	}
	key, err := a.keyAt(from)
	if err != nil {
		return outbox.Item{}, err
	}
	rot, rotSeq := droppedRotation(dropped)
	reason := fmt.Sprintf("outbox over its %d-byte limit: records %d-%d dropped unshipped", a.cfg.Outbox.Limit, from, to)
	if rot != nil {
		reason += fmt.Sprintf("; they included the key rotation of seq %d, announced again here", rotSeq)
	}
	s, err := chain.SignGap(key, a.id.AgentID, evidence.HostAsset(a.id.AgentID), from, to, prev, last, reason, time.Now(), rot)
	if err != nil {
		return outbox.Item{}, err
	}
	a.log.Warn("outbox full: dropped unshipped records and wrote a gap record", "from", from, "to", to, "rotation_repeated", rot != nil)
	return outbox.Item{Seq: from, Digest: s.Record.Digest, Raw: s.JSON, Last: to, LastDigest: last}, nil
}

// Collect runs one collector and appends its record.
func (a *Agent) Collect(ctx context.Context, name string) error {
	a.refreshChecks(ctx)
	c, ok := collectors.Get(name)
	if !ok {
		return fmt.Errorf("no collector %q", name)
	}
	start := time.Now()
	var cur []byte
	if _, ok := c.(collectors.Incremental); ok {
		var err error
		if cur, err = a.cursors.load(name); err != nil {
			// Unreadable: start over from the collector's lookback window,
			// and say so, rather than stop collecting.
			a.log.Warn("cursor unreadable; reading from the lookback window", "collector", name, "err", err)
			cur = nil
		}
	}
	rs, next := collectors.Run(ctx, c, a.host, a.cfg.Limits(name), a.cfg.Settings(name), cur)
	s, err := a.appendWithCursor(chain.Entry{Asset: evidence.HostAsset(a.id.AgentID), Collector: name, CollectorVersion: c.Version(), CollectedAt: time.Now().UTC(), Results: rs}, next)
	st := CollectorStatus{At: time.Now().UTC(), Results: map[string]string{}}
	for _, r := range rs {
		st.Results[r.Check] = string(r.Status)
	}
	if err != nil {
		st.Error = err.Error()
		a.log.Error("record not stored", "collector", name, "err", err)
	} else {
		st.Seq = s.Record.Predicate.Seq
		a.log.Info("collected", "collector", name, "seq", st.Seq, "took", time.Since(start).Round(time.Millisecond))
	}
	a.saveStatus(name, st)
	return err
}

func (a *Agent) saveStatus(name string, st CollectorStatus) {
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	path := filepath.Join(a.cfg.StateDir, StatusFile)
	all := map[string]CollectorStatus{}
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &all)
	}
	all[name] = st
	if err := saveJSON(path, all, 0o600); err != nil {
		a.log.Warn("status not saved", "err", err)
	}
}

// Enabled lists the collectors the config enables.
func (a *Agent) Enabled() []string {
	var out []string
	for _, n := range collectors.Names() {
		if a.cfg.Enabled(n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// CollectAll runs every enabled collector once, bounded by the configured
// concurrency, and returns the first storage error.
func (a *Agent) CollectAll(ctx context.Context) error {
	sem := make(chan struct{}, a.cfg.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, n := range a.Enabled() {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := a.Collect(ctx, n); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range a.cfg.Plugins {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := a.RunPlugin(ctx, p); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// Run is the daemon: each collector on its own interval with jitter, and
// the shipper, until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	if err := lowerPriority(); err != nil {
		a.log.Debug("could not lower priority", "err", err)
	}
	a.log.Info("annexa-agent running", "agent", a.id.AgentID, "server", a.client.Server(), "collectors", a.Enabled(), "plugins", len(a.cfg.Plugins))
	debug.FreeOSMemory()
	sem := make(chan struct{}, a.cfg.Concurrency)
	var wg sync.WaitGroup
	type job struct {
		sched config.Schedule
		run   func(context.Context) error
	}
	var jobs []job
	for _, n := range a.Enabled() {
		jobs = append(jobs, job{a.cfg.ScheduleFor(n), func(ctx context.Context) error { return a.Collect(ctx, n) }})
	}
	for _, p := range a.cfg.Plugins {
		jobs = append(jobs, job{a.cfg.PluginSchedule(p), func(ctx context.Context) error { return a.RunPlugin(ctx, p) }})
	}
	for _, j := range jobs {
		sched := j.sched
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A fleet started together spreads over the jitter window.
			delay := jitter(sched.Jitter.Std())
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(delay):
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				_ = j.run(ctx)
				<-sem
				// The agent idles between runs: hand what the run allocated
				// back to the OS instead of holding it until the next GC.
				debug.FreeOSMemory()
				delay = sched.Interval.Std() + jitter(sched.Jitter.Std()) - sched.Jitter.Std()/2
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		a.shipLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		a.watchRotateRequests(ctx)
	}()
	wg.Wait()
	return nil
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)))
}

// Once runs every collector once and ships until the outbox is empty. It
// fails if anything could not be shipped.
func (a *Agent) Once(ctx context.Context) error {
	collectErr := a.CollectAll(ctx)
	shipErr := a.ShipAll(ctx)
	if collectErr != nil {
		return fmt.Errorf("collect: %w", collectErr)
	}
	if shipErr != nil {
		n, _ := a.outbox.Depth()
		return fmt.Errorf("%d record(s) not shipped: %w", n, shipErr)
	}
	return nil
}

var errRetry = errors.New("retry")
