package accesslogs

import (
	"sort"
	"strings"
	"time"
)

// maxKeys bounds each per-user and per-source table, so a log full of
// random invalid user names costs bounded memory; the rest are counted
// under "(other)".
const maxKeys = 500

// summary accumulates events. It holds counts, never lines, so its size
// does not grow with the log.
type summary struct {
	From, To   time.Time // the first and last event seen
	Lines      int64     // lines (entries, events) read
	Recognised int64     // of those, recognised as part of an authentication log
	Events     int64
	LoginsOK   counter
	LoginsFail counter
	// InvalidUsers are attempts naming users that do not exist: sshd's
	// "Invalid user" and old PAM's "check pass; user unknown".
	InvalidUsers counter
	BySource     map[string]*sourceStats
	Privileged   map[string]*privStats
	RootLogins   []rootLogin
	RootCount    int

	burst  burstDetector
	others int
}

type counter struct {
	Total  int            `json:"total"`
	ByUser map[string]int `json:"by_user"`
}

func (c *counter) add(user string, n int) {
	c.Total += n
	if c.ByUser == nil {
		c.ByUser = map[string]int{}
	}
	if _, ok := c.ByUser[user]; !ok && len(c.ByUser) >= maxKeys {
		user = "(other)"
	}
	c.ByUser[user] += n
}

type sourceStats struct {
	OK   int `json:"ok"`
	Fail int `json:"failed"`
}

type privStats struct {
	OK      int            `json:"ok"`
	Fail    int            `json:"failed"`
	Targets map[string]int `json:"as"`
	Via     map[string]int `json:"via"`
}

type rootLogin struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	Source  string    `json:"source,omitempty"`
}

func newSummary(burstFailures int, window time.Duration) *summary {
	return &summary{BySource: map[string]*sourceStats{}, Privileged: map[string]*privStats{},
		burst: burstDetector{threshold: burstFailures, window: window, recent: map[string][]failure{}}}
}

// add counts one event; a noted line counts as none.
func (s *summary) add(e event) {
	if e.Kind == noted {
		return
	}
	s.Events += int64(e.Count)
	if s.From.IsZero() || e.Time.Before(s.From) {
		s.From = e.Time
	}
	if e.Time.After(s.To) {
		s.To = e.Time
	}
	switch e.Kind {
	case loginOK, loginFail:
		src := e.Source
		if src == "" {
			src = "(local)"
		}
		st := s.BySource[src]
		if st == nil {
			if len(s.BySource) >= maxKeys {
				src = "(other)"
				st = s.BySource[src]
			}
			if st == nil {
				st = &sourceStats{}
				s.BySource[src] = st
			}
		}
		if e.Kind == loginOK {
			s.LoginsOK.add(e.User, e.Count)
			st.OK += e.Count
			if e.User == "root" {
				s.RootCount += e.Count
				if len(s.RootLogins) < 100 {
					s.RootLogins = append(s.RootLogins, rootLogin{Time: e.Time, Service: e.Service, Source: e.Source})
				}
			}
		} else {
			s.LoginsFail.add(e.User, e.Count)
			st.Fail += e.Count
			if e.Service == "sshd" || e.Service == "login" || strings.HasPrefix(e.Service, "windows") {
				s.burst.fail(src, e.User, e.Time, e.Count)
			}
		}
	case invalidUser:
		s.InvalidUsers.add(e.User, e.Count)
	case privOK, privFail:
		p := s.Privileged[e.User]
		if p == nil {
			if len(s.Privileged) >= maxKeys {
				s.others++
				return
			}
			p = &privStats{Targets: map[string]int{}, Via: map[string]int{}}
			s.Privileged[e.User] = p
		}
		if e.Kind == privOK {
			p.OK += e.Count
			p.Targets[e.Target] += e.Count
			p.Via[e.Service] += e.Count
		} else {
			p.Fail += e.Count
		}
	}
}

// burstDetector finds brute-force bursts: at least threshold failed logins
// from one source within window. Per source it keeps the failures inside
// the window (at most threshold entries, each with its repeat count), so
// its memory does not grow with the log or with "message repeated N
// times".
type burstDetector struct {
	threshold int
	window    time.Duration
	recent    map[string][]failure
	Bursts    []burst
	open      map[string]int // source -> index of its burst in Bursts while it lasts
	unlisted  int            // names tracked beyond burstUsers, across bursts
}

type failure struct {
	t    time.Time
	user string
	n    int
}

// burstUsers is how many user names a burst lists; the rest are counted.
const burstUsers = 20

// maxUnlisted bounds the names kept, across all bursts, only to count
// distinct unlisted users; past it the count is a lower bound.
const maxUnlisted = 20000

type burst struct {
	Source   string         `json:"source"`
	Start    time.Time      `json:"start"`
	End      time.Time      `json:"end"`
	Failures int            `json:"failures"`
	Users    map[string]int `json:"users"`
	// MoreUsers are distinct users beyond the listed ones, with
	// MoreUsersFailures failures between them; MoreUsersAtLeast when the
	// count stopped being exact.
	MoreUsers         int  `json:"more_users,omitempty"`
	MoreUsersFailures int  `json:"more_users_failures,omitempty"`
	MoreUsersAtLeast  bool `json:"more_users_at_least,omitempty"`

	seen map[string]bool // unlisted names, only to count them
}

func (bu *burst) addUser(b *burstDetector, user string, n int) {
	if _, ok := bu.Users[user]; ok || len(bu.Users) < burstUsers {
		bu.Users[user] += n
		return
	}
	bu.MoreUsersFailures += n
	if bu.seen[user] {
		return
	}
	if b.unlisted >= maxUnlisted {
		bu.MoreUsersAtLeast = true
		return
	}
	if bu.seen == nil {
		bu.seen = map[string]bool{}
	}
	bu.seen[user] = true
	b.unlisted++
	bu.MoreUsers++
}

func (b *burstDetector) fail(src, user string, t time.Time, n int) {
	if b.threshold <= 0 {
		return
	}
	if b.open == nil {
		b.open = map[string]int{}
	}
	if i, ok := b.open[src]; ok {
		bu := &b.Bursts[i]
		if t.Sub(bu.End) <= b.window {
			bu.End, bu.Failures = t, bu.Failures+n
			bu.addUser(b, user, n)
			return
		}
		b.unlisted -= len(bu.seen)
		bu.seen = nil
		delete(b.open, src)
	}
	r, known := b.recent[src]
	if !known && len(b.recent) >= 10*maxKeys {
		return // bounded: a flood of sources is itself visible in by_source
	}
	r = append(r, failure{t: t, user: user, n: n})
	// keep only failures inside the window ending at t
	cut := 0
	for cut < len(r) && t.Sub(r[cut].t) > b.window {
		cut++
	}
	r = r[cut:]
	total := 0
	for _, f := range r {
		total += f.n
	}
	if total >= b.threshold {
		bu := burst{Source: src, Start: r[0].t, End: t, Users: map[string]int{}}
		for _, f := range r {
			bu.Failures += f.n
			bu.addUser(b, f.user, f.n)
		}
		b.Bursts = append(b.Bursts, bu)
		b.open[src] = len(b.Bursts) - 1
		r = nil
	} else if len(r) > b.threshold {
		r = r[len(r)-b.threshold:]
	}
	b.recent[src] = r
}

// topUsers is a table's largest entries, for a readable reason.
func topUsers(m map[string]int, n int) []string {
	type kv struct {
		k string
		v int
	}
	all := make([]kv, 0, len(m))
	for k, v := range m {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v || (all[i].v == all[j].v && all[i].k < all[j].k) })
	out := []string{}
	for i := 0; i < len(all) && i < n; i++ {
		out = append(out, all[i].k)
	}
	return out
}
