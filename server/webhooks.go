package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/annexa-dev/annexa/evidence/catalog"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/store"
	"github.com/annexa-dev/annexa/server/webhook"
)

// Webhooks. Events are queued in the database in the transaction that
// causes them (a revocation) or by the dispatcher from what committed (the
// transitions into fail, by log index behind a cursor that moves in the
// same transaction as the queueing, so each is queued once however many
// replicas run); deliveries are leased, so each is sent by one replica at a
// time, signed, retried with backoff, and every attempt is logged.

// Webhook defaults; Config overrides them (tests make them short).
const (
	defaultWebhookInterval = 5 * time.Second
	defaultWebhookBackoff  = 10 * time.Second
	defaultWebhookTimeout  = 10 * time.Second
	// webhookSenders is how many deliveries go out at once: a receiver that
	// is slow holds one sender for its timeout, not the queue.
	webhookSenders = 4
)

// Meta keys of the dispatcher.
const (
	metaWebhookCursor   = "webhook_cursor"           // the last log index whose transitions were looked at
	metaFailingControls = "webhook_failing_controls" // JSON list: controls reported failing and not since clear
)

type dispatcher struct {
	s        *Server
	client   *http.Client
	interval time.Duration
	backoff  time.Duration
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	lagging  bool
	senders  chan struct{}
	inflight sync.WaitGroup
}

// startWebhooks places the transitions' cursor at the log's end on the
// first start ever (history is not news), before the server takes a
// record: from then on every transition into fail is looked at once.
func (s *Server) startWebhooks(ctx context.Context) error {
	size, err := s.db.LogSize(ctx)
	if err != nil {
		return err
	}
	if _, err := s.db.SetMetaOnce(ctx, metaWebhookCursor, strconv.FormatInt(size-1, 10)); err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	s.webhooks = newDispatcher(s)
	return nil
}

func newDispatcher(s *Server) *dispatcher {
	d := &dispatcher{s: s, interval: s.cfg.WebhookInterval, backoff: s.cfg.WebhookBackoff, stop: make(chan struct{}), done: make(chan struct{}),
		senders: make(chan struct{}, webhookSenders)}
	if d.interval <= 0 {
		d.interval = defaultWebhookInterval
	}
	if d.backoff <= 0 {
		d.backoff = defaultWebhookBackoff
	}
	timeout := s.cfg.WebhookTimeout
	if timeout <= 0 {
		timeout = defaultWebhookTimeout
	}
	// No redirects: a delivery goes where the admin said, nowhere else.
	d.client = &http.Client{Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	go d.run()
	return d
}

func (d *dispatcher) close() {
	d.once.Do(func() { close(d.stop) })
	<-d.done
	d.inflight.Wait()
}

func (d *dispatcher) run() {
	defer close(d.done)
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := d.produce(ctx); err != nil {
			d.s.log.Warn("webhooks: queueing events", "err", err)
		}
		if err := d.deliver(ctx); err != nil {
			d.s.log.Warn("webhooks: delivering", "err", err)
		}
		cancel()
	}
}

// produce queues what happened since the last look.
func (d *dispatcher) produce(ctx context.Context) error {
	s := d.s
	hooks, err := s.db.Webhooks(ctx)
	if err != nil {
		return err
	}
	// The fleet's failing controls, read before the transaction (it reads
	// the database itself), when someone listens.
	var failing map[string]bool
	if len(hooks) > 0 {
		err = s.withFleet(ctx, func(f *fleetState) error {
			failing = map[string]bool{}
			for c, n := range f.controlCounts("") {
				if n.Failing > 0 {
					failing[c] = true
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	size, err := s.db.LogSize(ctx)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		hooks, err := tx.WebhooksTx(ctx)
		if err != nil {
			return err
		}
		// Transitions into fail, from where the last look stopped.
		raw, err := tx.LockMeta(ctx, metaWebhookCursor, strconv.FormatInt(size-1, 10))
		if err != nil {
			return err
		}
		if len(hooks) == 0 {
			// Nobody listens: keep the cursor at the log's end, so a first
			// webhook hears what happens from then on, not a backlog.
			if c, err := strconv.ParseInt(raw, 10, 64); err == nil && c >= size-1 {
				return nil
			}
			return tx.SetMeta(ctx, metaWebhookCursor, strconv.FormatInt(size-1, 10))
		}
		cursor, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("webhook cursor %q: %w", raw, err)
		}
		trs, err := tx.NewFailures(ctx, cursor, 1000)
		if err != nil {
			return err
		}
		hostnames := map[string]string{}
		for _, tr := range trs {
			cursor = max(cursor, tr.LogIndex)
			data := map[string]any{"asset": tr.Asset, "check": tr.Check, "controls": s.mapping.Controls(tr.Check),
				"status": tr.Status, "previous": tr.Previous, "collected_at": tr.At, "log_index": tr.LogIndex}
			if id, ok := strings.CutPrefix(tr.Asset, "host:"); ok {
				name, seen := hostnames[id]
				if !seen {
					name, _ = tx.AgentHostname(ctx, id)
					hostnames[id] = name
				}
				data["agent_id"], data["hostname"] = id, name
			}
			if err := s.enqueue(ctx, tx, hooks, webhook.CheckFailing, data, now); err != nil {
				return err
			}
		}
		if err := tx.SetMeta(ctx, metaWebhookCursor, strconv.FormatInt(cursor, 10)); err != nil {
			return err
		}
		// Controls that started failing: failing now, not reported since
		// they were last clear. (failing is nil when a webhook appeared
		// since the fleet was read: its controls are looked at next time.)
		if failing != nil {
			if err := s.controlsFailing(ctx, tx, hooks, failing, now); err != nil {
				return err
			}
		}
		// Hosts gone quiet for longer than results stay fresh.
		stale, err := tx.NewlyStale(ctx, now.Add(-s.cfg.Freshness), now, 1000)
		if err != nil {
			return err
		}
		for _, a := range stale {
			data := map[string]any{"agent_id": a.ID, "hostname": a.Hostname, "last_seen": a.LastSeen, "silent_for": now.Sub(a.LastSeen).Round(time.Minute).String()}
			if err := s.enqueue(ctx, tx, hooks, webhook.HostStale, data, now); err != nil {
				return err
			}
		}
		// Attestations about to lapse: their controls go stale.
		return s.remindAttestations(ctx, tx, hooks, now)
	})
	if err != nil {
		return err
	}
	// This server lagging: the conditions /readyz answers 503 for (a slow
	// database, a nearly full disk), reported once as it starts.
	why := s.notReady(ctx)
	switch {
	case why != "" && !d.lagging:
		d.lagging = true
		host, _ := os.Hostname()
		return s.db.InTx(ctx, func(tx *store.Tx) error {
			hooks, err := tx.WebhooksTx(ctx)
			if err != nil {
				return err
			}
			return s.enqueue(ctx, tx, hooks, webhook.ServerLagging, map[string]any{"host": host, "reason": why}, now)
		})
	case why == "":
		d.lagging = false
	}
	return nil
}

// controlsFailing queues control.failing for the controls failing now that
// were clear when last looked at, and remembers which are failing.
func (s *Server) controlsFailing(ctx context.Context, tx *store.Tx, hooks []store.Webhook, failing map[string]bool, now time.Time) error {
	raw, err := tx.LockMeta(ctx, metaFailingControls, "[]")
	if err != nil {
		return err
	}
	var reported []string
	if err := json.Unmarshal([]byte(raw), &reported); err != nil {
		return fmt.Errorf("%s: %w", metaFailingControls, err)
	}
	var still []string
	for _, c := range reported {
		if failing[c] {
			still = append(still, c)
		}
	}
	for _, c := range s.catalog.Controls() {
		if failing[c.ID] && !slices.Contains(still, c.ID) {
			still = append(still, c.ID)
			if err := s.enqueue(ctx, tx, hooks, webhook.ControlFailing, map[string]any{"control": c.ID, "title": c.Title}, now); err != nil {
				return err
			}
		}
	}
	slices.SortFunc(still, func(a, b string) int {
		switch {
		case catalog.Less(a, b):
			return -1
		case catalog.Less(b, a):
			return 1
		}
		return 0
	})
	b, _ := json.Marshal(nonNilStrings(still))
	return tx.SetMeta(ctx, metaFailingControls, string(b))
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// enqueue queues event for every webhook subscribed to it.
func (s *Server) enqueue(ctx context.Context, tx *store.Tx, hooks []store.Webhook, event string, data any, now time.Time) error {
	for _, h := range hooks {
		if !webhook.Wants(h.Events, event) {
			continue
		}
		id := randomID("dlv-")
		body, err := json.Marshal(webhook.Body{ID: id, Event: event, At: now, Server: s.keys.Log.Name(), Data: data})
		if err != nil {
			return err
		}
		if err := tx.Enqueue(ctx, &store.Delivery{ID: id, WebhookID: h.ID, Event: event, Body: string(body), CreatedAt: now}); err != nil {
			return err
		}
	}
	return nil
}

// deliver sends what is due, as many at once as there are free senders.
// It does not wait for them: a slow receiver holds its sender until its
// timeout, never the dispatcher's next look.
func (d *dispatcher) deliver(ctx context.Context) error {
	s := d.s
	free := cap(d.senders) - len(d.senders)
	if free == 0 {
		return nil
	}
	now := s.now().UTC()
	due, err := s.db.ClaimDue(ctx, now, 2*d.client.Timeout+time.Minute, free)
	if err != nil || len(due) == 0 {
		return err
	}
	hooks, err := s.db.Webhooks(ctx)
	if err != nil {
		return err
	}
	byID := map[string]store.Webhook{}
	for _, h := range hooks {
		byID[h.ID] = h
	}
	for _, dl := range due {
		h, ok := byID[dl.WebhookID]
		if !ok {
			continue // deleted meanwhile, with its queue
		}
		d.senders <- struct{}{}
		d.inflight.Add(1)
		go func() {
			defer d.inflight.Done()
			defer func() { <-d.senders }()
			ctx, cancel := context.WithTimeout(context.Background(), d.client.Timeout+30*time.Second)
			defer cancel()
			a := d.send(ctx, h, dl)
			var next time.Time
			ok := a.Status >= 200 && a.Status < 300
			if !ok && a.Attempt < webhook.MaxAttempts {
				next = s.now().UTC().Add(webhook.Backoff(d.backoff, a.Attempt))
			}
			if !ok {
				s.log.Info("webhook delivery failed", "webhook", h.ID, "delivery", dl.ID, "event", dl.Event, "attempt", a.Attempt, "status", a.Status, "err", a.Error, "retry_at", next)
			}
			if err := s.db.RecordAttempt(ctx, a, ok, next); err != nil {
				s.log.Warn("webhooks: recording an attempt", "err", err)
			}
		}()
	}
	return nil
}

// send makes one attempt.
func (d *dispatcher) send(ctx context.Context, h store.Webhook, dl store.Delivery) store.Attempt {
	start := d.s.now().UTC()
	a := store.Attempt{DeliveryID: dl.ID, Attempt: dl.Attempts + 1, At: start}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, strings.NewReader(dl.Body))
	if err != nil {
		a.Error = err.Error()
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "annexa-server webhooks")
	req.Header.Set(webhook.EventHeader, dl.Event)
	req.Header.Set(webhook.DeliveryHeader, dl.ID)
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(h.Secret, start, []byte(dl.Body)))
	t0 := time.Now()
	resp, err := d.client.Do(req)
	a.TookMS = time.Since(t0).Milliseconds()
	if err != nil {
		a.Error = err.Error()
		return a
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	a.Status = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		a.Error = resp.Status
	}
	return a
}

// notReady is why this server would answer /readyz with 503, "" if it
// would not.
func (s *Server) notReady(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.db.LogSize(ctx); err != nil {
		return "the database does not answer within 2s"
	}
	if s.db.Dialect() == store.SQLite {
		if free, ok := freeBytes(s.cfg.DataDir); ok && free < MinFreeBytes {
			return fmt.Sprintf("the data directory's disk has %d MiB free (at least %d MiB needed to ingest)", free>>20, MinFreeBytes>>20)
		}
	}
	return ""
}

// The API: /v1/webhooks (admin).

func (s *Server) handleWebhookCreate(w http.ResponseWriter, r *http.Request) error {
	var req apiv1.WebhookRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return badRequest("url %q: want an absolute http(s) URL", req.URL)
	}
	if err := webhook.CheckEvents(req.Events); err != nil {
		return badRequest("%v", err)
	}
	secret := req.Secret
	if secret == "" {
		if secret, err = newSecret(); err != nil {
			return err
		}
	} else if len(secret) < 16 {
		return badRequest("secret: at least 16 characters (or none, and the server makes one)")
	}
	h := &store.Webhook{ID: randomID("whk-"), URL: req.URL, Secret: secret, Events: req.Events, CreatedAt: s.now().UTC(), CreatedBy: principalFrom(r.Context()).token.ID}
	if err := s.db.CreateWebhook(r.Context(), h); err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	s.log.Info("webhook created", "id", h.ID, "url", h.URL, "events", h.Events, "by", h.CreatedBy)
	writeJSON(w, http.StatusCreated, apiv1.WebhookResponse{Webhook: apiWebhook(*h), Secret: secret})
	return nil
}

func apiWebhook(h store.Webhook) apiv1.Webhook {
	return apiv1.Webhook{ID: h.ID, URL: h.URL, Events: nonNilStrings(h.Events), CreatedAt: h.CreatedAt, CreatedBy: h.CreatedBy}
}

func (s *Server) handleWebhookList(w http.ResponseWriter, r *http.Request) error {
	hooks, err := s.db.Webhooks(r.Context())
	if err != nil {
		return fmt.Errorf("list webhooks: %w", err)
	}
	page := apiv1.Page[apiv1.Webhook]{Items: []apiv1.Webhook{}}
	for _, h := range hooks {
		page.Items = append(page.Items, apiWebhook(h))
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) webhookByID(ctx context.Context, id string) (store.Webhook, error) {
	hooks, err := s.db.Webhooks(ctx)
	if err != nil {
		return store.Webhook{}, err
	}
	for _, h := range hooks {
		if h.ID == id {
			return h, nil
		}
	}
	return store.Webhook{}, notFound("no webhook %s", id)
}

func (s *Server) handleWebhookDelete(w http.ResponseWriter, r *http.Request) error {
	err := s.db.DeleteWebhook(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no webhook %s", r.PathValue("id"))
	}
	if err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	s.log.Info("webhook deleted", "id", r.PathValue("id"), "by", principalFrom(r.Context()).token.ID)
	writeJSON(w, http.StatusOK, map[string]string{"deleted": r.PathValue("id")})
	return nil
}

// handleWebhookTest sends a ping now and answers how it went; it is logged
// like any delivery and not retried.
func (s *Server) handleWebhookTest(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	h, err := s.webhookByID(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	now := s.now().UTC()
	id := randomID("dlv-")
	body, _ := json.Marshal(webhook.Body{ID: id, Event: webhook.Ping, At: now, Server: s.keys.Log.Name(), Data: map[string]any{"webhook": h.ID}})
	// Queued leased, so the dispatcher leaves it to this request.
	dl := store.Delivery{ID: id, WebhookID: h.ID, Event: webhook.Ping, Body: string(body), CreatedAt: now, LeaseUntil: now.Add(time.Hour)}
	err = s.db.InTx(ctx, func(tx *store.Tx) error { return tx.Enqueue(ctx, &dl) })
	if err != nil {
		return err
	}
	a := s.webhooks.send(ctx, h, dl)
	ok := a.Status >= 200 && a.Status < 300
	if err := s.db.RecordAttempt(ctx, a, ok, time.Time{}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiv1.WebhookTest{DeliveryID: id, Delivered: ok, Status: a.Status, Error: a.Error, TookMS: a.TookMS})
	return nil
}

func (s *Server) handleWebhookDeliveries(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if _, err := s.webhookByID(ctx, r.PathValue("id")); err != nil {
		return err
	}
	limit := 50
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return badRequest("limit must be 1 to 1000")
		}
		limit = n
	}
	ds, err := s.db.Deliveries(ctx, r.PathValue("id"), limit)
	if err != nil {
		return fmt.Errorf("webhook deliveries: %w", err)
	}
	out := apiv1.Page[apiv1.WebhookDelivery]{Items: []apiv1.WebhookDelivery{}}
	for _, d := range ds {
		as, err := s.db.Attempts(ctx, d.ID)
		if err != nil {
			return fmt.Errorf("webhook deliveries: %w", err)
		}
		wd := apiv1.WebhookDelivery{ID: d.ID, Event: d.Event, CreatedAt: d.CreatedAt, Attempts: d.Attempts, NextAt: d.NextAt,
			DeliveredAt: d.DeliveredAt, FailedAt: d.FailedAt, LastStatus: d.LastStatus, LastError: d.LastError, Log: []apiv1.WebhookAttempt{}}
		for _, a := range as {
			wd.Log = append(wd.Log, apiv1.WebhookAttempt{Attempt: a.Attempt, At: a.At, Status: a.Status, Error: a.Error, TookMS: a.TookMS})
		}
		out.Items = append(out.Items, wd)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
