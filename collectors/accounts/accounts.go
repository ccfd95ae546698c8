// Package accounts checks local accounts: who has administrator rights,
// extra UID 0 accounts, accounts without a password, and the password
// policy. Linux reads /etc/passwd, /etc/shadow (root only), /etc/group,
// sudoers and the PAM password stack.
package accounts

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

func init() { collectors.Register(Collector{}) }

// Collector is the accounts collector.
type Collector struct{}

// Name implements collectors.Collector.
func (Collector) Name() string { return "accounts" }

// Version implements collectors.Collector.
func (Collector) Version() string { return "1.0.0" }

const (
	checkAdmins = "accounts.administrators"
	checkUID0   = "accounts.uid0"
	checkEmpty  = "accounts.empty_passwords"
	checkPolicy = "accounts.password_policy"
)

// Checks implements collectors.Collector.
func (Collector) Checks() []evidence.Check {
	fresh := evidence.Duration(26 * time.Hour)
	linux := []string{"linux", "darwin", "windows"}
	return []evidence.Check{
		{ID: checkAdmins, Title: "Administrators are known; no password-less full sudo", Controls: []string{"5.15", "5.18", "8.2"}, Platforms: linux, Freshness: fresh},
		{ID: checkUID0, Title: "No UID 0 account but root", Controls: []string{"5.15", "8.2"}, Platforms: linux, Freshness: fresh},
		{ID: checkEmpty, Title: "No account without a password", Controls: []string{"5.17", "8.5"}, Platforms: linux, Freshness: fresh},
		{ID: checkPolicy, Title: "Password minimum length meets policy", Controls: []string{"5.17"}, Platforms: linux, Freshness: fresh},
	}
}

// Collect implements collectors.Collector.
func (c Collector) Collect(ctx context.Context, h *host.Host, settings collectors.Settings) ([]evidence.Result, error) {
	s := collectors.SettingsOf(settings, defaults)
	switch h.OS {
	case "windows":
		return collectWindows(ctx, h, s), nil
	case "darwin":
		return collectDarwin(ctx, h, s), nil
	case "linux":
	default:
		return collectors.ErrorResults(c, "accounts: no reader for "+h.OS), nil
	}
	passwd, perr := h.ReadFile("/etc/passwd")
	return []evidence.Result{
		admins(h, s),
		uid0(passwd, perr),
		emptyPasswords(h),
		policy(h, s.MinLength),
	}, nil
}

type account struct {
	Name string `json:"name"`
	UID  int    `json:"uid"`
}

func parsePasswd(b []byte) []account {
	var out []account
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 7 || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		out = append(out, account{Name: f[0], UID: uid})
	}
	return out
}

func uid0(passwd []byte, err error) evidence.Result {
	r := evidence.Result{Check: checkUID0}
	if err != nil {
		r.Status, r.Reason = evidence.Error, "cannot read /etc/passwd: "+err.Error()
		return r
	}
	accts := parsePasswd(passwd)
	if len(accts) == 0 {
		r.Status, r.Reason = evidence.Error, "/etc/passwd lists no account: an empty input is not evidence"
		return r
	}
	if !slices.Contains(accts, account{Name: "root", UID: 0}) {
		r.Status, r.Reason = evidence.Error, fmt.Sprintf("/etc/passwd: %d entries but no root with UID 0: not a passwd file to decide on", len(accts))
		return r
	}
	var extra []string
	for _, a := range accts {
		if a.UID == 0 && a.Name != "root" {
			extra = append(extra, a.Name)
		}
	}
	r.Observations = evidence.Observe(map[string]any{"uid0_accounts": append([]string{"root"}, extra...), "accounts": len(accts)})
	if len(extra) > 0 {
		r.Status, r.Reason = evidence.Fail, "UID 0 besides root: "+strings.Join(extra, ", ")
	} else {
		r.Status, r.Reason = evidence.Pass, "root is the only UID 0 account"
	}
	return r
}

func emptyPasswords(h *host.Host) evidence.Result {
	r := evidence.Result{Check: checkEmpty}
	b, err := h.ReadFile("/etc/shadow")
	if err != nil {
		r.Status, r.Reason = evidence.Error, "cannot read /etc/shadow (needs root): "+err.Error()
		return r
	}
	var empty []string
	n, bad, root := 0, 0, false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		// name:password:lastchange:min:max:warn:inactive:expire:reserved
		f := strings.Split(sc.Text(), ":")
		if len(f) < 8 || !printable(f[0]) {
			bad++
			continue
		}
		root = root || f[0] == "root"
		n++
		// An empty field logs in with no password; "!" and "*" are locked.
		if f[1] == "" {
			empty = append(empty, f[0])
		}
	}
	if n == 0 {
		r.Status, r.Reason = evidence.Error, fmt.Sprintf("/etc/shadow lists no account (%d lines unrecognised): nothing to decide on", bad)
		return r
	}
	if bad > 0 || !root {
		r.Status, r.Reason = evidence.Error, fmt.Sprintf("/etc/shadow: %d of %d lines are not shadow entries, and root's entry is %s: a damaged file is not evidence", bad, n+bad, map[bool]string{true: "there", false: "missing"}[root])
		return r
	}
	r.Observations = evidence.Observe(map[string]any{"empty_password": empty, "accounts": n})
	if len(empty) > 0 {
		r.Status, r.Reason = evidence.Fail, "accounts with no password: "+strings.Join(empty, ", ")
	} else {
		r.Status, r.Reason = evidence.Pass, fmt.Sprintf("all %d accounts have a password or are locked", n)
	}
	return r
}

// sudoRule is one sudoers line granting rights.
type sudoRule struct {
	File string `json:"file"`
	Line string `json:"line"`
}

// adminGrants is what admins decides from: the members of the admin
// groups, the sudoers rules that grant ALL, those without a password, and
// what could not be read.
type adminGrants struct {
	members       map[string][]string // group → members
	rules         []sudoRule
	nopasswd      []sudoRule
	sudoersFound  bool
	warnings      []string
	groupReadFail error
	// groups read from /etc/group, lines that were not group entries,
	// and whether the GID 0 group was among them.
	groups, groupsBad int
	rootGroup         bool
}

func admins(h *host.Host, s *Settings) evidence.Result {
	return decideAdmins(readAdminGrants(h), s.AllowedAdmins)
}

// readAdminGrants parses /etc/group's sudo, wheel and admin groups and the
// sudoers files (sudoers.d as sudo reads it: no name with a dot or a ~).
func readAdminGrants(h *host.Host) *adminGrants {
	g := &adminGrants{members: map[string][]string{}}
	group, err := h.ReadFile("/etc/group")
	if err != nil {
		g.groupReadFail = err
		return g
	}
	sc := bufio.NewScanner(bytes.NewReader(group))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		// name:password:gid:members
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 || !printable(f[0]) {
			g.groupsBad++
			continue
		}
		if _, err := strconv.Atoi(f[2]); err != nil {
			g.groupsBad++
			continue
		}
		g.groups++
		g.rootGroup = g.rootGroup || (f[0] == "root" || f[0] == "wheel") && f[2] == "0"
		if (f[0] == "sudo" || f[0] == "wheel" || f[0] == "admin") && f[3] != "" {
			g.members[f[0]] = strings.Split(f[3], ",")
		}
	}
	files := []string{"/etc/sudoers"}
	if inc, _ := h.Glob("/etc/sudoers.d/*"); len(inc) > 0 {
		sort.Strings(inc)
		files = append(files, inc...)
	}
	for _, f := range files {
		b, err := h.ReadFile(f)
		if err != nil {
			if f == "/etc/sudoers" && host.IsNotExist(err) {
				continue // no sudo installed
			}
			g.warnings = append(g.warnings, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		if f == "/etc/sudoers" {
			g.sudoersFound = true
		}
		// sudo skips files in sudoers.d with a dot or ending in ~.
		base := path.Base(f)
		if strings.Contains(base, ".") || strings.HasSuffix(base, "~") {
			continue
		}
		ls := bufio.NewScanner(bytes.NewReader(b))
		for ls.Scan() {
			line := strings.TrimSpace(ls.Text())
			if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "Defaults") || strings.HasPrefix(line, "@include") ||
				strings.HasPrefix(line, "User_Alias") || strings.HasPrefix(line, "Cmnd_Alias") || strings.HasPrefix(line, "Host_Alias") || strings.HasPrefix(line, "Runas_Alias") {
				continue
			}
			if !strings.Contains(line, "ALL") {
				continue
			}
			rule := sudoRule{File: f, Line: line}
			g.rules = append(g.rules, rule)
			if strings.Contains(line, "NOPASSWD") && strings.HasSuffix(strings.TrimSpace(line), "ALL") {
				g.nopasswd = append(g.nopasswd, rule)
			}
		}
	}
	return g
}

// decideAdmins: an administrator outside the allowed list (when one is
// set), or full sudo without a password, fails; what could not be read is
// an error, never a pass.
func decideAdmins(g *adminGrants, allowed []string) evidence.Result {
	r := evidence.Result{Check: checkAdmins}
	if g.groupReadFail != nil {
		r.Status, r.Reason = evidence.Error, "cannot read /etc/group: "+g.groupReadFail.Error()
		return r
	}
	if g.groups == 0 || g.groupsBad > 0 || !g.rootGroup {
		r.Status, r.Reason = evidence.Error, fmt.Sprintf("/etc/group: %d group entries, %d lines that are not, GID 0 group %s: not a group file to decide on",
			g.groups, g.groupsBad, map[bool]string{true: "present", false: "missing"}[g.rootGroup])
		return r
	}
	obs := map[string]any{"admin_groups": g.members, "sudo_rules": g.rules, "sudoers_present": g.sudoersFound, "groups_read": g.groups}
	if len(g.warnings) > 0 {
		obs["warnings"] = g.warnings
	}
	r.Observations = evidence.Observe(obs)
	if len(g.warnings) > 0 {
		r.Status, r.Reason = evidence.Error, "cannot read all of sudoers: "+strings.Join(g.warnings, "; ")
		return r
	}
	var admins []string
	for grp, ms := range g.members {
		for _, m := range ms {
			admins = append(admins, m+" ("+grp+")")
		}
	}
	sort.Strings(admins)
	if allowed != nil {
		ok := map[string]bool{}
		for _, a := range allowed {
			ok[a] = true
		}
		var unexpected []string
		for _, ms := range g.members {
			for _, m := range ms {
				if !ok[m] {
					unexpected = append(unexpected, m)
				}
			}
		}
		if len(unexpected) > 0 {
			sort.Strings(unexpected)
			r.Status, r.Reason = evidence.Fail, "administrators not in the allowed list: "+strings.Join(unexpected, ", ")
			return r
		}
	}
	switch {
	case len(g.nopasswd) > 0:
		lines := make([]string, len(g.nopasswd))
		for i, n := range g.nopasswd {
			lines[i] = fmt.Sprintf("%q in %s", n.Line, n.File)
		}
		r.Status, r.Reason = evidence.Fail, "full sudo without a password: "+strings.Join(lines, "; ")
	case len(admins) == 0:
		r.Status, r.Reason = evidence.Pass, fmt.Sprintf("no member of sudo, wheel or admin among %d groups; root only", g.groups)
	default:
		r.Status, r.Reason = evidence.Pass, "administrators: "+strings.Join(admins, ", ")
	}
	return r
}

// policy finds the minimum password length PAM enforces: pam_pwquality or
// pam_cracklib's minlen (argument, else pwquality.conf, else its default
// of 8), or pam_unix's minlen (default 6).
func policy(h *host.Host, want int) evidence.Result {
	r := evidence.Result{Check: checkPolicy}
	var stack []byte
	var src string
	for _, p := range []string{"/etc/pam.d/common-password", "/etc/pam.d/system-auth", "/etc/pam.d/password-auth"} {
		if b, err := h.ReadFile(p); err == nil {
			stack, src = b, p
			break
		}
	}
	if stack == nil {
		r.Status, r.Reason = evidence.Error, "no PAM password stack found (common-password, system-auth)"
		return r
	}
	minlen, how := 0, ""
	sc := bufio.NewScanner(bytes.NewReader(stack))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != "password" || strings.HasPrefix(f[0], "#") {
			continue
		}
		// The control may be [bracketed with spaces]; find the module.
		mod, args := "", []string(nil)
		for i, x := range f[1:] {
			if strings.HasSuffix(x, ".so") {
				mod, args = x, f[i+2:]
				break
			}
		}
		arg := func(k string) (int, bool) {
			for _, a := range args {
				if v, ok := strings.CutPrefix(a, k+"="); ok {
					n, err := strconv.Atoi(v)
					return n, err == nil
				}
			}
			return 0, false
		}
		switch mod {
		case "pam_pwquality.so", "pam_cracklib.so":
			if n, ok := arg("minlen"); ok {
				minlen, how = n, mod+" minlen="+strconv.Itoa(n)+" in "+src
			} else if n, ok := confMinlen(h); ok {
				minlen, how = n, "minlen = "+strconv.Itoa(n)+" in /etc/security/pwquality.conf"
			} else if minlen == 0 {
				minlen, how = 8, mod+" without minlen (its default is 8)"
			}
		case "pam_unix.so":
			if minlen == 0 {
				if n, ok := arg("minlen"); ok {
					minlen, how = n, "pam_unix.so minlen="+strconv.Itoa(n)
				} else {
					minlen, how = 6, "pam_unix.so without minlen (its default is 6)"
				}
			}
		}
	}
	r.Observations = evidence.Observe(map[string]any{"stack": src, "min_length": minlen, "decided_by": how, "required_min_length": want})
	switch {
	case minlen == 0:
		r.Status, r.Reason = evidence.Error, "no password module found in "+src
	case minlen < want:
		r.Status, r.Reason = evidence.Fail, fmt.Sprintf("minimum password length %d < %d (%s)", minlen, want, how)
	default:
		r.Status, r.Reason = evidence.Pass, fmt.Sprintf("minimum password length %d (%s)", minlen, how)
	}
	return r
}

func confMinlen(h *host.Host) (int, bool) {
	b, err := h.ReadFile("/etc/security/pwquality.conf")
	if err != nil {
		return 0, false
	}
	n, found := 0, false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "minlen" {
			if x, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				n, found = x, true
			}
		}
	}
	return n, found
}

// printable: an account or group name is printable ASCII without spaces;
// anything else is not a line of the file.
func printable(name string) bool {
	if name == "" || len(name) > 256 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] <= ' ' || name[i] > '~' {
			return false
		}
	}
	return true
}
