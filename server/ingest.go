package server

import (
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/checkpoint"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/internal/parallel"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/store"
)

// MaxBatch is the most envelopes one ingest request may carry.
const MaxBatch = 5000

// ingestError is a rejected record: HTTP status, code, and where.
type ingestError struct {
	status int
	body   apiv1.Error
}

func (e *ingestError) Error() string { return string(e.body.Code) + ": " + e.body.Message }

func reject(status int, code apiv1.Code, i int, seq uint64, format string, args ...any) *ingestError {
	idx := i
	return &ingestError{status: status, body: apiv1.Error{Code: code, Message: fmt.Sprintf(format, args...), Index: &idx, Seq: seq}}
}

// handleIngest is POST /v1/evidence. A refused record answers with the
// IngestResponse (how many were accepted before it, where to resume);
// anything else goes to the common error path.
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request) error {
	agent := principalFrom(r.Context()).agent
	// One batch per agent at a time: an agent's batches are ordered anyway,
	// and one credential cannot occupy more than one reader.
	if !s.busy.claim(agent.ID) {
		s.metrics.reject(string(apiv1.CodeOverloaded))
		e := clientError(http.StatusTooManyRequests, apiv1.CodeOverloaded, "a batch of agent %s is already in flight; send the next when it is answered", agent.ID)
		// Connection: close answers without draining the unread body.
		e.header = http.Header{"Retry-After": {"1"}, "Connection": {"close"}}
		return e
	}
	defer s.busy.release(agent.ID)
	// The body is read (bounded, at a minimum rate) before an ingest slot
	// is taken: a client that trickles its upload holds only its own
	// connection, never the slots every other agent needs.
	start := time.Now()
	req, release, ierr := s.readBatch(w, r)
	if ierr != nil {
		if ierr.status == http.StatusRequestTimeout || ierr.status == http.StatusRequestEntityTooLarge || ierr.status == http.StatusServiceUnavailable {
			w.Header().Set("Connection", "close") // do not wait for the rest of the body
		}
		if ierr.status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", strconv.Itoa(2+rand.IntN(8)))
		}
		s.metrics.reject(string(ierr.body.Code))
		writeJSON(w, ierr.status, apiv1.IngestResponse{NextSeq: agent.LastSeq + 1, Error: &ierr.body})
		return nil
	}
	defer release()
	// Overload: a bounded number of batches verified and stored at once.
	// The rest are told when to come back, with jitter, so a fleet
	// returning after an outage drains its backlog instead of stampeding.
	select {
	case s.inflight <- struct{}{}:
		defer func() { <-s.inflight }()
	case <-time.After(100 * time.Millisecond):
		s.metrics.reject(string(apiv1.CodeOverloaded))
		e := clientError(http.StatusServiceUnavailable, apiv1.CodeOverloaded, "too many batches in flight; retry after the Retry-After delay")
		e.header = http.Header{"Retry-After": {strconv.Itoa(2 + rand.IntN(8))}}
		return e
	}
	resp, err := s.Ingest(r.Context(), agent.ID, req.Envelopes)
	s.metrics.ingestLatency.Observe(time.Since(start).Seconds())
	if err != nil {
		var ie *ingestError
		if !errors.As(err, &ie) {
			s.metrics.reject(string(apiv1.CodeInternal))
			return fmt.Errorf("ingest a batch of %d from agent %s: %w", len(req.Envelopes), agent.ID, err)
		}
		s.metrics.reject(string(ie.body.Code))
		s.log.Warn("ingest rejected", "agent", agent.ID, "code", ie.body.Code, "seq", ie.body.Seq, "reason", ie.body.Message, "accepted_before", resp.Accepted)
		resp.Error = &ie.body
		writeJSON(w, ie.status, resp)
		return nil
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// Upload pace: a body must keep arriving at MinUploadRate once
// UploadGrace has passed, and no read may wait longer than UploadGrace.
const (
	UploadGrace   = 10 * time.Second
	MinUploadRate = 4 << 10 // bytes a second
)

// errTooSlow cuts an upload that trickles.
var errTooSlow = errors.New("upload slower than the minimum rate")

// paced is a request body that must keep coming: each read has a deadline,
// and after the grace period the average rate must stay above the minimum.
type paced struct {
	r           io.Reader
	rc          *http.ResponseController
	grace       time.Duration
	start       time.Time
	n           int64
	deadlineSet time.Time
}

func (p *paced) Read(b []byte) (int, error) {
	// A stalled client is cut: the deadline moves on as data comes,
	// refreshed at most every tenth of the grace period.
	if now := time.Now(); now.Sub(p.deadlineSet) > p.grace/10 {
		_ = p.rc.SetReadDeadline(now.Add(p.grace))
		p.deadlineSet = now
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	if el := time.Since(p.start); el > p.grace && p.n < int64(el.Seconds()*MinUploadRate) {
		return n, errTooSlow
	}
	return n, err
}

// budgeted takes the bytes it reads out of the server's ingest memory
// budget (the decompressed bytes of every batch in flight, reading or
// being stored), so that a burst of large or zip-bomb batches queues or is
// turned away instead of growing the server without bound.
type budgeted struct {
	r     io.Reader
	sem   *semaphore.Weighted
	ctx   context.Context
	taken int64
}

// errNoBudget is the ingest memory budget spent for longer than a batch
// should wait.
var errNoBudget = errors.New("ingest memory budget spent")

func (b *budgeted) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		if !b.sem.TryAcquire(int64(n)) { // the common case costs no timer
			ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
			aerr := b.sem.Acquire(ctx, int64(n))
			cancel()
			if aerr != nil {
				return n, errNoBudget
			}
		}
		b.taken += int64(n)
	}
	return n, err
}

func (b *budgeted) release() {
	if b.taken > 0 {
		b.sem.Release(b.taken)
		b.taken = 0
	}
}

func (s *Server) readBatch(w http.ResponseWriter, r *http.Request) (*apiv1.IngestRequest, func(), *ingestError) {
	rc := http.NewResponseController(w)
	defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	var body io.Reader = &paced{r: http.MaxBytesReader(w, r.Body, s.cfg.MaxBody), rc: rc, grace: s.cfg.UploadGrace, start: time.Now()}
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, nil, reject(http.StatusBadRequest, apiv1.CodeMalformed, 0, 0, "gzip: %v", err)
		}
		defer zr.Close()
		// The limit holds after decompression too: a small zip bomb is
		// still a large body.
		body = io.LimitReader(zr, s.cfg.MaxBody+1)
	}
	// Decoded as it streams in, each byte paid for from the budget: no
	// copy of the whole body is held beside the decoded batch.
	bud := &budgeted{r: body, sem: s.budget, ctx: r.Context()}
	var req apiv1.IngestRequest
	dec := json.NewDecoder(bud)
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil && dec.More() {
		err = errors.New("data after the batch")
	}
	read := bud.taken // the decompressed bytes read
	if err != nil {
		bud.release()
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, nil, reject(http.StatusRequestEntityTooLarge, apiv1.CodeTooLarge, 0, 0, "body over %d bytes", s.cfg.MaxBody)
		case read > s.cfg.MaxBody:
			return nil, nil, reject(http.StatusRequestEntityTooLarge, apiv1.CodeTooLarge, 0, 0, "body over %d bytes after decompression", s.cfg.MaxBody)
		case errors.Is(err, errTooSlow) || errors.Is(err, os.ErrDeadlineExceeded):
			return nil, nil, reject(http.StatusRequestTimeout, apiv1.CodeMalformed, 0, 0, "the upload did not keep a pace of %d bytes a second after %s", MinUploadRate, s.cfg.UploadGrace)
		case errors.Is(err, errNoBudget):
			return nil, nil, reject(http.StatusServiceUnavailable, apiv1.CodeOverloaded, 0, 0, "the server's ingest memory is taken by other batches; retry after the Retry-After delay")
		}
		return nil, nil, reject(http.StatusBadRequest, apiv1.CodeMalformed, 0, 0, "batch is not valid JSON: %v", err)
	}
	if read > s.cfg.MaxBody {
		bud.release()
		return nil, nil, reject(http.StatusRequestEntityTooLarge, apiv1.CodeTooLarge, 0, 0, "body over %d bytes after decompression", s.cfg.MaxBody)
	}
	done := bud.release
	fail := func(e *ingestError) (*apiv1.IngestRequest, func(), *ingestError) { done(); return nil, nil, e }
	if len(req.Envelopes) == 0 {
		return fail(reject(http.StatusBadRequest, apiv1.CodeMalformed, 0, 0, "empty batch"))
	}
	if len(req.Envelopes) > MaxBatch {
		return fail(reject(http.StatusRequestEntityTooLarge, apiv1.CodeTooLarge, 0, 0, "%d envelopes, at most %d per batch", len(req.Envelopes), MaxBatch))
	}
	return &req, done, nil
}

// parsed is one envelope of a batch after parsing and verification.
type parsed struct {
	raw []byte
	env *dsse.Envelope
	rec *evidence.Record
	key *dsse.PreparedKey
	err *ingestError
}

// Ingest verifies and stores one agent's batch. Records are applied in
// order; the first that cannot be accepted stops the batch, and the records
// before it are committed (the response says how many and where to resume).
// The commit is durable before Ingest returns.
// Ingest verifies an agent's batch and stores what it can accept, durably,
// before it answers. Signatures are checked here, concurrently; the
// accepted records are written by the group committer, which stores the
// batches of every agent waiting at that moment in one transaction with
// one checkpoint and one fsync (group commit): under load many agents'
// acknowledgments share one commit instead of queueing for one each.
func (s *Server) Ingest(ctx context.Context, agentID string, raws []json.RawMessage) (apiv1.IngestResponse, error) {
	agent, err := s.db.Agent(ctx, agentID)
	if err != nil {
		return apiv1.IngestResponse{}, err
	}
	keys, err := s.db.AgentKeys(ctx, agentID)
	if err != nil {
		return apiv1.IngestResponse{NextSeq: agent.LastSeq + 1}, err
	}
	job := &ingestJob{agentID: agentID, raws: raws, keys: keys, items: s.verifyBatch(agentID, keys, raws)}
	if err := s.committer.submit(ctx, job); err != nil {
		return apiv1.IngestResponse{NextSeq: agent.LastSeq + 1}, err
	}
	resp, stop, fork := job.resp, job.stop, job.fork
	if resp.Checkpoint == "" && len(resp.Receipts) > 0 {
		// Nothing new was appended (duplicates): the latest checkpoint is
		// the signed proof the receipts are in the log.
		_, note, err := s.db.Checkpoint(ctx, -1)
		if err != nil {
			return apiv1.IngestResponse{NextSeq: agent.LastSeq + 1}, fmt.Errorf("checkpoint for the receipts: %w", err)
		}
		resp.Checkpoint = string(note)
	}
	s.metrics.accepted.Add(float64(resp.Accepted))
	s.metrics.duplicates.Add(float64(resp.Duplicates))
	if fork != "" {
		// The batch stopped; the flag outlives it.
		if err := s.db.FlagAgent(ctx, agentID, fork); err != nil {
			s.log.Error("flag agent", "agent", agentID, "err", err)
		}
		s.log.Warn("agent flagged", "agent", agentID, "reason", fork)
	}
	if stop != nil {
		return resp, stop
	}
	return resp, nil
}

// ingestJob is one agent's verified batch, waiting for a group commit,
// and what the commit made of it.
type ingestJob struct {
	agentID  string
	raws     []json.RawMessage
	keys     []store.AgentKey
	items    []parsed
	resp     apiv1.IngestResponse
	stop     *ingestError
	fork     string
	appended bool
	done     chan error
}

// maxGroup bounds the batches one commit takes, and their results
// MaxResultsPerBatch: a group holds the log's write lock for all of them.
const maxGroup = 64

// weight is how many results a job brings.
func (j *ingestJob) weight() int {
	n := 0
	for _, it := range j.items {
		if it.rec != nil {
			n += len(it.rec.Predicate.Results)
		}
	}
	return n
}

// committer stores ingest jobs in groups: it takes the first job waiting,
// every other one waiting at that moment (up to maxGroup), and commits
// them together. It adds no delay: a group is what arrived while the
// previous commit ran.
type committer struct {
	s    *Server
	jobs chan *ingestJob
	stop chan struct{}
	once sync.Once
}

func newCommitter(s *Server) *committer {
	c := &committer{s: s, jobs: make(chan *ingestJob), stop: make(chan struct{})}
	go c.run()
	return c
}

func (c *committer) close() { c.once.Do(func() { close(c.stop) }) }

// submit hands a job to the committer and waits for its commit. A request
// that gives up meanwhile gets its context's error; its records may still
// be committed, and the agent's next attempt receives them as duplicates.
func (c *committer) submit(ctx context.Context, job *ingestJob) error {
	job.done = make(chan error, 1)
	select {
	case c.jobs <- job:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.stop:
		return errors.New("server closing")
	}
	select {
	case err := <-job.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *committer) run() {
	for {
		var first *ingestJob
		select {
		case first = <-c.jobs:
		case <-c.stop:
			return
		}
		group := []*ingestJob{first}
		weight := first.weight()
	gather:
		for len(group) < maxGroup && weight < MaxResultsPerBatch {
			select {
			case j := <-c.jobs:
				group = append(group, j)
				weight += j.weight()
			default:
				break gather
			}
		}
		c.s.metrics.groupSize.Observe(float64(len(group)))
		err := c.s.commitGroup(group)
		for _, j := range group {
			j.done <- err
		}
	}
}

// commitGroup stores a group of jobs in one transaction: each job is
// checked and appended in turn (its refusal is its own), then the results
// are indexed and one checkpoint covers them all. A database error fails
// the whole group; every agent in it retries.
func (s *Server) commitGroup(group []*ingestJob) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Every agent of the group is locked first, in agent id order, and the
	// log's sequencer after them: replicas committing overlapping groups
	// take the same locks in the same order and cannot deadlock.
	sort.Slice(group, func(i, j int) bool { return group[i].agentID < group[j].agentID })
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		for _, job := range group {
			if _, err := tx.LockAgent(ctx, job.agentID); err != nil {
				return err
			}
		}
		var app *store.Appender
		results := tx.NewResultBatch(ctx)
		now := s.now().UTC()
		for _, job := range group {
			if err := s.applyJob(ctx, tx, &app, results, job, now); err != nil {
				return err
			}
		}
		if app == nil {
			return nil
		}
		if err := results.Flush(); err != nil {
			return err
		}
		note, err := s.checkpoint(ctx, tx, app)
		if err != nil {
			return err
		}
		for _, job := range group {
			if job.appended {
				job.resp.Checkpoint = string(note)
			}
		}
		return nil
	})
}

// applyJob checks one agent's batch in the group's transaction and appends
// what it accepts to the shared appender and result batch.
func (s *Server) applyJob(ctx context.Context, tx *store.Tx, app **store.Appender, results *store.ResultBatch, job *ingestJob, now time.Time) error {
	agentID, keys, raws := job.agentID, job.keys, job.raws
	items := job.items
	resp := apiv1.IngestResponse{}
	var stop *ingestError
	fork := ""
	job.appended = false
	defer func() { job.resp, job.stop, job.fork = resp, stop, fork }()
	a, err := tx.LockAgent(ctx, agentID)
	if err != nil {
		return err
	}
	// Another batch of this agent may have rotated its key since the
	// snapshot; verify again under the keys as they stand now.
	nowKeys, err := tx.AgentKeys(ctx, agentID)
	if err != nil {
		return err
	}
	if !sameKeys(keys, nowKeys) {
		items = s.verifyBatch(agentID, nowKeys, raws)
	}
	grants, err := tx.Grants(ctx, agentID)
	if err != nil {
		return err
	}
	stateRows, err := tx.StateRows(ctx, agentID)
	if err != nil {
		return err
	}
	batchResults := 0
	// Records accepted earlier in this batch, for duplicates within it.
	inBatch := map[uint64]apiv1.Receipt{}
	lastSeq, link := a.LastSeq, a.Link
	for i, it := range items {
		if it.err != nil {
			stop = it.err
			break
		}
		p := &it.rec.Predicate
		if !a.Revocation().Allows(p.Seq) {
			stop = reject(http.StatusForbidden, apiv1.CodeRevoked, i, p.Seq, "agent %s was revoked after seq %d", agentID, a.RevokedAfter)
			break
		}
		if asset := it.rec.Asset(); !evidence.MayReport(agentID, asset, func(x evidence.Asset) bool { return grants[x] }) {
			stop = reject(http.StatusForbidden, apiv1.CodeNotGranted, i, p.Seq, "record about %s: agent %s may report on its own host and on the assets granted to it (annexa agent grant)", asset, agentID)
			break
		}
		if err := plausibleTime(p.CollectedAt, now); err != nil {
			stop = reject(http.StatusUnprocessableEntity, apiv1.CodeBadTime, i, p.Seq, "%v", err)
			break
		}
		inLog := recordAt(ctx, tx, agentID)
		v, other, err := decideSeq(lastSeq, link, p.Seq, p.Prev, it.rec.Digest, func(seq uint64) (string, int64, bool, error) {
			if r, ok := inBatch[seq]; ok {
				return r.Digest, r.Index, true, nil
			}
			return inLog(seq)
		})
		if err != nil {
			return err
		}
		switch v {
		case seqDuplicate:
			resp.Duplicates++
			resp.Receipts = append(resp.Receipts, apiv1.Receipt{Seq: p.Seq, Index: other.index, Digest: other.digest})
			continue
		case seqFork:
			fork = fmt.Sprintf("fork at seq %d: %s received, %s already accepted", p.Seq, it.rec.Digest, other.digest)
			stop = reject(http.StatusConflict, apiv1.CodeFork, i, p.Seq, "%s", fork)
		case seqExplained:
			stop = reject(http.StatusConflict, apiv1.CodeSeqGap, i, p.Seq, "seq %d lies in a range a gap record already explains", p.Seq)
			stop.body.ExpectedSeq = lastSeq + 1
		case seqAhead:
			stop = reject(http.StatusConflict, apiv1.CodeSeqGap, i, p.Seq, "expected seq %d, got %d: resend from %d, or send the gap record that explains the loss", lastSeq+1, p.Seq, lastSeq+1)
			stop.body.ExpectedSeq = lastSeq + 1
		case seqBrokenLink:
			fork = fmt.Sprintf("fork at seq %d: prev %s does not link to %s", p.Seq, p.Prev, link)
			stop = reject(http.StatusConflict, apiv1.CodeBrokenLink, i, p.Seq, "%s", fork)
		}
		if stop != nil {
			break
		}
		if c := s.unknownCheck(p.Results); c != "" {
			stop = reject(http.StatusUnprocessableEntity, apiv1.CodeUnknownCheck, i, p.Seq, "check %s is not in the server's mapping: add it to the mapping file (--mapping) to take results for it", c)
			break
		}
		if n := len(p.Results); n > MaxResultsPerRecord {
			stop = reject(http.StatusUnprocessableEntity, apiv1.CodeTooMany, i, p.Seq, "%d results in one record, at most %d", n, MaxResultsPerRecord)
			break
		}
		if batchResults+len(p.Results) > MaxResultsPerBatch && resp.Accepted > 0 {
			// The rest of the batch waits for the next request, so that
			// no batch holds the write lock for long: the answer's
			// next_seq says where to resume, and nothing is refused.
			break
		}
		rows := toRows(0, agentID, it.rec)
		fresh, err := results.NewKeys(string(it.rec.Asset()), rows)
		if err != nil {
			return err
		}
		if stateRows+fresh > MaxStatePerAgent {
			stop = reject(http.StatusUnprocessableEntity, apiv1.CodeTooMany, i, p.Seq, "agent %s would hold %d check results (asset × check), at most %d: a record with invented check ids?", agentID, stateRows+fresh, MaxStatePerAgent)
			break
		}
		if g := p.Gap; g != nil && (g.To < g.From || g.To-g.From >= MaxGapSpan || g.To >= MaxSeq) {
			stop = reject(http.StatusUnprocessableEntity, apiv1.CodeMalformed, i, p.Seq, "gap record covering seqs %d-%d: a gap covers at most %d records the agent wrote, below seq %d", g.From, g.To, MaxGapSpan, uint64(MaxSeq))
			break
		}
		if *app == nil {
			if *app, err = tx.NewAppender(ctx); err != nil {
				return err
			}
		}
		e := &store.LogEntry{Kind: store.KindRecord, AgentID: agentID, Seq: p.Seq, Digest: it.rec.Digest, Envelope: it.raw, ReceivedAt: now}
		idx, err := (*app).Append(e)
		if err != nil {
			return err
		}
		for j := range rows {
			rows[j].LogIndex = idx
		}
		if err := results.Add(string(it.rec.Asset()), rows); err != nil {
			return err
		}
		stateRows += fresh
		batchResults += len(rows)
		resp.Accepted++
		job.appended = true
		rc := apiv1.Receipt{Seq: p.Seq, Index: idx, Digest: it.rec.Digest}
		resp.Receipts = append(resp.Receipts, rc)
		inBatch[p.Seq] = rc
		next, nextLink := it.rec.Next()
		lastSeq, link = next-1, nextLink
		if rot := p.Rotation; rot != nil {
			if err := s.rotate(ctx, tx, *app, a, p.Seq, rot, now); err != nil {
				return err
			}
		}
	}
	resp.NextSeq = lastSeq + 1
	if !job.appended {
		return nil
	}
	return tx.AdvanceAgent(ctx, agentID, lastSeq, link, now)
}

// MaxGapSpan bounds the seqs one gap record may explain: an outbox drops
// at most what it held (a 256 MiB outbox of the smallest records holds a
// few hundred thousand), and MaxSeq bounds any seq, so that no agent can
// claim a range that ends its own chain or costs a verifier memory.
const (
	MaxGapSpan = 1 << 24
	MaxSeq     = 1 << 48
)

// unknownCheck returns the first check of rs the server does not know, or
// "": records carry only the checks of the server's mapping (and the
// failure of a plugin that did not describe itself).
func (s *Server) unknownCheck(rs []evidence.Result) string {
	for _, r := range rs {
		if !s.mapping.Has(r.Check) && !evidence.IsPluginFailureCheck(r.Check) {
			return r.Check
		}
	}
	return ""
}

// Bounds on what one agent can make the server index: results in one
// record, results indexed under one write lock, and (asset, check) states
// per agent. An honest agent's ten collectors hold about 60 states.
const (
	MaxResultsPerRecord = 1000
	MaxResultsPerBatch  = 20000
	MaxStatePerAgent    = 2000
)

// MaxClockSkew is how far ahead of the server's clock an agent's
// collected_at may be.
const MaxClockSkew = 10 * time.Minute

// MaxRecordAge is how old a collected_at may be: a laptop offline for
// months still ships what it collected, but nothing is a decade old.
const MaxRecordAge = 10 * 365 * 24 * time.Hour

// plausibleTime refuses a collected_at in the future beyond the clock skew
// (a result dated 2099 would never go stale) or implausibly old. State
// advances in log order whatever the time says; this keeps the time in
// reports honest, and every instant within what the store can represent.
func plausibleTime(collected, now time.Time) error {
	switch {
	case collected.After(now.Add(MaxClockSkew)):
		return fmt.Errorf("collected_at %s is in the future (server time %s; clocks may differ by %s at most)", collected.Format(time.RFC3339), now.Format(time.RFC3339), MaxClockSkew)
	case collected.Before(now.Add(-MaxRecordAge)):
		return fmt.Errorf("collected_at %s is implausibly old (over ten years before the server's time %s)", collected.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	return nil
}

// recordAt is decideSeq's lookup of what the log holds of a principal (an
// agent, or a person's attestations) at a seq.
func recordAt(ctx context.Context, tx *store.Tx, principal string) func(seq uint64) (string, int64, bool, error) {
	return func(seq uint64) (string, int64, bool, error) {
		prior, err := tx.RecordAt(ctx, principal, seq)
		if errors.Is(err, store.ErrNotFound) {
			return "", 0, false, nil
		}
		if err != nil {
			return "", 0, false, err
		}
		return prior.Digest, prior.Index, true, nil
	}
}

// seqVerdict is what ingest does with a record, given the agent's head.
type seqVerdict int

const (
	seqAccept     seqVerdict = iota // the next seq, linked to the head
	seqDuplicate                    // already accepted, the same record: acknowledge again
	seqFork                         // already accepted, another record: the agent signed two
	seqExplained                    // inside a range a gap record explained: nothing to accept
	seqAhead                        // beyond the next seq: the agent resends from the next
	seqBrokenLink                   // the next seq, but prev is not the head's digest
)

// accepted is a record the log holds: its digest and log index.
type accepted struct {
	digest string
	index  int64
}

// decideSeq is the one rule for a record's place in its agent's chain.
// lastSeq and link are the agent's head; known looks up the record the log
// holds at an earlier seq (found false inside an explained gap). The
// record the decision concerns, for a duplicate or a fork, is returned.
func decideSeq(lastSeq uint64, link string, seq uint64, prev, digest string, known func(seq uint64) (digest string, index int64, found bool, err error)) (seqVerdict, accepted, error) {
	switch {
	case seq <= lastSeq:
		d, idx, found, err := known(seq)
		switch {
		case err != nil:
			return 0, accepted{}, fmt.Errorf("record at seq %d: %w", seq, err)
		case !found:
			return seqExplained, accepted{}, nil
		case d == digest:
			return seqDuplicate, accepted{digest: d, index: idx}, nil
		default:
			return seqFork, accepted{digest: d, index: idx}, nil
		}
	case seq > lastSeq+1:
		return seqAhead, accepted{}, nil
	case prev != link:
		return seqBrokenLink, accepted{}, nil
	}
	return seqAccept, accepted{}, nil
}

// verifyBatch parses every envelope and checks its signature under the key
// valid at its seq, in parallel across cores, one signature at a time (never
// batch verification). A rotation record in the batch changes the key for
// the seqs after it.
func (s *Server) verifyBatch(agentID string, keys []store.AgentKey, raws []json.RawMessage) []parsed {
	items := make([]parsed, len(raws))
	// Parse in parallel; the keys depend on order (a rotation changes the
	// key of the seqs after it), so they are assigned in a sequential pass;
	// then verify in parallel.
	parallel.For(len(items), func(i int) {
		it := &items[i]
		it.raw = raws[i]
		env, err := dsse.ParseStrict(it.raw)
		if err != nil {
			it.err = reject(http.StatusBadRequest, apiv1.CodeMalformed, i, 0, "envelope %d: %v", i, err)
			return
		}
		rec, err := evidence.ParseRecord(env.Payload)
		if err != nil {
			it.err = reject(http.StatusBadRequest, apiv1.CodeMalformed, i, 0, "envelope %d: %v", i, err)
			return
		}
		if rec.Attestation != nil {
			it.err = reject(http.StatusBadRequest, apiv1.CodeMalformed, i, rec.Predicate.Seq, "envelope %d is an attestation: people attest (POST /v1/attestations), agents send evidence records", i)
			return
		}
		it.env, it.rec = env, rec
	})
	// Each key is decoded once per batch, not once per record.
	prepared := map[string]*dsse.PreparedKey{}
	for i := range items {
		it := &items[i]
		if it.err != nil {
			continue
		}
		p := &it.rec.Predicate
		if p.AgentID != agentID {
			it.err = reject(http.StatusForbidden, apiv1.CodeWrongAgent, i, p.Seq, "record of agent %s sent with the credential of %s", p.AgentID, agentID)
			continue
		}
		// Revocation is decided under the agent's lock in Ingest, with
		// its own code; here only which key signs the seq.
		k, err := evidence.KeyAt(keys, evidence.Revocation{}, p.Seq)
		if err != nil {
			it.err = reject(http.StatusUnprocessableEntity, apiv1.CodeUnknownKey, i, p.Seq, "no key of agent %s is valid at seq %d", agentID, p.Seq)
			continue
		}
		pub := ed25519.PublicKey(keys[k].Public)
		if it.key = prepared[string(pub)]; it.key == nil {
			pk, err := dsse.Prepare(pub)
			if err != nil {
				it.err = reject(http.StatusUnprocessableEntity, apiv1.CodeUnknownKey, i, p.Seq, "the key of agent %s at seq %d is not usable: %v", agentID, p.Seq, err)
				continue
			}
			prepared[string(pub)], it.key = pk, pk
		}
		if rot := p.Rotation; rot != nil {
			keys = evidence.RotateKeys(keys, p.Seq+1, store.AgentKey{AgentID: agentID, KeyID: rot.NewKeyID, Public: rot.NewPublic})
		}
	}
	parallel.For(len(items), func(i int) {
		it := &items[i]
		if it.err != nil {
			return
		}
		if err := evidence.VerifyRecordWith(it.env, it.key); err != nil {
			code := apiv1.CodeBadSignature
			if errors.Is(err, evidence.ErrWrongKeyID) {
				code = apiv1.CodeWrongKeyID
			} else if errors.Is(err, dsse.ErrPayloadType) {
				code = apiv1.CodeBadPayloadType
			}
			it.err = reject(http.StatusUnprocessableEntity, code, i, it.rec.Predicate.Seq, "seq %d: %v", it.rec.Predicate.Seq, err)
		}
	})
	return items
}

func sameKeys(a, b []store.AgentKey) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].From != b[i].From || a[i].To != b[i].To || a[i].KeyID != b[i].KeyID {
			return false
		}
	}
	return true
}

// rotate applies an accepted rotation record: the old key ends at its seq,
// the new key starts at the next, and the enrollment authority says so in
// the log.
func (s *Server) rotate(ctx context.Context, tx *store.Tx, app *store.Appender, a *store.Agent, seq uint64, rot *evidence.Rotation, now time.Time) error {
	if err := tx.EndAgentKeys(ctx, a.ID, seq); err != nil {
		return err
	}
	if err := tx.InsertAgentKey(ctx, store.AgentKey{AgentID: a.ID, KeySpan: evidence.KeySpan{From: seq + 1}, KeyID: rot.NewKeyID, Public: rot.NewPublic}); err != nil {
		return err
	}
	_, err := s.appendKeyEvent(app, &evidence.KeyEvent{Kind: evidence.Rotate, AgentID: a.ID, KeyID: rot.NewKeyID, PublicKey: rot.NewPublic, FromSeq: seq + 1, Time: now}, now)
	return err
}

// appendKeyEvent signs a key event and appends it to the log.
func (s *Server) appendKeyEvent(app *store.Appender, ev *evidence.KeyEvent, now time.Time) (*store.LogEntry, error) {
	env, err := evidence.SignKeyEvent(s.keys.Enroll, ev)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	e := &store.LogEntry{Kind: store.KindKeyEvent, AgentID: ev.AgentID, Digest: evidence.Digest(env.Payload), Envelope: raw, ReceivedAt: now}
	if _, err := app.Append(e); err != nil {
		return nil, err
	}
	return e, nil
}

// checkpoint finishes an append: new size, root, signed checkpoint.
func (s *Server) checkpoint(ctx context.Context, tx *store.Tx, app *store.Appender) ([]byte, error) {
	root, err := app.Finish()
	if err != nil {
		return nil, err
	}
	note, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: s.keys.Log.Name(), Size: app.Size(), Hash: root}, s.keys.Log)
	if err != nil {
		return nil, err
	}
	if err := tx.SaveCheckpoint(ctx, app.Size(), note, s.now()); err != nil {
		return nil, err
	}
	tx.AfterCommit(func() { s.signed.keep(app.Size(), note) })
	s.metrics.logSize.Set(float64(app.Size()))
	return note, nil
}

func toRows(idx int64, agentID string, rec *evidence.Record) []store.Result {
	p := &rec.Predicate
	rows := make([]store.Result, len(p.Results))
	for i, r := range p.Results {
		rows[i] = store.Result{LogIndex: idx, Pos: i, AgentID: agentID, Asset: string(rec.Asset()), Check: r.Check,
			Status: string(r.Status), Reason: r.Reason, CollectedAt: p.CollectedAt}
	}
	return rows
}

// agentsBusy is the agents with a batch in flight on this server.
type agentsBusy struct {
	mu sync.Mutex
	m  map[string]bool
}

func (b *agentsBusy) claim(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]bool{}
	}
	if b.m[id] {
		return false
	}
	b.m[id] = true
	return true
}

func (b *agentsBusy) release(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, id)
}
