package dashboard

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestSafeNextStaysOnThisServer(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "/",
		"/controls/8.24?at=2026": "/controls/8.24?at=2026",
		"https://evil.example/":  "/",
		"//evil.example/":        "/",
		"/\\evil.example":        "/",
		"javascript:alert(1)":    "/",
	} {
		assert.Equal(t, want, safeNext(in), in)
	}
}

func TestLimiterBlocksThenForgets(t *testing.T) {
	l := newLimiter(3, time.Minute)
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		_, blocked := l.blocked("10.0.0.1", t0)
		assert.False(t, blocked, "failure %d", i)
		l.fail("10.0.0.1", t0)
	}
	wait, blocked := l.blocked("10.0.0.1", t0.Add(10*time.Second))
	assert.True(t, blocked)
	assert.Equal(t, 50*time.Second, wait)
	_, blocked = l.blocked("10.0.0.2", t0)
	assert.False(t, blocked, "another address is not blocked")
	_, blocked = l.blocked("10.0.0.1", t0.Add(time.Minute))
	assert.False(t, blocked, "the window ended")
}

func TestSessionsExpireAndEnd(t *testing.T) {
	s := newSessions(time.Hour)
	t0 := time.Unix(1000, 0)
	x := s.create("tok-1", t0)
	assert.NotNil(t, s.get(x.id, t0.Add(59*time.Minute)))
	assert.Nil(t, s.get(x.id, t0.Add(61*time.Minute)), "expired")
	y := s.create("tok-1", t0)
	s.end(y.id)
	assert.Nil(t, s.get(y.id, t0), "signed out")
	assert.NotEqual(t, x.csrf, y.csrf)
}
