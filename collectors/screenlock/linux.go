package screenlock

import (
	"bufio"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/annexa-dev/annexa/collectors/host"
)

// displayManagers: if one is installed, the machine has graphical logins
// even when nobody is logged in right now.
var displayManagers = []string{"/usr/sbin/gdm3", "/usr/sbin/gdm", "/usr/bin/sddm", "/usr/sbin/lightdm", "/etc/X11/default-display-manager"}

type session struct {
	ID, User, Type, Desktop, Home string
}

// linuxUsers lists graphical sessions (loginctl) and reads each user's lock
// settings.
func linuxUsers(ctx context.Context, h *host.Host) ([]userLock, string, error) {
	dm := ""
	for _, p := range displayManagers {
		if h.Exists(p) {
			dm = p
			break
		}
	}
	out, err := h.Run(ctx, "loginctl", "list-sessions", "--no-legend")
	if err != nil {
		if dm == "" {
			return nil, "no display manager and no session manager: a headless machine (" + firstLine(err.Error()) + ")", nil
		}
		return nil, "", fmt.Errorf("loginctl list-sessions (display manager %s present): %w", dm, err)
	}
	var sessions []session
	seen := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		props, err := h.Run(ctx, "loginctl", "show-session", f[0], "-p", "Type", "-p", "Desktop", "-p", "Name", "-p", "Class")
		if err != nil {
			return nil, "", fmt.Errorf("loginctl show-session %s: %w", f[0], err)
		}
		p := keyValues(string(props), "=")
		if (p["Type"] != "x11" && p["Type"] != "wayland" && p["Type"] != "mir") || p["Class"] == "greeter" {
			continue
		}
		if seen[p["Name"]] {
			continue
		}
		seen[p["Name"]] = true
		sessions = append(sessions, session{ID: f[0], User: p["Name"], Type: p["Type"], Desktop: p["Desktop"]})
	}
	if len(sessions) == 0 {
		if dm == "" {
			return nil, "no graphical sessions and no display manager: a headless machine", nil
		}
		return nil, "no one is logged in graphically right now (display manager " + dm + "); checked again next run", nil
	}
	homes, err := passwdHomes(h)
	if err != nil {
		return nil, "", err
	}
	sys := systemDconf(h)
	var users []userLock
	for _, s := range sessions {
		s.Home = homes[s.User]
		desk := strings.ToUpper(s.Desktop)
		var u userLock
		switch {
		case strings.Contains(desk, "KDE") || strings.Contains(desk, "PLASMA"):
			u = kdeLock(h, s)
		case strings.Contains(desk, "GNOME") || strings.Contains(desk, "UNITY") || strings.Contains(desk, "CINNAMON") || desk == "":
			u = gnomeLock(ctx, h, s, sys)
		default:
			u = userLock{User: s.User, Desktop: s.Desktop, Err: "no reader for desktop " + s.Desktop}
		}
		users = append(users, u)
	}
	return users, "", nil
}

func passwdHomes(h *host.Host) (map[string]string, error) {
	b, err := h.ReadFile("/etc/passwd")
	if err != nil {
		return nil, fmt.Errorf("cannot read /etc/passwd: %w", err)
	}
	homes := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 6 {
			homes[f[0]] = f[5]
		}
	}
	return homes, nil
}

// dconfSettings are the administrator's keyfiles under /etc/dconf/db/*.d
// and which keys they lock. A locked key is what every user gets.
type dconfSettings struct {
	values map[string]string // "/org/gnome/desktop/session/idle-delay" -> "uint32 300"
	locked map[string]bool
	files  []string
}

func systemDconf(h *host.Host) dconfSettings {
	d := dconfSettings{values: map[string]string{}, locked: map[string]bool{}}
	files, _ := h.Glob("/etc/dconf/db/*.d/*")
	locks, _ := h.Glob("/etc/dconf/db/*.d/locks/*")
	files = append(files, locks...)
	sort.Strings(files)
	for _, f := range files {
		b, err := h.ReadFile(f)
		if err != nil {
			continue
		}
		d.files = append(d.files, f)
		section := ""
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if strings.HasSuffix(f, "/locks") || strings.Contains(f, "/locks/") {
				if strings.HasPrefix(line, "/") {
					d.locked[line] = true
				}
				continue
			}
			if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
				section = "/" + strings.Trim(line, "[]/")
				continue
			}
			if k, v, ok := strings.Cut(line, "="); ok && section != "" {
				d.values[section+"/"+strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	return d
}

// gnomeLock reads the user's dconf database (dconf reads the file directly,
// no session bus needed) and applies the administrator's settings: locked
// keys win, unlocked ones are defaults the user may change.
func gnomeLock(ctx context.Context, h *host.Host, s session, sys dconfSettings) userLock {
	u := userLock{User: s.User, Desktop: "GNOME", Source: "dconf"}
	if s.Home == "" {
		u.Err = "no home directory in /etc/passwd"
		return u
	}
	get := func(key, def string) (string, error) {
		if sys.locked[key] {
			if v, ok := sys.values[key]; ok {
				u.EnforcedBy = "dconf lock"
				return v, nil
			}
		}
		out, err := h.Run(ctx, "env", "HOME="+s.Home, "XDG_CONFIG_HOME="+s.Home+"/.config", "dconf", "read", key)
		if err != nil {
			return "", fmt.Errorf("dconf read %s: %w", key, err)
		}
		if v := strings.TrimSpace(string(out)); v != "" {
			return v, nil
		}
		if v, ok := sys.values[key]; ok {
			return v, nil
		}
		return def, nil
	}
	idle, err := get("/org/gnome/desktop/session/idle-delay", "uint32 300")
	if err != nil {
		u.Err = err.Error()
		return u
	}
	lockEnabled, err := get("/org/gnome/desktop/screensaver/lock-enabled", "true")
	if err != nil {
		u.Err = err.Error()
		return u
	}
	lockDelay, err := get("/org/gnome/desktop/screensaver/lock-delay", "uint32 0")
	if err != nil {
		u.Err = err.Error()
		return u
	}
	disabled, err := get("/org/gnome/desktop/lockdown/disable-lock-screen", "false")
	if err != nil {
		u.Err = err.Error()
		return u
	}
	idleS, e1 := gvariantUint(idle)
	delayS, e2 := gvariantUint(lockDelay)
	if e1 != nil || e2 != nil {
		u.Err = fmt.Sprintf("unreadable dconf values: idle-delay %q, lock-delay %q", idle, lockDelay)
		return u
	}
	u.IdleSeconds = idleS
	locks := lockEnabled == "true" && disabled != "true"
	if idleS > 0 && locks {
		u.LockAfter = idleS + delayS
	}
	u.Password = locks
	return u
}

// gvariantUint reads "uint32 300" or "300".
func gvariantUint(v string) (int, error) {
	v = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), "uint32"))
	return strconv.Atoi(v)
}

// kdeLock reads ~/.config/kscreenlockerrc: [Daemon] Autolock (default
// true), Timeout in minutes (default 5). KDE's locker always asks for the
// password.
func kdeLock(h *host.Host, s session) userLock {
	u := userLock{User: s.User, Desktop: "KDE", Source: s.Home + "/.config/kscreenlockerrc", Password: true}
	autolock, timeout := "true", 5
	b, err := h.ReadFile(s.Home + "/.config/kscreenlockerrc")
	if err == nil {
		section := ""
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if strings.HasPrefix(line, "[") {
				section = line
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok || section != "[Daemon]" {
				continue
			}
			switch strings.TrimSpace(k) {
			case "Autolock":
				autolock = strings.TrimSpace(v)
			case "Timeout":
				if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					timeout = n
				}
			}
		}
	} else if !host.IsNotExist(err) {
		u.Err = err.Error()
		return u
	} else {
		u.Source += " (absent: KDE's defaults)"
	}
	if autolock != "false" && timeout > 0 {
		u.LockAfter = timeout * 60
	}
	u.IdleSeconds = timeout * 60
	return u
}

func keyValues(s, sep string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), sep); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }
