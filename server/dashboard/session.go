package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// Cookie names. The session cookie carries only a random id; what it
// stands for stays on the server, so signing out ends it for good.
const (
	sessionCookie = "annexa_session"
	signinCookie  = "annexa_signin" // the sign-in form's CSRF pair
)

// session is a signed-in browser.
type session struct {
	id      string
	tokenID string
	csrf    string
	expires time.Time
}

// sessions are kept in memory: a restart signs everyone out, and replicas
// behind a load balancer need it to keep a browser on one replica.
type sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	m   map[string]*session
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, m: map[string]*session{}}
}

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) create(tokenID string, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Expired sessions go as new ones come: the map stays as large as the
	// sessions alive.
	for id, x := range s.m {
		if now.After(x.expires) {
			delete(s.m, id)
		}
	}
	x := &session{id: randomString(), tokenID: tokenID, csrf: randomString(), expires: now.Add(s.ttl)}
	s.m[x.id] = x
	return x
}

func (s *sessions) get(id string, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.m[id]
	if x == nil {
		return nil
	}
	if now.After(x.expires) {
		delete(s.m, id)
		return nil
	}
	return x
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

func sameSecret(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// limiter counts failed sign-ins per client address: past max failures in
// a window, sign-in is refused for that address until the window ends.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	fails  map[string]*failures
}

type failures struct {
	n     int
	start time.Time
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, fails: map[string]*failures{}}
}

// blocked says whether addr must wait, and how long.
func (l *limiter) blocked(addr string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.fails[addr]
	if f == nil || now.Sub(f.start) >= l.window {
		return 0, false
	}
	if f.n >= l.max {
		return l.window - now.Sub(f.start), true
	}
	return 0, false
}

func (l *limiter) fail(addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for a, f := range l.fails {
		if now.Sub(f.start) >= l.window {
			delete(l.fails, a)
		}
	}
	f := l.fails[addr]
	if f == nil {
		f = &failures{start: now}
		l.fails[addr] = f
	}
	f.n++
}
