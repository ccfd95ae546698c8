package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

// allowedCheck fails members not in the allowed_admins setting, if set.
func allowedCheck(r *evidence.Result, members []string, s *Settings) bool {
	allowed := s.AllowedAdmins
	if allowed == nil {
		return false
	}
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[strings.ToLower(a)] = true
	}
	var unexpected []string
	for _, m := range members {
		if !ok[strings.ToLower(m)] {
			unexpected = append(unexpected, m)
		}
	}
	if len(unexpected) == 0 {
		return false
	}
	sort.Strings(unexpected)
	r.Status, r.Reason = evidence.Fail, "administrators not in the allowed list: "+strings.Join(unexpected, ", ")
	return true
}

// psAdmins lists the Administrators group by its well-known SID, which is
// the same in every language (the group is "Administratoren" in German,
// and `net localgroup administrators` fails there).
const psAdmins = "@(Get-LocalGroupMember -SID S-1-5-32-544 | Select-Object Name,SID,ObjectClass) | ConvertTo-Json"

// groupMembersBySID reads the Administrators group's members by SID. It
// fails on machines where Get-LocalGroupMember cannot resolve a member
// (an orphaned SID); the caller then asks net localgroup.
func groupMembersBySID(ctx context.Context, h *host.Host) ([]string, string, error) {
	out, err := h.Run(ctx, "powershell", "-NoProfile", "-NonInteractive", "-Command", psAdmins)
	if err != nil {
		return nil, "", err
	}
	type member struct {
		Name string
		SID  json.RawMessage
	}
	list, err := host.PowerShellList[member](out)
	if err != nil {
		return nil, "", fmt.Errorf("%d bytes that are not its JSON list", len(out))
	}
	names := make([]string, 0, len(list))
	for _, m := range list {
		if m.Name == "" {
			return nil, "", errors.New("a member without a name")
		}
		names = append(names, m.Name)
	}
	return names, "Get-LocalGroupMember -SID S-1-5-32-544", nil
}

const psLocalUsers = "Get-LocalUser | Select-Object Name,Enabled,SID,PasswordRequired,PasswordLastSet | ConvertTo-Json"

type winUser struct {
	Name             string
	Enabled          bool
	SID              json.RawMessage // a string, or {"Value": "S-1-..."} from PowerShell 5.1
	PasswordRequired bool
}

func (u winUser) sid() string {
	var s string
	if json.Unmarshal(u.SID, &s) == nil {
		return s
	}
	var v struct{ Value string }
	_ = json.Unmarshal(u.SID, &v)
	return v.Value
}

// collectWindows: the Administrators group (`net localgroup
// administrators`), the built-in Administrator (RID 500, Windows' root)
// disabled, no enabled local account that may have an empty password
// (PasswordRequired false), and the minimum password length (`net
// accounts`).
func collectWindows(ctx context.Context, h *host.Host, s *Settings) []evidence.Result {
	adm := evidence.Result{Check: checkAdmins}
	if members, how, err := groupMembersBySID(ctx, h); err == nil {
		adm.Observations = evidence.Observe(map[string]any{"administrators": members, "read_by": how})
		if !allowedCheck(&adm, members, s) {
			adm.Status, adm.Reason = evidence.Pass, fmt.Sprintf("%d administrators: %s", len(members), strings.Join(members, ", "))
		}
	} else if out, err2 := h.Run(ctx, "net", "localgroup", "administrators"); err2 != nil {
		adm.Status, adm.Reason = evidence.Error, "Get-LocalGroupMember -SID S-1-5-32-544: "+err.Error()+"; net localgroup administrators: "+err2.Error()
	} else if members, ok := netMembers(string(out)); !ok {
		adm.Status, adm.Reason = evidence.Error, fmt.Sprintf("net localgroup administrators: %d bytes without its member list (no dashed line, no \"The command completed\")", len(out))
	} else {
		adm.Observations = evidence.Observe(map[string]any{"administrators": members})
		if !allowedCheck(&adm, members, s) {
			adm.Status, adm.Reason = evidence.Pass, fmt.Sprintf("%d administrators: %s", len(members), strings.Join(members, ", "))
		}
	}

	uid0 := evidence.Result{Check: checkUID0}
	empty := evidence.Result{Check: checkEmpty}
	out, err := h.Run(ctx, "powershell", "-NoProfile", "-NonInteractive", "-Command", psLocalUsers)
	var users []winUser
	if err == nil {
		var jerr error
		if users, jerr = host.PowerShellList[winUser](out); jerr != nil {
			err = fmt.Errorf("not JSON: %w", jerr)
		}
	}
	if err != nil {
		uid0.Status, uid0.Reason = evidence.Error, "Get-LocalUser: "+err.Error()
		empty.Status, empty.Reason = uid0.Status, uid0.Reason
	} else {
		type seen struct {
			Name, SID        string
			Enabled          bool
			PasswordRequired bool
		}
		var all []seen
		var builtin *seen
		var nopw []string
		for _, u := range users {
			s := seen{u.Name, u.sid(), u.Enabled, u.PasswordRequired}
			all = append(all, s)
			if strings.HasSuffix(s.SID, "-500") {
				b := s
				builtin = &b
			}
			if u.Enabled && !u.PasswordRequired {
				nopw = append(nopw, u.Name)
			}
		}
		obs := evidence.Observe(map[string]any{"local_users": all})
		uid0.Observations, empty.Observations = obs, obs
		switch {
		case builtin == nil:
			uid0.Status, uid0.Reason = evidence.Error, "no local account with RID 500 in Get-LocalUser"
		case builtin.Enabled:
			uid0.Status, uid0.Reason = evidence.Fail, "the built-in Administrator account ("+builtin.Name+") is enabled"
		default:
			uid0.Status, uid0.Reason = evidence.Pass, "the built-in Administrator account ("+builtin.Name+") is disabled"
		}
		if len(nopw) > 0 {
			empty.Status, empty.Reason = evidence.Fail, "enabled accounts that may have an empty password (PasswordRequired false): "+strings.Join(nopw, ", ")
		} else {
			empty.Status, empty.Reason = evidence.Pass, "every enabled local account requires a password"
		}
	}

	pol := evidence.Result{Check: checkPolicy}
	min := s.MinLength
	if out, err := h.Run(ctx, "net", "accounts"); err != nil {
		pol.Status, pol.Reason = evidence.Error, "net accounts: "+err.Error()
	} else {
		kv := map[string]string{}
		for _, line := range strings.Split(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		pol.Observations = evidence.Observe(map[string]any{"net_accounts": kv, "required_min_length": min})
		v, found := kv["Minimum password length"]
		if !found {
			// net accounts prints its labels in the display language, in
			// a fixed order: the fourth line is the minimum length.
			if vals := colonValues(string(out)); len(vals) >= 9 {
				v = vals[3]
				kv["(position 4, labels not in English)"] = v
			}
		}
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			pol.Status, pol.Reason = evidence.Error, "net accounts: no readable Minimum password length"
		case n < min:
			pol.Status, pol.Reason = evidence.Fail, fmt.Sprintf("minimum password length %d < %d", n, min)
		default:
			pol.Status, pol.Reason = evidence.Pass, fmt.Sprintf("minimum password length %d", n)
		}
	}
	return []evidence.Result{adm, uid0, empty, pol}
}

// netMembers reads the members listed between the dashes and "The command
// completed successfully." of `net localgroup`; false when the output has
// neither, so it is not the list.
func netMembers(s string) ([]string, bool) {
	var out []string
	in, dashes, done := false, false, false
	for _, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "-----"):
			in, dashes = true, true
		case !in || line == "":
		case strings.HasPrefix(line, "The command completed"):
			in, done = false, true
		default:
			out = append(out, line)
		}
	}
	return out, dashes && done
}

// collectDarwin: the admin group (`dscl . -read /Groups/admin
// GroupMembership`), no user but root with UniqueID 0, and the password
// policy's minimum length (`pwpolicy -getaccountpolicies`). Whether an
// account's password is empty cannot be read without trying it: error.
func collectDarwin(ctx context.Context, h *host.Host, s *Settings) []evidence.Result {
	adm := evidence.Result{Check: checkAdmins}
	if out, err := h.Run(ctx, "dscl", ".", "-read", "/Groups/admin", "GroupMembership"); err != nil {
		adm.Status, adm.Reason = evidence.Error, "dscl read /Groups/admin: "+err.Error()
	} else if list, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "GroupMembership:"); !ok {
		adm.Status, adm.Reason = evidence.Error, fmt.Sprintf("dscl read /Groups/admin: %d bytes without a GroupMembership: line", len(out))
	} else {
		members := strings.Fields(list)
		adm.Observations = evidence.Observe(map[string]any{"admin": members})
		if !allowedCheck(&adm, members, s) {
			adm.Status, adm.Reason = evidence.Pass, fmt.Sprintf("%d administrators: %s", len(members), strings.Join(members, ", "))
		}
	}
	uid0 := evidence.Result{Check: checkUID0}
	if out, err := h.Run(ctx, "dscl", ".", "-list", "/Users", "UniqueID"); err != nil {
		uid0.Status, uid0.Reason = evidence.Error, "dscl list UniqueID: "+err.Error()
	} else {
		var extra []string
		n, bad, root := 0, 0, false
		for _, line := range strings.Split(string(out), "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			f := strings.Fields(line)
			if len(f) != 2 || !printable(f[0]) {
				bad++
				continue
			}
			if _, err := strconv.Atoi(f[1]); err != nil {
				bad++
				continue
			}
			n++
			if f[1] == "0" && f[0] == "root" {
				root = true
			}
			if f[1] == "0" && f[0] != "root" {
				extra = append(extra, f[0])
			}
		}
		uid0.Observations = evidence.Observe(map[string]any{"uid0_besides_root": extra, "users_listed": n, "lines_unrecognised": bad})
		switch {
		case n == 0:
			uid0.Status, uid0.Reason = evidence.Error, fmt.Sprintf("dscl listed no users (%d lines unrecognised)", bad)
		case bad > 0 || !root:
			uid0.Status, uid0.Reason = evidence.Error, fmt.Sprintf("dscl -list /Users UniqueID: %d of %d lines are not \"name id\" and root with UniqueID 0 is %s: not the user list", bad, n+bad, map[bool]string{true: "there", false: "missing"}[root])
		case len(extra) > 0:
			uid0.Status, uid0.Reason = evidence.Fail, "UniqueID 0 besides root: "+strings.Join(extra, ", ")
		default:
			uid0.Status, uid0.Reason = evidence.Pass, "root is the only UniqueID 0"
		}
	}
	empty := evidence.Result{Check: checkEmpty, Status: evidence.Error,
		Reason: "macOS does not expose whether a password is empty without trying it; enforce a minimum length (password_policy) instead"}
	pol := evidence.Result{Check: checkPolicy}
	min := s.MinLength
	if out, err := h.Run(ctx, "pwpolicy", "-getaccountpolicies"); err != nil {
		pol.Status, pol.Reason = evidence.Error, "pwpolicy -getaccountpolicies: "+err.Error()
	} else {
		n, content := pwpolicyMinLength(string(out))
		pol.Observations = evidence.Observe(map[string]any{"policy_content": content, "required_min_length": min})
		switch {
		case n < 0:
			pol.Status, pol.Reason = evidence.Fail, "no password length policy (pwpolicy sets none)"
		case n < min:
			pol.Status, pol.Reason = evidence.Fail, fmt.Sprintf("minimum password length %d < %d", n, min)
		default:
			pol.Status, pol.Reason = evidence.Pass, fmt.Sprintf("minimum password length %d", n)
		}
	}
	return []evidence.Result{adm, uid0, empty, pol}
}

var (
	pwLength      = regexp.MustCompile(`policyAttributePassword matches '\.\{(\d+),`)
	policyContent = regexp.MustCompile(`<string>([^<]*policyAttribute[^<]*)</string>`)
)

// pwpolicyMinLength finds "policyAttributePassword matches '.{14,}+'" in
// the account policies' policyContent; -1 if there is none.
func pwpolicyMinLength(s string) (int, []string) {
	var contents []string
	best := -1
	for _, m := range policyContent.FindAllStringSubmatch(s, -1) {
		contents = append(contents, m[1])
		if l := pwLength.FindStringSubmatch(m[1]); l != nil {
			if n, err := strconv.Atoi(l[1]); err == nil && n > best {
				best = n
			}
		}
	}
	return best, contents
}

// colonValues are the values of "label: value" lines, in order.
func colonValues(s string) []string {
	var out []string
	for _, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		if _, v, ok := strings.Cut(line, ":"); ok {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}
