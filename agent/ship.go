package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/annexa-dev/annexa/agent/outbox"
	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/evidence/checkpoint"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/server/apiv1"
)

func parseRaw(raw []byte) (*evidence.Record, error) {
	env, err := dsse.Parse(raw)
	if err != nil {
		return nil, err
	}
	return evidence.ParseRecord(env.Payload)
}

// waitError asks the caller to wait before the next attempt.
type waitError struct {
	wait time.Duration
	err  error
}

func (e *waitError) Error() string {
	return fmt.Sprintf("%v (retry in %s)", e.err, e.wait.Round(time.Second))
}
func (e *waitError) Unwrap() error { return e.err }

// shipOnce sends one batch of pending records and applies the answer. It
// returns how many records the server now holds that it did not before.
func (a *Agent) shipOnce(ctx context.Context) (int, error) {
	items, err := a.outbox.Pending(a.cfg.Shipping.BatchSize, 8<<20)
	if err != nil {
		return 0, err
	}
	if len(items) == 0 {
		return 0, nil
	}
	raws := make([]json.RawMessage, len(items))
	for i, it := range items {
		raws[i] = it.Raw
	}
	resp, err := a.client.Ingest(ctx, raws)
	if resp != nil && resp.NextSeq > 0 {
		if acked := a.outbox.Acked().Seq; resp.NextSeq-1 < acked {
			// The server is behind receipts it signed: it lost records
			// (restored from an old backup, a damaged database). Say so and
			// keep what is held; resending would not bring them back.
			a.outbox.Release()
			a.log.Error("the server lost acknowledged records: it is at seq "+fmt.Sprint(resp.NextSeq-1)+", this agent holds signed receipts up to seq "+fmt.Sprint(acked),
				"server", a.client.Server())
			return 0, &waitError{wait: a.maxBackoff(), err: fmt.Errorf("the server lost acknowledged records (it is at seq %d, receipts reach seq %d)", resp.NextSeq-1, acked)}
		}
		// Whatever the status, what the answer proves is in the log, and
		// only that, is done with.
		through, rerr := a.receiptedThrough(items, resp)
		if rerr != nil {
			a.outbox.Release()
			return 0, rerr
		}
		if aerr := a.ackTo(through, resp); aerr != nil {
			a.outbox.Release()
			return 0, aerr
		}
	}
	if err == nil {
		return resp.Accepted, nil
	}
	a.outbox.Release()
	var ce *client.Error
	if !errors.As(err, &ce) {
		return 0, err // network: the caller backs off
	}
	switch {
	case ce.Status == 503 || ce.Status == 429:
		wait := ce.RetryAfter
		if wait <= 0 {
			wait = 5 * time.Second
		}
		return 0, &waitError{wait: wait + time.Duration(rand.Int64N(int64(wait/2)+1)), err: err}
	case ce.Body.Code == apiv1.CodeSeqGap && ce.Body.ExpectedSeq > 0:
		// The server lacks records we no longer have (a torn write, a
		// damaged segment): explain the hole with a signed gap record.
		if err := a.fillGap(ce.Body.ExpectedSeq, items); err != nil {
			return 0, fmt.Errorf("server expects seq %d: %w", ce.Body.ExpectedSeq, err)
		}
		return 0, errRetry
	}
	return 0, err
}

// ackTo marks everything up to seq as shipped and keeps the receipt.
func (a *Agent) ackTo(seq uint64, resp *apiv1.IngestResponse) error {
	if seq == 0 {
		return nil
	}
	m, ok := a.outbox.MarkAt(seq)
	if !ok {
		if acked := a.outbox.Acked(); acked.Seq >= seq {
			return nil
		}
		return fmt.Errorf("server acknowledged up to seq %d, which this agent has no record of", seq)
	}
	if err := a.outbox.Ack(m); err != nil {
		return err
	}
	a.pruneRetired(m.Seq)
	r := Receipt{ShippedAt: time.Now().UTC(), NextSeq: resp.NextSeq, Checkpoint: resp.Checkpoint, LastIndex: -1}
	if n := len(resp.Receipts); n > 0 {
		r.LastIndex = resp.Receipts[n-1].Index
	}
	if resp.Accepted > 0 || resp.Duplicates > 0 {
		if err := saveJSON(filepath.Join(a.cfg.StateDir, ReceiptFile), r, 0o600); err != nil {
			a.log.Warn("receipt not saved", "err", err)
		}
	}
	return nil
}

// receiptedThrough is how far into the batch the server's answer proves
// the records are in the log: up to the last record of an unbroken run,
// from the first, each with a receipt naming its seq and its digest, at a
// log index the answer's checkpoint, signed by the log key pinned at
// enrollment, covers. Duplicates need receipts too. An answer that proves
// nothing (unsigned, another key, no receipts) changes nothing: the
// records stay and are sent again.
func (a *Agent) receiptedThrough(items []outbox.Item, resp *apiv1.IngestResponse) (uint64, error) {
	if a.logKey == nil {
		// An identity from before enrollments pinned the log key: the
		// answer's word is all there is.
		return resp.NextSeq - 1, nil
	}
	if len(resp.Receipts) == 0 {
		return 0, nil
	}
	cp, err := checkpoint.Open([]byte(resp.Checkpoint), a.logKey)
	if err != nil {
		return 0, fmt.Errorf("the server's receipt does not verify under the log key pinned at enrollment: %w", err)
	}
	byseq := make(map[uint64]apiv1.Receipt, len(resp.Receipts))
	for _, r := range resp.Receipts {
		byseq[r.Seq] = r
	}
	var through uint64
	for _, it := range items {
		r, ok := byseq[it.Seq]
		if !ok || r.Digest != it.Digest {
			break
		}
		if r.Index < 0 || r.Index >= cp.Size {
			return through, fmt.Errorf("the server's checkpoint (size %d) does not cover log index %d it claims for seq %d", cp.Size, r.Index, r.Seq)
		}
		through = it.Seq
		if it.Last > through {
			through = it.Last
		}
	}
	return min(through, resp.NextSeq-1), nil
}

// fillGap writes a gap record for the seqs between what the server expects
// and the oldest record the outbox still holds.
func (a *Agent) fillGap(expected uint64, items []outbox.Item) error {
	oldest := items[0]
	if oldest.Seq <= expected {
		return fmt.Errorf("the server expects seq %d and the outbox holds it: a server-side rewind, not a gap", expected)
	}
	rec, err := parseRaw(oldest.Raw)
	if err != nil {
		return err
	}
	prev := a.id.Genesis
	if expected > 1 {
		m, ok := a.outbox.MarkAt(expected - 1)
		if !ok {
			return fmt.Errorf("no record of seq %d to link a gap record to", expected-1)
		}
		prev = m.Digest
	}
	from, to := expected, oldest.Seq-1
	key, err := a.keyAt(from)
	if err != nil {
		return err
	}
	s, err := chain.SignGap(key, a.id.AgentID, evidence.HostAsset(a.id.AgentID), from, to, prev, rec.Predicate.Prev,
		fmt.Sprintf("records %d-%d were lost from the agent's outbox before shipping (damaged or torn on disk)", from, to), time.Now(), nil)
	if err != nil {
		return err
	}
	a.log.Warn("server is missing records the outbox no longer has: wrote a gap record", "from", from, "to", to)
	return a.outbox.Insert(outbox.Item{Seq: from, Digest: s.Record.Digest, Raw: s.JSON, Last: to, LastDigest: rec.Predicate.Prev})
}

// ShipAll ships until the outbox is empty, retrying transient failures a
// few times (for --once, which cron runs again anyway); it returns the last
// error if records remain. Retries back off from half a second, doubling up
// to shipping.max_backoff, and honour the server's Retry-After.
func (a *Agent) ShipAll(ctx context.Context) error {
	maxBackoff := a.maxBackoff()
	first := min(500*time.Millisecond, maxBackoff)
	backoff := first
	var lastErr error
	for attempt := 0; attempt < 4; {
		before, _ := a.outbox.Depth()
		_, err := a.shipOnce(ctx)
		after, _ := a.outbox.Depth()
		if err == nil && after == 0 {
			return nil
		}
		if after < before {
			// Progress: what the answers prove is in the log left the outbox.
			attempt, backoff = 0, first
			if err == nil {
				continue
			}
		}
		if err == nil {
			// An answer that proves nothing sent is in the log (unsigned,
			// no receipts) is no progress: it is retried like a failure.
			err = fmt.Errorf("the server's answer proved none of the %d record(s) waiting to be in its log", before)
		}
		if errors.Is(err, errRetry) {
			attempt++
			continue
		}
		lastErr = err
		attempt++
		if attempt == 4 {
			break // no wait after the last attempt
		}
		wait := backoff
		var we *waitError
		if errors.As(err, &we) {
			wait = we.wait
		}
		a.log.Warn("ship failed", "err", err, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(backoff*2, maxBackoff)
	}
	return lastErr
}

// maxBackoff is shipping.max_backoff, or ten minutes when unset.
func (a *Agent) maxBackoff() time.Duration {
	if d := a.cfg.Shipping.MaxBackoff.Std(); d > 0 {
		return d
	}
	return 10 * time.Minute
}

// shipLoop ships whenever records wait, backing off exponentially with
// jitter on failure and honouring Retry-After, so a fleet returning after
// an outage drains its backlog without stampeding the server.
func (a *Agent) shipLoop(ctx context.Context) {
	maxBackoff := a.maxBackoff()
	backoff := min(time.Second, maxBackoff)
	for {
		n, err := a.shipOnce(ctx)
		var wait time.Duration
		switch {
		case err == nil && n > 0:
			backoff = min(time.Second, maxBackoff)
			continue // more may wait
		case err == nil:
			backoff = min(time.Second, maxBackoff)
			select {
			case <-ctx.Done():
				return
			case <-a.wake:
			case <-time.After(a.cfg.Shipping.Interval.Std()):
			}
			continue
		case errors.Is(err, errRetry):
			continue
		default:
			var we *waitError
			if errors.As(err, &we) {
				wait = we.wait
			} else {
				// Full jitter: a random wait up to the backoff.
				wait = time.Duration(rand.Int64N(int64(backoff))) + min(500*time.Millisecond, maxBackoff)
				backoff = min(backoff*2, maxBackoff)
			}
			a.log.Warn("ship failed", "err", err, "retry_in", wait.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
