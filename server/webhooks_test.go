package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/servertest"
	"github.com/annexa-dev/annexa/server/webhook"
)

// receiver is a local webhook endpoint that checks every delivery's
// signature and keeps the bodies.
type receiver struct {
	mu     sync.Mutex
	secret string
	got    []webhook.Body
	bad    []string
	delay  time.Duration
	status int
	now    func() time.Time // the clock signatures are checked against (default: the real one)
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if rc.delay > 0 {
		time.Sleep(rc.delay)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	now := time.Now()
	if rc.now != nil {
		now = rc.now()
	}
	if err := webhook.Verify(rc.secret, r.Header.Get(webhook.SignatureHeader), body, now, 5*time.Minute); err != nil {
		rc.bad = append(rc.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var b webhook.Body
	if err := json.Unmarshal(body, &b); err != nil {
		rc.bad = append(rc.bad, err.Error())
	}
	if r.Header.Get(webhook.EventHeader) != b.Event || r.Header.Get(webhook.DeliveryHeader) != b.ID {
		rc.bad = append(rc.bad, "headers disagree with the body")
	}
	rc.got = append(rc.got, b)
	if rc.status != 0 {
		w.WriteHeader(rc.status)
	}
}

func (rc *receiver) events() map[string][]webhook.Body {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string][]webhook.Body{}
	for _, b := range rc.got {
		out[b.Event] = append(out[b.Event], b)
	}
	return out
}

func addWebhook(t *testing.T, s *servertest.Server, url string, events ...string) apiv1.WebhookResponse {
	t.Helper()
	var resp apiv1.WebhookResponse
	require.NoError(t, s.Client(s.Admin).Do(context.Background(), http.MethodPost, "/v1/webhooks", nil, apiv1.WebhookRequest{URL: url, Events: events}, &resp))
	require.NotEmpty(t, resp.Secret)
	return resp
}

// listen serves rc on loopback and subscribes it to events, with its
// secret set to the one the server makes.
func listen(t *testing.T, s *servertest.Server, rc *receiver, events ...string) apiv1.WebhookResponse {
	t.Helper()
	rs := httptest.NewServer(rc)
	t.Cleanup(rs.Close)
	h := addWebhook(t, s, rs.URL, events...)
	rc.mu.Lock()
	rc.secret = h.Secret
	rc.mu.Unlock()
	return h
}

func fastWebhooks() server.Config {
	return server.Config{WebhookInterval: 20 * time.Millisecond, WebhookBackoff: 50 * time.Millisecond, WebhookTimeout: 300 * time.Millisecond}
}

func TestWebhooksDeliverSignedEvents(t *testing.T) {
	s := servertest.New(t, fastWebhooks())
	rc := &receiver{}
	hook := listen(t, s, rc)
	// A second webhook that only wants revocations.
	only := &receiver{}
	h2 := listen(t, s, only, webhook.AgentRevoked)

	a := s.Enrol("", "laptop-7")
	now := time.Now().UTC()
	_, err := a.Ship(a.Record(now.Add(-time.Hour), map[string]evidence.Status{"disk_encryption.system_volume": evidence.Pass}))
	require.NoError(t, err)
	_, err = a.Ship(a.Record(now, map[string]evidence.Status{"disk_encryption.system_volume": evidence.Fail}))
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		ev := rc.events()
		return len(ev[webhook.CheckFailing]) == 1 && len(ev[webhook.ControlFailing]) >= 2
	}, 10*time.Second, 20*time.Millisecond, "check.failing and control.failing delivered")
	ev := rc.events()
	d := ev[webhook.CheckFailing][0].Data.(map[string]any)
	assert.Equal(t, "host:"+a.ID, d["asset"])
	assert.Equal(t, "laptop-7", d["hostname"])
	assert.Equal(t, "disk_encryption.system_volume", d["check"])
	assert.Equal(t, "pass", d["previous"])
	assert.ElementsMatch(t, []any{"8.24", "8.1"}, d["controls"])
	var controls []string
	for _, b := range ev[webhook.ControlFailing] {
		controls = append(controls, b.Data.(map[string]any)["control"].(string))
	}
	assert.ElementsMatch(t, []string{"8.24", "8.1"}, controls)
	assert.Equal(t, "annexa.test/log", ev[webhook.CheckFailing][0].Server)

	// Failing again is no news: no second check.failing, no second control.failing.
	_, err = a.Ship(a.Record(now.Add(time.Minute), map[string]evidence.Status{"disk_encryption.system_volume": evidence.Fail}))
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	assert.Len(t, rc.events()[webhook.CheckFailing], 1)
	assert.Len(t, rc.events()[webhook.ControlFailing], 2)

	// A revocation reaches both webhooks.
	require.NoError(t, s.Client(s.Admin).Do(context.Background(), http.MethodPost, "/v1/agents/"+a.ID+"/revoke", nil, nil, nil))
	require.Eventually(t, func() bool {
		return len(rc.events()[webhook.AgentRevoked]) == 1 && len(only.events()[webhook.AgentRevoked]) == 1
	}, 10*time.Second, 20*time.Millisecond)
	assert.Empty(t, only.events()[webhook.CheckFailing], "a webhook gets only the events it subscribed to")

	// A test ping, answered at once; listed in the delivery log.
	var res apiv1.WebhookTest
	require.NoError(t, s.Client(s.Admin).Do(context.Background(), http.MethodPost, "/v1/webhooks/"+hook.ID+"/test", nil, nil, &res))
	assert.True(t, res.Delivered)
	assert.Equal(t, http.StatusOK, res.Status)
	// Every delivery is logged as delivered, with its attempt (the log is
	// written once the receiver has answered: wait for it).
	var log apiv1.Page[apiv1.WebhookDelivery]
	require.Eventually(t, func() bool {
		log = apiv1.Page[apiv1.WebhookDelivery]{}
		require.NoError(t, s.Client(s.Admin).Do(context.Background(), http.MethodGet, "/v1/webhooks/"+hook.ID+"/deliveries", nil, nil, &log))
		for _, dl := range log.Items {
			if dl.DeliveredAt.IsZero() || len(dl.Log) == 0 {
				return false
			}
		}
		return len(log.Items) >= 5 // check.failing, two control.failing, agent.revoked, ping
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, webhook.Ping, log.Items[0].Event)
	rc.mu.Lock()
	assert.Empty(t, rc.bad, "every delivery verified")
	rc.mu.Unlock()

	// A wrong secret does not verify.
	body := []byte(`{"event":"ping"}`)
	sig := webhook.Sign(hook.Secret, time.Now(), body)
	require.NoError(t, webhook.Verify(hook.Secret, sig, body, time.Now(), time.Minute))
	require.ErrorIs(t, webhook.Verify("another secret entirely", sig, body, time.Now(), time.Minute), webhook.ErrBadSignature)
	require.ErrorIs(t, webhook.Verify(hook.Secret, sig, []byte(`{"event":"pong"}`), time.Now(), time.Minute), webhook.ErrBadSignature)
	require.ErrorIs(t, webhook.Verify(hook.Secret, sig, body, time.Now().Add(time.Hour), time.Minute), webhook.ErrTooOld)

	// Deleted: no more deliveries, listed no more.
	require.NoError(t, s.Client(s.Admin).Do(context.Background(), http.MethodDelete, "/v1/webhooks/"+hook.ID, nil, nil, nil))
	var list apiv1.Page[apiv1.Webhook]
	require.NoError(t, s.Client(s.Admin).Do(context.Background(), http.MethodGet, "/v1/webhooks", nil, nil, &list))
	require.Len(t, list.Items, 1)
	assert.Equal(t, h2.ID, list.Items[0].ID)
}

// A receiver that is down gets the event once it is up, after retries
// that back off; a slow one times out without holding up the others.
func TestWebhooksRetryDownAndSlowReceivers(t *testing.T) {
	s := servertest.New(t, fastWebhooks())
	// Down: a port nobody listens on, for now.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	down := addWebhook(t, s, "http://"+addr+"/hook", webhook.CheckFailing)
	// Slow: answers after the attempt's timeout.
	slow := &receiver{delay: 2 * time.Second}
	hs := listen(t, s, slow, webhook.CheckFailing)
	// Fast: must not wait on the slow one.
	fast := &receiver{}
	listen(t, s, fast, webhook.CheckFailing)

	a := s.Enrol("", "server-9")
	_, err = a.Ship(a.Record(time.Now().UTC(), map[string]evidence.Status{"ssh.root_login": evidence.Fail}))
	require.NoError(t, err)
	start := time.Now()
	require.Eventually(t, func() bool { return len(fast.events()[webhook.CheckFailing]) == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Less(t, time.Since(start), 2*time.Second, "the fast receiver does not wait for the slow one")

	deliveries := func(id string) []apiv1.WebhookDelivery {
		var log apiv1.Page[apiv1.WebhookDelivery]
		require.NoError(t, s.Client(s.Admin).Do(context.Background(), http.MethodGet, "/v1/webhooks/"+id+"/deliveries", nil, nil, &log))
		return log.Items
	}
	// The down one is retried, each attempt logged with its error.
	require.Eventually(t, func() bool {
		ds := deliveries(down.ID)
		return len(ds) == 1 && ds[0].Attempts >= 4
	}, 10*time.Second, 20*time.Millisecond)
	ds := deliveries(down.ID)
	assert.True(t, ds[0].DeliveredAt.IsZero())
	assert.Contains(t, ds[0].Log[0].Error, "connection refused")
	// Backing off: 50, 100, 200 ms… (the third wait is four times the
	// first, a margin no scheduling noise closes).
	gaps := []time.Duration{}
	for i := 1; i < len(ds[0].Log); i++ {
		gaps = append(gaps, ds[0].Log[i].At.Sub(ds[0].Log[i-1].At))
	}
	require.GreaterOrEqual(t, len(gaps), 3)
	assert.Greater(t, gaps[2], gaps[0])
	assert.GreaterOrEqual(t, gaps[2], 200*time.Millisecond)

	// Up now: the next retry delivers, the same delivery id as before.
	up := &receiver{secret: down.Secret}
	l, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	srv := &http.Server{Handler: up}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	require.Eventually(t, func() bool { return len(up.events()[webhook.CheckFailing]) == 1 }, 15*time.Second, 20*time.Millisecond)
	assert.Equal(t, ds[0].ID, up.events()[webhook.CheckFailing][0].ID)
	require.Eventually(t, func() bool { return !deliveries(down.ID)[0].DeliveredAt.IsZero() }, 5*time.Second, 20*time.Millisecond)

	// The slow one: attempts time out and are logged as such.
	require.Eventually(t, func() bool {
		ds := deliveries(hs.ID)
		return len(ds) == 1 && len(ds[0].Log) >= 1
	}, 10*time.Second, 20*time.Millisecond)
	assert.Contains(t, deliveries(hs.ID)[0].Log[0].Error, "Timeout")
}

// A host that stops shipping is reported once, when its results would go
// stale; shipping again makes it eligible again.
func TestWebhooksHostStale(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	cfg := fastWebhooks()
	cfg.Freshness = time.Hour
	cfg.Now = func() time.Time { return time.Unix(0, now.Load()) }
	s := servertest.New(t, cfg)
	rc := &receiver{now: cfg.Now} // the server signs with its own clock
	listen(t, s, rc, webhook.HostStale)
	a := s.Enrol("", "quiet-1")
	_, err := a.Ship(a.Record(time.Unix(0, now.Load()).UTC(), map[string]evidence.Status{"ssh.root_login": evidence.Pass}))
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)
	assert.Empty(t, rc.events()[webhook.HostStale], "not stale yet")
	now.Add(int64(2 * time.Hour))
	require.Eventually(t, func() bool { return len(rc.events()[webhook.HostStale]) == 1 }, 10*time.Second, 20*time.Millisecond, s.Log.String())
	d := rc.events()[webhook.HostStale][0].Data.(map[string]any)
	assert.Equal(t, a.ID, d["agent_id"])
	assert.Equal(t, "quiet-1", d["hostname"])
	time.Sleep(200 * time.Millisecond)
	assert.Len(t, rc.events()[webhook.HostStale], 1, "reported once")
}

// An attestation about to lapse is announced once, 30 days ahead, so that
// its person renews it before its controls go stale.
func TestWebhooksAttestationExpiring(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	cfg := fastWebhooks()
	cfg.Now = func() time.Time { return time.Unix(0, now.Load()) }
	s := servertest.New(t, cfg)
	rc := &receiver{now: cfg.Now}
	listen(t, s, rc, webhook.AttestationExpiring)
	alice, p := person(t, s, "Alice Martin", "ciso")
	_, err := s.Client("").Attest(context.Background(), alice, client.Attestation{Controls: []string{"5.1"}, Statement: "Policy v3 approved",
		ValidFor: 90 * 24 * time.Hour}, cfg.Now())
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)
	assert.Empty(t, rc.events()[webhook.AttestationExpiring], "90 days ahead: no reminder yet")
	now.Add(int64(61 * 24 * time.Hour))
	require.Eventually(t, func() bool { return len(rc.events()[webhook.AttestationExpiring]) == 1 }, 10*time.Second, 20*time.Millisecond, s.Log.String())
	d := rc.events()[webhook.AttestationExpiring][0].Data.(map[string]any)
	assert.Equal(t, p.ID, d["person_id"])
	assert.Equal(t, "Alice Martin", d["person"])
	assert.Equal(t, []any{"5.1"}, d["controls"])
	time.Sleep(200 * time.Millisecond)
	assert.Len(t, rc.events()[webhook.AttestationExpiring], 1, "reminded once")
	assert.Empty(t, rc.bad)
}

func TestWebhookRequestsAreChecked(t *testing.T) {
	s := servertest.New(t, fastWebhooks())
	c := s.Client(s.Admin)
	for _, req := range []apiv1.WebhookRequest{
		{URL: "ftp://example.com/x"},
		{URL: "not a url"},
		{URL: "https://example.com/x", Events: []string{"check.failin"}},
		{URL: "https://example.com/x", Secret: "short"},
	} {
		err := c.Do(context.Background(), http.MethodPost, "/v1/webhooks", nil, req, nil)
		require.Error(t, err, "%+v", req)
	}
	// Only an admin manages webhooks.
	analyst := s.Token(server.RoleAnalyst, apiv1.TokenRequest{})
	err := s.Client(analyst).Do(context.Background(), http.MethodGet, "/v1/webhooks", nil, nil, nil)
	require.Error(t, err)
}
