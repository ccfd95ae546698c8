package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"
)

// Webhook is a subscription: where to POST which events, and the secret
// its deliveries are signed with.
type Webhook struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Secret    string    `json:"-"`
	Events    []string  `json:"events"` // empty: all
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// Delivery is one event queued for one webhook, with how its attempts
// went.
type Delivery struct {
	ID          string    `json:"id"`
	WebhookID   string    `json:"webhook_id"`
	Event       string    `json:"event"`
	Body        string    `json:"-"`
	CreatedAt   time.Time `json:"created_at"`
	Attempts    int       `json:"attempts"`
	NextAt      time.Time `json:"next_at,omitzero"`
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
	FailedAt    time.Time `json:"failed_at,omitzero"` // given up
	LastStatus  int       `json:"last_status,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	// LeaseUntil, at queueing, keeps the dispatcher off a delivery its
	// queuer sends itself (a test ping).
	LeaseUntil time.Time `json:"-"`
}

// Attempt is one try of a delivery.
type Attempt struct {
	DeliveryID string    `json:"delivery_id"`
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	Status     int       `json:"status,omitempty"`
	Error      string    `json:"error,omitempty"`
	TookMS     int64     `json:"took_ms"`
}

// CreateWebhook stores a subscription.
func (s *DB) CreateWebhook(ctx context.Context, w *Webhook) error {
	ev, _ := json.Marshal(nonNilStrings(w.Events))
	return s.InTx(ctx, func(t *Tx) error {
		_, err := t.exec(ctx, `INSERT INTO webhooks (id, url, secret, events, created_at, created_by) VALUES (?,?,?,?,?,?)`,
			w.ID, w.URL, w.Secret, string(ev), nanos(w.CreatedAt), w.CreatedBy)
		return err
	})
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Webhooks lists every subscription, oldest first.
func (s *DB) Webhooks(ctx context.Context) ([]Webhook, error) {
	rows, err := s.query(ctx, webhooksQuery)
	if err != nil {
		return nil, err
	}
	return scanWebhooks(rows)
}

const webhooksQuery = `SELECT id, url, secret, events, created_at, created_by FROM webhooks ORDER BY created_at, id`

func scanWebhooks(rows *sql.Rows) ([]Webhook, error) {
	defer rows.Close()
	var out []Webhook
	for rows.Next() {
		var w Webhook
		var ev string
		var created int64
		if err := rows.Scan(&w.ID, &w.URL, &w.Secret, &ev, &created, &w.CreatedBy); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(ev), &w.Events); err != nil {
			return nil, err
		}
		w.CreatedAt = fromNanos(created)
		out = append(out, w)
	}
	return out, rows.Err()
}

// DeleteWebhook removes a subscription and its queue.
func (s *DB) DeleteWebhook(ctx context.Context, id string) error {
	return s.InTx(ctx, func(t *Tx) error {
		r, err := t.exec(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		_, err = t.exec(ctx, `DELETE FROM webhook_deliveries WHERE webhook_id = ?`, id)
		return err
	})
}

// Enqueue queues a delivery, due now, in the transaction that caused it:
// an event is queued exactly when what it reports commits.
func (t *Tx) Enqueue(ctx context.Context, d *Delivery) error {
	_, err := t.exec(ctx, `INSERT INTO webhook_deliveries (id, webhook_id, event, body, created_at, next_at, lease_until) VALUES (?,?,?,?,?,?,?)`,
		d.ID, d.WebhookID, d.Event, d.Body, nanos(d.CreatedAt), nanos(d.CreatedAt), nanos(d.LeaseUntil))
	return err
}

// WebhooksTx lists the subscriptions inside a transaction.
func (t *Tx) WebhooksTx(ctx context.Context) ([]Webhook, error) {
	rows, err := t.query(ctx, webhooksQuery)
	if err != nil {
		return nil, err
	}
	return scanWebhooks(rows)
}

// ClaimDue leases up to n deliveries that are due, for lease: a delivery
// is sent by one replica at a time, and one whose sender died is sent
// again once its lease ends.
func (s *DB) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, n int) ([]Delivery, error) {
	rows, err := s.query(ctx, `SELECT id FROM webhook_deliveries WHERE delivered_at = 0 AND failed_at = 0 AND next_at <= ? AND lease_until < ? ORDER BY next_at LIMIT ?`,
		nanos(now), nanos(now), n)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []Delivery
	for _, id := range ids {
		var d Delivery
		err := s.InTx(ctx, func(t *Tx) error {
			r, err := t.exec(ctx, `UPDATE webhook_deliveries SET lease_until = ? WHERE id = ? AND lease_until < ? AND delivered_at = 0 AND failed_at = 0`,
				nanos(now.Add(lease)), id, nanos(now))
			if err != nil {
				return err
			}
			if n, _ := r.RowsAffected(); n == 0 {
				return errNotClaimed
			}
			var created int64
			return t.queryRow(ctx, `SELECT id, webhook_id, event, body, created_at, attempts FROM webhook_deliveries WHERE id = ?`, id).
				Scan(&d.ID, &d.WebhookID, &d.Event, &d.Body, &created, &d.Attempts)
		})
		if errors.Is(err, errNotClaimed) {
			continue // another replica has it
		}
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

var errNotClaimed = errors.New("claimed elsewhere")

// RecordAttempt logs an attempt and moves the delivery on: delivered,
// retried at next, or given up (next zero).
func (s *DB) RecordAttempt(ctx context.Context, a Attempt, delivered bool, next time.Time) error {
	return s.InTx(ctx, func(t *Tx) error {
		if _, err := t.exec(ctx, `INSERT INTO webhook_attempts (delivery_id, attempt, at, status, error, took_ms) VALUES (?,?,?,?,?,?)`,
			a.DeliveryID, a.Attempt, nanos(a.At), a.Status, a.Error, a.TookMS); err != nil {
			return err
		}
		var q string
		var args []any
		switch {
		case delivered:
			q, args = `UPDATE webhook_deliveries SET attempts = ?, delivered_at = ?, lease_until = 0, last_status = ?, last_error = '' WHERE id = ?`,
				[]any{a.Attempt, nanos(a.At), a.Status, a.DeliveryID}
		case next.IsZero():
			q, args = `UPDATE webhook_deliveries SET attempts = ?, failed_at = ?, lease_until = 0, last_status = ?, last_error = ? WHERE id = ?`,
				[]any{a.Attempt, nanos(a.At), a.Status, a.Error, a.DeliveryID}
		default:
			q, args = `UPDATE webhook_deliveries SET attempts = ?, next_at = ?, lease_until = 0, last_status = ?, last_error = ? WHERE id = ?`,
				[]any{a.Attempt, nanos(next), a.Status, a.Error, a.DeliveryID}
		}
		_, err := t.exec(ctx, q, args...)
		return err
	})
}

// Deliveries lists a webhook's latest deliveries, newest first.
func (s *DB) Deliveries(ctx context.Context, webhookID string, limit int) ([]Delivery, error) {
	rows, err := s.query(ctx, `SELECT id, webhook_id, event, created_at, attempts, next_at, delivered_at, failed_at, last_status, last_error
		FROM webhook_deliveries WHERE webhook_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`, webhookID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var created, next, delivered, failed int64
		if err := rows.Scan(&d.ID, &d.WebhookID, &d.Event, &created, &d.Attempts, &next, &delivered, &failed, &d.LastStatus, &d.LastError); err != nil {
			return nil, err
		}
		d.CreatedAt, d.DeliveredAt, d.FailedAt = fromNanos(created), fromNanos(delivered), fromNanos(failed)
		if d.DeliveredAt.IsZero() && d.FailedAt.IsZero() {
			d.NextAt = fromNanos(next)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Attempts lists a delivery's attempts in order.
func (s *DB) Attempts(ctx context.Context, deliveryID string) ([]Attempt, error) {
	rows, err := s.query(ctx, `SELECT delivery_id, attempt, at, status, error, took_ms FROM webhook_attempts WHERE delivery_id = ? ORDER BY attempt`, deliveryID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		var at int64
		if err := rows.Scan(&a.DeliveryID, &a.Attempt, &at, &a.Status, &a.Error, &a.TookMS); err != nil {
			return nil, err
		}
		a.At = fromNanos(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// LockMeta reads a setting under a row lock for the transaction (creating
// it with def if absent): replicas that both want to advance it take turns.
func (t *Tx) LockMeta(ctx context.Context, k, def string) (string, error) {
	if _, err := t.exec(ctx, `INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING`, k, def); err != nil {
		return "", err
	}
	var v string
	err := t.queryRow(ctx, `SELECT v FROM meta WHERE k = ?`+t.dialect.forUpdate(), k).Scan(&v)
	return v, err
}

// SetMeta writes a setting in the transaction.
func (t *Tx) SetMeta(ctx context.Context, k, v string) error {
	_, err := t.exec(ctx, `UPDATE meta SET v = ? WHERE k = ?`, v, k)
	return err
}

// NewFailures lists, in log order, the transitions into fail indexed by a
// record after log index after, at most limit.
func (t *Tx) NewFailures(ctx context.Context, after int64, limit int) ([]Transition, error) {
	return collectTransitions(t.query(ctx, `SELECT `+transitionCols+` FROM transitions
		WHERE log_idx > ? AND status = 'fail' AND prev_status <> 'fail' ORDER BY log_idx, asset, check_id LIMIT ?`, after, limit))
}

// AgentHostname is an agent's hostname ("" if there is no such agent).
func (t *Tx) AgentHostname(ctx context.Context, id string) (string, error) {
	var name string
	err := t.queryRow(ctx, `SELECT hostname FROM agents WHERE id = ?`, id).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return name, err
}

// StaleAgent is an agent silent since LastSeen.
type StaleAgent struct {
	ID, Hostname string
	LastSeen     time.Time
}

// NewlyStale lists the agents (not revoked) silent since before cutoff
// that have not been reported stale since they last shipped, and marks
// them reported at now.
func (t *Tx) NewlyStale(ctx context.Context, cutoff, now time.Time, limit int) ([]StaleAgent, error) {
	rows, err := t.query(ctx, `SELECT id, hostname, last_seen FROM agents WHERE revoked_at = 0 AND last_seen > 0 AND last_seen < ? AND stale_notified < last_seen ORDER BY id LIMIT ?`,
		nanos(cutoff), limit)
	if err != nil {
		return nil, err
	}
	var out []StaleAgent
	for rows.Next() {
		var a StaleAgent
		var seen int64
		if err := rows.Scan(&a.ID, &a.Hostname, &seen); err != nil {
			rows.Close()
			return nil, err
		}
		a.LastSeen = fromNanos(seen)
		out = append(out, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, a := range out {
		if _, err := t.exec(ctx, `UPDATE agents SET stale_notified = ? WHERE id = ?`, nanos(now), a.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}
