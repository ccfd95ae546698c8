package screenlock

import (
	"context"
	"fmt"
	"strings"

	"github.com/annexa-dev/annexa/collectors/host"
)

// windowsUsers reads every loaded user hive under HKEY_USERS: the screen
// saver's timeout and "password protected" (Control Panel\Desktop), where
// a policy under Software\Policies wins; the machine's inactivity limit
// (InactivityTimeoutSecs) locks every session and caps them all.
func windowsUsers(ctx context.Context, h *host.Host) ([]userLock, string, error) {
	out, err := h.Run(ctx, "reg", "query", "HKU")
	if err != nil {
		return nil, "", fmt.Errorf("reg query HKU: %w", err)
	}
	machine, err := regValues(ctx, h, `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System`)
	if err != nil {
		return nil, "", err
	}
	inactivity, hasInactivity := host.RegInt(machine["InactivityTimeoutSecs"])
	hasInactivity = hasInactivity && inactivity > 0
	var users []userLock
	for _, line := range strings.Split(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n") {
		sid, ok := strings.CutPrefix(strings.TrimSpace(line), `HKEY_USERS\`)
		if !ok || !strings.HasPrefix(sid, "S-1-5-21-") || strings.HasSuffix(sid, "_Classes") {
			continue
		}
		hive := `HKU\` + sid
		env, err := regValues(ctx, h, hive+`\Volatile Environment`)
		if err != nil {
			return nil, "", err
		}
		u := userLock{User: env["USERNAME"], Desktop: "Windows", Source: hive + `\Control Panel\Desktop`}
		if u.User == "" {
			u.User = sid
		}
		desk, err := regValues(ctx, h, hive+`\Control Panel\Desktop`)
		if err != nil {
			return nil, "", err
		}
		pol, err := regValues(ctx, h, hive+`\Software\Policies\Microsoft\Windows\Control Panel\Desktop`)
		if err != nil {
			return nil, "", err
		}
		get := func(name string) string {
			if v, ok := pol[name]; ok {
				u.EnforcedBy = "group policy"
				return v
			}
			return desk[name]
		}
		active, secure := get("ScreenSaveActive"), get("ScreenSaverIsSecure")
		timeout, _ := host.RegInt(get("ScreenSaveTimeOut"))
		if active == "1" && timeout > 0 {
			u.LockAfter, u.IdleSeconds = timeout, timeout
			u.Password = secure == "1"
			if !u.Password {
				u.LockAfter = 0 // the screen saver starts but does not lock
			}
		}
		if hasInactivity && (u.LockAfter == 0 || inactivity < u.LockAfter) {
			u.LockAfter, u.Password = inactivity, true
			u.EnforcedBy = "machine inactivity limit (InactivityTimeoutSecs)"
		}
		users = append(users, u)
	}
	if len(users) == 0 {
		return nil, "no user hive is loaded (no one logged on); checked again next run", nil
	}
	return users, "", nil
}

// regValues is a key's values, empty if the key does not exist.
func regValues(ctx context.Context, h *host.Host, key string) (map[string]string, error) {
	v, _, err := h.RegQuery(ctx, key)
	return v, err
}
