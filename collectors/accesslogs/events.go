package accesslogs

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// kind is what an authentication log line means.
type kind uint8

const (
	// noted is a line recognised as part of the authentication record
	// that is no event of its own: a session closing, cron's PAM session,
	// or PAM's echo of a failure its service logs itself ("Failed password"
	// and "pam_unix(sshd:auth): authentication failure" are one attempt).
	noted       kind = iota
	loginOK          // a user logged in (ssh, console, display manager)
	loginFail        // a login attempt failed
	privOK           // sudo or su to another user
	privFail         // a failed sudo or su
	invalidUser      // an attempt naming a user that does not exist
)

// event is one authentication event. Count > 1 for rsyslog's "message
// repeated N times".
type event struct {
	Time    time.Time
	Kind    kind
	User    string // who logged in, or who escalated
	Target  string // for privOK/privFail: the user escalated to
	Source  string // remote address, or the terminal for local logins
	Service string // sshd, login, gdm, sudo, su
	Invalid bool   // the user does not exist
	Count   int
}

// services whose messages carry authentication events; everything else is
// skipped after looking at the tag only, which keeps a big log fast.
var services = map[string]string{
	"sshd": "sshd", "sshd-session": "sshd", "login": "login", "sudo": "sudo", "su": "su",
	"gdm-password]": "gdm", "gdm-password": "gdm", "lightdm": "lightdm", "sddm-helper": "sddm",
	"gdm": "gdm", "kdm": "kdm", "xdm": "xdm",
}

// authTags are programs that write to the authentication log without
// authentication events of their own: their lines are recognised (the
// log is an authentication log) and not counted.
var authTags = map[string]bool{
	"CRON": true, "cron": true, "crond": true, "systemd-logind": true, "polkitd": true, "polkit-agent-helper-1": true,
	"passwd": true, "chpasswd": true, "chage": true, "chfn": true, "chsh": true, "useradd": true, "userdel": true,
	"usermod": true, "groupadd": true, "groupdel": true, "groupmod": true, "gpasswd": true, "newusers": true,
	"unix_chkpwd": true, "pkexec": true, "runuser": true, "systemd-user": true, "atd": true, "sshd-auth": true,
}

// parseSyslogLine reads one line of auth.log or secure: a timestamp
// (RFC 3339, or the traditional "Nov 27 04:26:30" whose year is inferred
// from now), the host, the tag, the message.
func parseSyslogLine(line string, now time.Time) (event, bool) {
	return parseSyslogBytes([]byte(line), now)
}

// parseSyslogBytes is parseSyslogLine on the scanner's buffer. It reports
// whether the line was recognised as part of an authentication log; its
// event's Kind is noted for a recognised line that counts as no event. It
// finds the tag first and looks no further at lines of other programs,
// without allocating: most of a big auth.log is CRON and PAM noise.
func parseSyslogBytes(line []byte, now time.Time) (event, bool) {
	var tsLen int
	switch {
	case len(line) > 20 && line[4] == '-' && line[10] == 'T':
		tsLen = bytes.IndexByte(line, ' ')
		if tsLen < 0 {
			return event{}, false
		}
	case len(line) > 16 && line[3] == ' ' && line[15] == ' ' && monthOf(line) > 0:
		tsLen = 15
	default:
		return event{}, false
	}
	rest := line[tsLen+1:]
	// host, then "tag[pid]: " or "tag: "
	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return event{}, false
	}
	rest = rest[sp+1:]
	if bytes.HasPrefix(rest, []byte(" -- ")) {
		// RHEL 4's login writes "host  -- alice[pid]: LOGIN ON pts/13 BY
		// alice" beside its PAM session line, which is the one counted.
		if bytes.Contains(rest, []byte("]: LOGIN ON ")) || bytes.Contains(rest, []byte("]: ROOT LOGIN ON ")) {
			return event{Service: "login"}, true
		}
		return event{}, false
	}
	colon := bytes.Index(rest, []byte(": "))
	if colon <= 0 {
		return event{}, false
	}
	tag := rest[:colon]
	msg := rest[colon+2:]
	if b := bytes.IndexByte(tag, '['); b > 0 {
		tag = tag[:b]
	} else if b == 0 {
		return event{}, false
	}
	svc, known := services[string(tag)]
	module := ""
	if !known {
		// "sshd(pam_unix)": PAM before Linux-PAM 0.99 named the module in
		// the tag (RHEL 4, Fedora Core 3) and wrote its messages bare.
		if p := bytes.IndexByte(tag, '('); p > 0 && tag[len(tag)-1] == ')' && bytes.HasPrefix(tag[p+1:], []byte("pam_")) {
			svc, module = services[string(tag[:p])], string(tag[p+1:len(tag)-1])
			if svc == "" {
				return event{}, true // another service's PAM line: recognised, no event
			}
		} else {
			return event{}, authTags[string(tag)] || bytes.HasPrefix(msg, []byte("pam_"))
		}
	}
	var ts time.Time
	if tsLen == 15 {
		t, ok := yearless(line[:15], now)
		if !ok {
			return event{}, false
		}
		ts = t
	} else {
		t, err := time.Parse(time.RFC3339Nano, string(line[:tsLen]))
		if err != nil {
			return event{}, false
		}
		ts = t
	}
	if module != "" {
		e := event{Time: ts, Service: svc, Count: 1}
		parseOldPAM(&e, string(msg))
		return e, true
	}
	return parseMessage(ts, string(tag), string(msg))
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func monthOf(line []byte) time.Month {
	for i, m := range months {
		if line[0] == m[0] && line[1] == m[1] && line[2] == m[2] {
			return time.Month(i + 1)
		}
	}
	return 0
}

// skew is how far past now a year-less timestamp may be and still be this
// year's: the logging host's clock may run a little ahead of the agent's.
const skew = time.Hour

// yearless dates a traditional "Jan _2 15:04:05" timestamp: the most
// recent such date not after now (plus skew). A line from last December
// read in January is last year's; a Feb 29 line belongs to the last leap
// year; a line from a year ago whose day is tomorrow is last year's.
func yearless(b []byte, now time.Time) (time.Time, bool) {
	month := monthOf(b)
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			switch {
			case c == ' ' && n == 0:
			case c >= '0' && c <= '9':
				n = n*10 + int(c-'0')
			default:
				return 0, false
			}
		}
		return n, true
	}
	day, ok1 := num(b[4:6])
	hh, ok2 := num(b[7:9])
	mm, ok3 := num(b[10:12])
	ss, ok4 := num(b[13:15])
	if month == 0 || !ok1 || !ok2 || !ok3 || !ok4 || b[6] != ' ' || b[9] != ':' || b[12] != ':' ||
		day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, false
	}
	limit := now.Add(skew)
	for y := now.Year(); y >= now.Year()-8; y-- {
		t := time.Date(y, month, day, hh, mm, ss, 0, now.Location())
		if t.Month() != month {
			continue // Feb 29 of a common year, Apr 31
		}
		if !t.After(limit) {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseMessage reads the message of one line tagged by a service that
// carries authentication events. Every such line is recognised; the event
// says what it counts as.
func parseMessage(ts time.Time, tag, msg string) (event, bool) {
	svc, ok := services[tag]
	if !ok {
		return event{}, authTags[tag] || strings.HasPrefix(msg, "pam_")
	}
	count := 1
	if r, ok := strings.CutPrefix(msg, "message repeated "); ok {
		n, after, found := strings.Cut(r, " times: [ ")
		c, err := strconv.Atoi(n)
		if !found || err != nil || c < 1 {
			return event{Service: svc}, true
		}
		count, msg = c, strings.TrimSuffix(after, "]")
	}
	e := event{Time: ts, Service: svc, Count: count}
	switch svc {
	case "sshd":
		parseSSHD(&e, msg)
	case "sudo":
		parseSudo(&e, msg)
	case "su":
		parseSu(&e, msg)
	case "login":
		parseLogin(&e, msg)
	default: // display managers: PAM session and auth lines
		parsePAM(&e, msg)
	}
	if e.Kind != noted && e.User == "" {
		e.Kind = noted // an event without a user is no event to count
	}
	return e, true
}

// parseSSHD reads OpenSSH's own lines. Its PAM lines ("pam_unix(sshd:auth):
// authentication failure", "PAM 2 more authentication failures") and the
// preauth endings ("Disconnected from authenticating user", "maximum
// authentication attempts exceeded") repeat attempts its "Failed" lines
// already count: they are recognised and not counted again.
func parseSSHD(e *event, msg string) {
	var r string
	var ok bool
	switch {
	case strings.HasPrefix(msg, "Accepted "):
		e.Kind, r = loginOK, msg[len("Accepted "):]
	case strings.HasPrefix(msg, "Failed "):
		e.Kind, r = loginFail, msg[len("Failed "):]
	case strings.HasPrefix(msg, "Invalid user "):
		// "Invalid user admin from 203.0.113.9 port 4711"
		user, rest, ok := cutLast(msg[len("Invalid user "):], " from ")
		if !ok {
			return
		}
		e.Kind, e.User, e.Invalid = invalidUser, orBlank(user), true
		e.Source, _, _ = strings.Cut(rest, " ")
		return
	default:
		return
	}
	// "<method> for [invalid user ]<user> from <addr> port <n> ..."
	if _, r, ok = strings.Cut(r, " for "); !ok {
		e.Kind = noted
		return
	}
	if r, ok = strings.CutPrefix(r, "invalid user "); ok {
		e.Invalid = true
	}
	user, r, ok := cutLast(r, " from ")
	if !ok {
		e.Kind = noted
		return
	}
	e.User = orBlank(user)
	e.Source, _, _ = strings.Cut(r, " ")
}

// orBlank names an empty user name, which attackers try.
func orBlank(user string) string {
	if strings.TrimSpace(user) == "" {
		return "(blank)"
	}
	return user
}

// cutLast splits at the last sep (a user name may contain spaces in an
// attacker's attempt; the address never does).
func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+len(sep):], true
}

// sudo: "alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id"
// or "alice : 3 incorrect password attempts ; TTY=... ; USER=root ; COMMAND=..."
// or "alice : user NOT in sudoers ; TTY=... ; USER=root ; COMMAND=...".
// Its PAM lines repeat these and are not counted.
func parseSudo(e *event, msg string) {
	user, r, ok := strings.Cut(strings.TrimSpace(msg), " : ")
	if !ok || strings.Contains(user, " ") {
		return
	}
	fields := strings.Split(r, " ; ")
	kind := privOK
	first := fields[0]
	if n, rest, ok := strings.Cut(first, " incorrect password attempt"); ok && rest != first {
		c, err := strconv.Atoi(n)
		if err != nil {
			return
		}
		kind, e.Count = privFail, e.Count*c
	} else if strings.Contains(first, "NOT in sudoers") || strings.Contains(first, "command not allowed") {
		kind = privFail
	}
	e.Kind, e.User, e.Target = kind, user, "root"
	for _, f := range fields {
		if v, ok := strings.CutPrefix(f, "USER="); ok {
			e.Target = v
		}
		if v, ok := strings.CutPrefix(f, "TTY="); ok {
			e.Source = v
		}
	}
}

// su: "(to root) alice on pts/0", "FAILED SU (to root) alice on pts/0",
// and util-linux's "FAILED su for root by alice". Its PAM lines repeat
// these and are not counted.
func parseSu(e *event, msg string) {
	kind := privOK
	if r, ok := strings.CutPrefix(msg, "FAILED SU "); ok {
		kind, msg = privFail, r
	} else if r, ok := strings.CutPrefix(msg, "FAILED su for "); ok {
		target, user, ok := strings.Cut(r, " by ")
		if !ok {
			return
		}
		e.Kind, e.Target, e.User = privFail, target, user
		return
	}
	r, ok := strings.CutPrefix(msg, "(to ")
	if !ok {
		return
	}
	target, r, ok := strings.Cut(r, ") ")
	if !ok {
		return
	}
	user, tty, _ := strings.Cut(r, " on ")
	e.Kind, e.Target, e.User, e.Source = kind, target, user, tty
}

// login: "ROOT LOGIN  on '/dev/tty1'", "FAILED LOGIN (1) on '/dev/tty1' FOR
// 'alice', Authentication failure" (shadow), RHEL 4's "FAILED LOGIN 1 FROM
// (null) FOR alice, Authentication failure", and the PAM session line for
// users other than root (whose login "ROOT LOGIN" already counts).
func parseLogin(e *event, msg string) {
	switch {
	case strings.HasPrefix(msg, "ROOT LOGIN "):
		e.Kind, e.User = loginOK, "root"
		e.Source = quoted(msg)
		return
	case strings.HasPrefix(msg, "FAILED LOGIN "):
		e.Kind = loginFail
		r := msg[len("FAILED LOGIN "):]
		if _, on, ok := strings.Cut(r, " on "); ok {
			e.Source = quoted(on)
		} else if _, from, ok := strings.Cut(r, " FROM "); ok {
			if src, _, _ := strings.Cut(from, " "); src != "(null)" {
				e.Source = src
			}
		}
		if _, u, ok := strings.Cut(r, " FOR "); ok {
			if q := quoted(u); q != "" {
				e.User = q
			} else {
				name, _, _ := strings.Cut(u, ",")
				e.User = orBlank(strings.TrimSpace(name))
			}
		}
		return
	}
	parsePAM(e, msg)
	if e.Kind == loginOK && e.User == "root" {
		e.Kind = noted // "ROOT LOGIN" already counted this one
	}
	if e.Kind == loginFail {
		e.Kind = noted // "FAILED LOGIN" counts it
	}
}

func quoted(s string) string {
	_, r, ok := strings.Cut(s, "'")
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(r, "'")
	return v
}

// parsePAM reads pam_unix lines of login services (not sshd or sudo, whose
// own lines are clearer): "pam_unix(gdm-password:session): session opened
// for user alice(uid=1000) by (uid=0)" and "pam_unix(gdm-password:auth):
// authentication failure; logname= uid=0 ... user=alice".
func parsePAM(e *event, msg string) {
	r, ok := strings.CutPrefix(msg, "pam_unix(")
	if !ok {
		return
	}
	_, r, _ = strings.Cut(r, "): ")
	if u, ok := sessionUser(r); ok {
		e.Kind, e.User = loginOK, u
		return
	}
	if f, ok := pamFailure(r); ok {
		e.Kind, e.User, e.Source = loginFail, f["user"], f["rhost"]
	}
}

// parseOldPAM reads a message of PAM before Linux-PAM 0.99, tagged
// "sshd(pam_unix)", "su(pam_unix)", "login(pam_unix)": the service's own
// lines went elsewhere (sshd's "Failed password" to /var/log/secure), so in
// /var/log/messages these are the only record and are counted.
func parseOldPAM(e *event, msg string) {
	if strings.HasPrefix(msg, "check pass; user unknown") {
		e.Kind, e.User, e.Invalid = invalidUser, "(unknown)", true
		return
	}
	switch e.Service {
	case "su":
		// "session opened for user news by (uid=0)", "... for user root by
		// chetanv(uid=1069)"
		if r, ok := strings.CutPrefix(msg, "session opened for user "); ok {
			target, by, _ := strings.Cut(r, " by ")
			e.Kind, e.Target, e.User = privOK, target, uidName(by)
			return
		}
		if f, ok := pamFailure(msg); ok {
			e.Kind, e.Target = privFail, f["user"]
			e.User = f["ruser"]
			if e.User == "" {
				e.User = f["logname"]
			}
			if e.User == "" {
				e.User = uidName("(uid=" + f["uid"] + ")")
			}
		}
	case "login":
		if u, ok := sessionUser(msg); ok {
			e.Kind, e.User = loginOK, u // the session line is login's only count here
		}
		// Failures: login's "FAILED LOGIN" line counts them.
	default: // sshd and display managers
		if u, ok := sessionUser(msg); ok {
			e.Kind, e.User = loginOK, u
			if e.Service == "sshd" {
				e.Source = "(not logged)"
			}
			return
		}
		if f, ok := pamFailure(msg); ok {
			e.Kind, e.User, e.Source = loginFail, f["user"], f["rhost"]
			if e.User == "" {
				e.User = "(unknown)" // PAM names no user it does not know
			}
		}
	}
}

// sessionUser reads "session opened for user alice(uid=1000) by ..." and
// the older "session opened for user alice by ...".
func sessionUser(msg string) (string, bool) {
	r, ok := strings.CutPrefix(msg, "session opened for user ")
	if !ok {
		return "", false
	}
	end := strings.IndexAny(r, "( ")
	if end < 0 {
		end = len(r)
	}
	return r[:end], end > 0
}

// uidName reads PAM's "by alice(uid=1000)" or "by (uid=0)": the name, else
// root for uid 0, else "uid=N".
func uidName(by string) string {
	name, uid, _ := strings.Cut(strings.TrimSpace(by), "(")
	if name != "" && name != "LOGIN" {
		return name
	}
	uid = strings.TrimSuffix(strings.TrimPrefix(uid, "uid="), ")")
	switch uid {
	case "0":
		return "root"
	case "":
		return "(unknown)"
	}
	return "uid=" + uid
}

// pamFailure reads "authentication failure; logname= uid=0 euid=0
// tty=NODEVssh ruser= rhost=218.188.2.4  user=root" into its fields.
func pamFailure(msg string) (map[string]string, bool) {
	r, ok := strings.CutPrefix(msg, "authentication failure;")
	if !ok {
		return nil, false
	}
	f := map[string]string{}
	for _, kv := range strings.Fields(r) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			f[k] = v
		}
	}
	return f, true
}
