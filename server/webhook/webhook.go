// Package webhook is what Annexa's notifications look like on the wire:
// the events a security team subscribes to, the JSON body, the HMAC
// signature a receiver checks, and the retry schedule. The server's
// dispatcher (server/webhooks.go) queues and sends them; a receiver in Go
// can call Verify.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The events, as a subscription names them.
const (
	// CheckFailing: an asset's result for a check became fail.
	CheckFailing = "check.failing"
	// ControlFailing: a control that no asset failed now has one failing.
	ControlFailing = "control.failing"
	// HostStale: an agent has shipped nothing for longer than results stay fresh.
	HostStale = "host.stale"
	// AgentRevoked: an admin revoked an agent.
	AgentRevoked = "agent.revoked"
	// ServerLagging: a server's database is slow or its disk nearly full:
	// ingest is at risk.
	ServerLagging = "server.lagging"
	// AttestationExpiring: a person's attestation lapses within 30 days;
	// its controls then go stale unless it is renewed (annexa attest).
	AttestationExpiring = "attestation.expiring"
	// Ping is what `annexa webhook test` sends.
	Ping = "ping"
)

// Events are the events a webhook can subscribe to.
var Events = []string{CheckFailing, ControlFailing, HostStale, AgentRevoked, AttestationExpiring, ServerLagging}

// CheckEvents validates a subscription: known events, none twice. Empty
// subscribes to all.
func CheckEvents(events []string) error {
	seen := map[string]bool{}
	for _, e := range events {
		if !slices.Contains(Events, e) {
			return fmt.Errorf("event %q: want one of %s", e, strings.Join(Events, ", "))
		}
		if seen[e] {
			return fmt.Errorf("event %q given twice", e)
		}
		seen[e] = true
	}
	return nil
}

// Wants says whether a subscription (empty: all) takes event. Every
// webhook takes pings.
func Wants(subscribed []string, event string) bool {
	return event == Ping || len(subscribed) == 0 || slices.Contains(subscribed, event)
}

// Body is what a webhook receives.
type Body struct {
	ID    string    `json:"id"` // the delivery's id: the same on every retry, for receivers that dedupe
	Event string    `json:"event"`
	At    time.Time `json:"at"`
	// Server is the log's origin: which Annexa server sent it.
	Server string `json:"server"`
	Data   any    `json:"data"`
}

// Headers of a delivery.
const (
	SignatureHeader = "Annexa-Signature"
	EventHeader     = "Annexa-Event"
	DeliveryHeader  = "Annexa-Delivery"
)

// Sign is the Annexa-Signature header for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>". The time
// is signed so a captured delivery cannot be replayed later.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Errors of Verify.
var (
	ErrBadSignature = errors.New("webhook signature does not match")
	ErrTooOld       = errors.New("webhook signature is outside the tolerance")
)

// Verify checks a delivery's Annexa-Signature header against its body and
// the webhook's secret, and that it was signed within tolerance of now.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("%w: header %q is not t=…,v1=…", ErrBadSignature, header)
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, ts, body))) {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %s ago", ErrTooOld, d.Round(time.Second))
	}
	return nil
}

// Retry schedule: attempt n (from 1) failed, the next waits base·2^(n-1),
// at most MaxBackoff; after MaxAttempts the delivery is given up and stays
// in the delivery log as failed.
const (
	MaxAttempts = 12
	MaxBackoff  = time.Hour
)

// Backoff is the wait after the n-th failed attempt.
func Backoff(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}
