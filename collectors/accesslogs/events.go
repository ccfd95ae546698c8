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
	none      kind = iota
	loginOK        // a user logged in (ssh, console, display manager)
	loginFail      // a login attempt failed
	privOK         // sudo or su to another user
	privFail       // a failed sudo or su
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
}

// parseSyslogLine reads one line of auth.log or secure: a timestamp
// (RFC 3339, or the traditional "Nov 27 04:26:30" whose year is inferred
// from now), the host, the tag, the message.
func parseSyslogLine(line string, now time.Time) (event, bool) {
	return parseSyslogBytes([]byte(line), now)
}

// parseSyslogBytes is parseSyslogLine on the scanner's buffer. It finds the
// tag first and looks no further at lines of other programs, without
// allocating: most of a big auth.log is CRON and PAM noise.
func parseSyslogBytes(line []byte, now time.Time) (event, bool) {
	var tsLen int
	switch {
	case len(line) > 20 && line[4] == '-' && line[10] == 'T':
		tsLen = bytes.IndexByte(line, ' ')
		if tsLen < 0 {
			return event{}, false
		}
	case len(line) > 16 && line[3] == ' ' && line[15] == ' ':
		tsLen = 15
	default:
		return event{}, false
	}
	rest := line[tsLen+1:]
	// host, then "tag[pid]: " or "tag: "
	sp := bytes.IndexByte(rest, ' ')
	if sp < 0 {
		return event{}, false
	}
	rest = rest[sp+1:]
	colon := bytes.Index(rest, []byte(": "))
	if colon < 0 {
		return event{}, false
	}
	tag := rest[:colon]
	if b := bytes.IndexByte(tag, '['); b > 0 {
		tag = tag[:b]
		if string(tag) == "gdm-password]" || string(tag) == "gdm-password" {
			tag = []byte("gdm-password")
		}
	} else if b == 0 {
		return event{}, false
	}
	if _, ok := services[string(tag)]; !ok {
		return event{}, false
	}
	var ts time.Time
	if tsLen == 15 {
		t, err := time.ParseInLocation("Jan _2 15:04:05", string(line[:15]), now.Location())
		if err != nil {
			return event{}, false
		}
		ts = t.AddDate(now.Year(), 0, 0)
		if ts.After(now.Add(48 * time.Hour)) { // December's lines read in January
			ts = ts.AddDate(-1, 0, 0)
		}
	} else {
		t, err := time.Parse(time.RFC3339Nano, string(line[:tsLen]))
		if err != nil {
			return event{}, false
		}
		ts = t
	}
	return parseMessage(ts, string(tag), string(rest[colon+2:]))
}

// parseMessage reads the message of one tagged line.
func parseMessage(ts time.Time, tag, msg string) (event, bool) {
	svc, ok := services[tag]
	if !ok {
		return event{}, false
	}
	count := 1
	if r, ok := strings.CutPrefix(msg, "message repeated "); ok {
		n, after, found := strings.Cut(r, " times: [ ")
		c, err := strconv.Atoi(n)
		if !found || err != nil {
			return event{}, false
		}
		count, msg = c, strings.TrimSuffix(after, "]")
	}
	e := event{Time: ts, Service: svc, Count: count}
	switch svc {
	case "sshd":
		return e, parseSSHD(&e, msg)
	case "sudo":
		return e, parseSudo(&e, msg)
	case "su":
		return e, parseSu(&e, msg)
	case "login":
		return e, parseLogin(&e, msg)
	default: // display managers: PAM session and auth lines
		return e, parsePAM(&e, msg)
	}
}

func parseSSHD(e *event, msg string) bool {
	var r string
	var ok bool
	switch {
	case strings.HasPrefix(msg, "Accepted "):
		e.Kind, r = loginOK, msg[len("Accepted "):]
	case strings.HasPrefix(msg, "Failed "):
		e.Kind, r = loginFail, msg[len("Failed "):]
	default:
		return false
	}
	// "<method> for [invalid user ]<user> from <addr> port <n> ..."
	if _, r, ok = strings.Cut(r, " for "); !ok {
		return false
	}
	if r, ok = strings.CutPrefix(r, "invalid user "); ok {
		e.Invalid = true
	}
	user, r, ok := cutLast(r, " from ")
	if !ok {
		return false
	}
	e.User = user
	e.Source, _, _ = strings.Cut(r, " ")
	return true
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
func parseSudo(e *event, msg string) bool {
	user, r, ok := strings.Cut(strings.TrimSpace(msg), " : ")
	if !ok || strings.Contains(user, " ") {
		return false
	}
	e.User = user
	fields := strings.Split(r, " ; ")
	e.Kind = privOK
	first := fields[0]
	if n, rest, ok := strings.Cut(first, " incorrect password attempt"); ok && rest != first {
		c, err := strconv.Atoi(n)
		if err != nil {
			return false
		}
		e.Kind, e.Count = privFail, e.Count*c
	} else if strings.Contains(first, "NOT in sudoers") || strings.Contains(first, "command not allowed") {
		e.Kind = privFail
	}
	e.Target = "root"
	for _, f := range fields {
		if v, ok := strings.CutPrefix(f, "USER="); ok {
			e.Target = v
		}
		if v, ok := strings.CutPrefix(f, "TTY="); ok {
			e.Source = v
		}
	}
	return true
}

// su: "(to root) alice on pts/0", "FAILED SU (to root) alice on pts/0",
// and util-linux's "FAILED su for root by alice".
func parseSu(e *event, msg string) bool {
	e.Kind = privOK
	if r, ok := strings.CutPrefix(msg, "FAILED SU "); ok {
		e.Kind, msg = privFail, r
	} else if r, ok := strings.CutPrefix(msg, "FAILED su for "); ok {
		target, user, ok := strings.Cut(r, " by ")
		if !ok {
			return false
		}
		e.Kind, e.Target, e.User = privFail, target, user
		return true
	}
	r, ok := strings.CutPrefix(msg, "(to ")
	if !ok {
		return false
	}
	target, r, ok := strings.Cut(r, ") ")
	if !ok {
		return false
	}
	user, tty, _ := strings.Cut(r, " on ")
	e.Target, e.User, e.Source = target, user, tty
	return e.User != ""
}

// login: "ROOT LOGIN  on '/dev/tty1'", "FAILED LOGIN (1) on '/dev/tty1' FOR
// 'alice', Authentication failure", and the PAM session line.
func parseLogin(e *event, msg string) bool {
	switch {
	case strings.HasPrefix(msg, "ROOT LOGIN "):
		e.Kind, e.User = loginOK, "root"
		e.Source = quoted(msg)
		return true
	case strings.HasPrefix(msg, "FAILED LOGIN "):
		e.Kind = loginFail
		_, r, _ := strings.Cut(msg, " on ")
		e.Source = quoted(r)
		if _, u, ok := strings.Cut(r, " FOR "); ok {
			e.User = quoted(u)
		}
		return e.User != ""
	}
	if ok := parsePAM(e, msg); ok && e.User == "root" {
		// "ROOT LOGIN" already counted this one.
		return false
	} else {
		return ok
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
func parsePAM(e *event, msg string) bool {
	if !strings.HasPrefix(msg, "pam_unix(") {
		return false
	}
	if _, r, ok := strings.Cut(msg, "session opened for user "); ok {
		user, _, _ := strings.Cut(r, "(")
		user, _, _ = strings.Cut(user, " ")
		e.Kind, e.User = loginOK, user
		return user != ""
	}
	if strings.Contains(msg, "authentication failure;") {
		_, u, ok := strings.Cut(msg, " user=")
		if !ok {
			return false
		}
		e.Kind, e.User = loginFail, strings.TrimSpace(u)
		return e.User != ""
	}
	return false
}
