// Package screenlock checks that every logged-in user's session locks
// itself when idle, with a password (8.1, 7.7).
//
// The agent runs as root but the setting lives in each user's session, so
// it is read per user: on Linux every graphical session loginctl lists
// (GNOME's dconf database, with the administrator's locked keys in
// /etc/dconf/db taking precedence; KDE's kscreenlockerrc); on macOS every
// console user's screensaver idle time and screen-lock delay; on Windows
// every loaded user hive (HKEY_USERS), with the machine inactivity limit and
// the policy keys taking precedence. A machine with no graphical sessions
// and no display manager (a server) is not_applicable.
package screenlock

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

func init() { collectors.Register(Collector{}) }

// Collector is the screen_lock collector.
type Collector struct{}

// Name implements collectors.Collector.
func (Collector) Name() string { return "screen_lock" }

// Version implements collectors.Collector.
func (Collector) Version() string { return "1.0.0" }

const (
	checkIdle     = "screen_lock.idle_timeout"
	checkPassword = "screen_lock.password_required"
)

// Checks implements collectors.Collector.
func (Collector) Checks() []evidence.Check {
	fresh := evidence.Duration(26 * time.Hour)
	p := []string{"linux", "darwin", "windows"}
	return []evidence.Check{
		{ID: checkIdle, Title: "Screen locks after 15 minutes idle or less", Controls: []string{"8.1", "7.7"}, Platforms: p, Freshness: fresh},
		{ID: checkPassword, Title: "Unlocking the screen needs the password", Controls: []string{"8.1", "7.7"}, Platforms: p, Freshness: fresh},
	}
}

// userLock is what one user's session says.
type userLock struct {
	User        string `json:"user"`
	Desktop     string `json:"desktop"`
	LockAfter   int    `json:"lock_after_seconds"` // 0: never
	Password    bool   `json:"password_required"`
	Source      string `json:"source"` // where the values came from
	Err         string `json:"error,omitempty"`
	EnforcedBy  string `json:"enforced_by,omitempty"`
	IdleSeconds int    `json:"idle_seconds,omitempty"`
}

// Collect implements collectors.Collector.
func (c Collector) Collect(ctx context.Context, h *host.Host, settings collectors.Settings) ([]evidence.Result, error) {
	max := collectors.SettingsOf(settings, defaults).MaxIdleMinutes * 60
	var users []userLock
	var na string
	var err error
	switch h.OS {
	case "linux":
		users, na, err = linuxUsers(ctx, h)
	case "darwin":
		users, na, err = darwinUsers(ctx, h)
	case "windows":
		users, na, err = windowsUsers(ctx, h)
	default:
		return collectors.ErrorResults(c, "screen_lock: no reader for "+h.OS), nil
	}
	if err != nil {
		return collectors.ErrorResults(c, err.Error()), nil
	}
	if na != "" {
		return []evidence.Result{
			{Check: checkIdle, Status: evidence.NotApplicable, Reason: na},
			{Check: checkPassword, Status: evidence.NotApplicable, Reason: na},
		}, nil
	}
	return decide(users, max), nil
}

func decide(users []userLock, max int) []evidence.Result {
	sort.Slice(users, func(i, j int) bool { return users[i].User < users[j].User })
	obs := evidence.Observe(map[string]any{"users": users, "max_idle_seconds": max})
	var errs, slow, nopass []string
	for _, u := range users {
		switch {
		case u.Err != "":
			errs = append(errs, u.User+": "+u.Err)
			continue
		case u.LockAfter == 0:
			slow = append(slow, u.User+" (never locks)")
		case u.LockAfter > max:
			slow = append(slow, fmt.Sprintf("%s (%d min)", u.User, (u.LockAfter+59)/60))
		}
		if !u.Password {
			nopass = append(nopass, u.User)
		}
	}
	idle := evidence.Result{Check: checkIdle, Observations: obs}
	pw := evidence.Result{Check: checkPassword, Observations: obs}
	names := func() string {
		n := make([]string, len(users))
		for i, u := range users {
			n[i] = u.User
		}
		return strings.Join(n, ", ")
	}
	switch {
	case len(slow) > 0:
		idle.Status, idle.Reason = evidence.Fail, fmt.Sprintf("locks later than %d minutes or never: %s", max/60, strings.Join(slow, ", "))
	case len(errs) > 0:
		idle.Status, idle.Reason = evidence.Error, "cannot read: "+strings.Join(errs, "; ")
	default:
		idle.Status, idle.Reason = evidence.Pass, fmt.Sprintf("every session locks within %d minutes: %s", max/60, names())
	}
	switch {
	case len(nopass) > 0:
		pw.Status, pw.Reason = evidence.Fail, "the lock does not ask for the password: "+strings.Join(nopass, ", ")
	case len(errs) > 0:
		pw.Status, pw.Reason = evidence.Error, "cannot read: "+strings.Join(errs, "; ")
	default:
		pw.Status, pw.Reason = evidence.Pass, "every session's lock asks for the password: "+names()
	}
	return []evidence.Result{idle, pw}
}
