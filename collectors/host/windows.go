package host

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RegQuery reads a Windows registry key's values with `reg query KEY`
// ("    Name    REG_SZ    value" lines). found is false when the key does
// not exist (reg exits 1); any other failure is an error.
func (h *Host) RegQuery(ctx context.Context, key string) (values map[string]string, found bool, err error) {
	out, err := h.Run(ctx, "reg", "query", key)
	if err != nil {
		if IsExit(err, 1) {
			return map[string]string{}, false, nil
		}
		return nil, false, fmt.Errorf("reg query %s: %w", key, err)
	}
	// reg query names the key it read before its values; output without
	// that line is not the key's values, and no values would read as
	// "nothing set".
	full := key
	for short, long := range map[string]string{"HKLM\\": "HKEY_LOCAL_MACHINE\\", "HKCU\\": "HKEY_CURRENT_USER\\", "HKU\\": "HKEY_USERS\\"} {
		if rest, ok := strings.CutPrefix(key, short); ok {
			full = long + rest
		}
	}
	if !strings.Contains(strings.ToUpper(string(out)), strings.ToUpper(full)) {
		return nil, false, fmt.Errorf("reg query %s: %d bytes that do not name the key: not its values", key, len(out))
	}
	values = map[string]string{}
	for _, line := range strings.Split(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && strings.HasPrefix(f[1], "REG_") {
			values[f[0]] = strings.Join(f[2:], " ")
		}
	}
	return values, true, nil
}

// RegInt reads a registry number: "900" (REG_SZ) or "0x384" (REG_DWORD).
func RegInt(v string) (int, bool) {
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 0, 64)
	return int(n), err == nil
}

// PowerShellDate reads a date as ConvertTo-Json writes it: "/Date(ms)/" in
// Windows PowerShell 5.1, RFC 3339 in PowerShell 7.
func PowerShellDate(s string) (time.Time, bool) {
	if ms, ok := strings.CutPrefix(s, "/Date("); ok {
		ms = strings.TrimSuffix(ms, ")/")
		if i := strings.IndexAny(ms, "+-"); i > 0 {
			ms = ms[:i]
		}
		n, err := strconv.ParseInt(ms, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		return time.UnixMilli(n).UTC(), true
	}
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

// PowerShellList reads ConvertTo-Json's answer for a list of T: an array,
// or one bare object when the pipeline held a single item (Windows
// PowerShell 5.1 unrolls it). Neither is the error of reading the array.
func PowerShellList[T any](b []byte) ([]T, error) {
	var list []T
	err := json.Unmarshal(b, &list)
	if err == nil {
		return list, nil
	}
	var one T
	if json.Unmarshal(b, &one) != nil {
		return nil, err
	}
	return []T{one}, nil
}
