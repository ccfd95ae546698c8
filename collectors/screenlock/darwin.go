package screenlock

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/annexa-dev/annexa/collectors/host"
)

// macDefaultIdle is macOS's screen saver start when idleTime was never set.
const macDefaultIdle = 20 * 60

// darwinUsers reads, for every console user (`who`), the screen saver's
// idle time (`defaults -currentHost read com.apple.screensaver idleTime`)
// and the screen lock (`sysadminctl -screenLock status`, which writes to
// stderr), each as that user.
func darwinUsers(ctx context.Context, h *host.Host) ([]userLock, string, error) {
	out, err := h.Run(ctx, "who")
	if err != nil {
		return nil, "", fmt.Errorf("who: %w", err)
	}
	var names []string
	seen := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[1] == "console" && !seen[f[0]] {
			seen[f[0]] = true
			names = append(names, f[0])
		}
	}
	if len(names) == 0 {
		return nil, "no one is logged in at the console; checked again next run", nil
	}
	var users []userLock
	for _, name := range names {
		u := userLock{User: name, Desktop: "macOS", Source: "defaults -currentHost com.apple.screensaver; sysadminctl -screenLock"}
		idle := macDefaultIdle
		out, err := h.Run(ctx, "sudo", "-u", name, "defaults", "-currentHost", "read", "com.apple.screensaver", "idleTime")
		if err == nil {
			n, perr := strconv.Atoi(strings.TrimSpace(string(out)))
			if perr != nil {
				u.Err = fmt.Sprintf("idleTime %q is not a number", strings.TrimSpace(string(out)))
				users = append(users, u)
				continue
			}
			idle = n
		} else if !host.IsExit(err, 1) {
			u.Err = "defaults read idleTime: " + err.Error()
			users = append(users, u)
			continue
		}
		u.IdleSeconds = idle
		out, err = h.Run(ctx, "sudo", "-u", name, "sh", "-c", "sysadminctl -screenLock status 2>&1")
		if err != nil {
			u.Err = "sysadminctl -screenLock status: " + err.Error()
			users = append(users, u)
			continue
		}
		st := string(out)
		_, after, found := strings.Cut(st, "screenLock ")
		switch {
		case !found:
			u.Err = "sysadminctl: unrecognised answer: " + strings.TrimSpace(st)
		case strings.HasPrefix(after, "is off"):
			u.Password = false
			u.LockAfter = 0
		case strings.HasPrefix(after, "delay is immediate"):
			u.Password, u.LockAfter = true, idle
		case strings.HasPrefix(after, "delay is "):
			f := strings.Fields(strings.TrimPrefix(after, "delay is "))
			d, perr := strconv.Atoi(f[0])
			if perr != nil {
				u.Err = "sysadminctl: unrecognised delay: " + strings.TrimSpace(st)
				break
			}
			u.Password, u.LockAfter = true, idle+d
		default:
			u.Err = "sysadminctl: unrecognised answer: " + strings.TrimSpace(st)
		}
		if idle == 0 {
			u.LockAfter = 0 // the screen saver never starts
		}
		users = append(users, u)
	}
	return users, "", nil
}
