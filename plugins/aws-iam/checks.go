package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	aatypes "github.com/aws/aws-sdk-go-v2/service/accessanalyzer/types"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/annexa-dev/annexa/evidence"
)

// freshness: the plugin is meant to run a few times a day.
const freshness = evidence.Duration(26 * time.Hour)

// checks are what the plugin declares. The controls here are what it
// suggests; the server's configs/mapping.yaml is what counts (a test keeps
// the two equal).
var checks = []evidence.Check{
	{ID: "aws_iam.root_mfa", Title: "The root user has MFA enabled", Controls: []string{"8.5", "5.17"}},
	{ID: "aws_iam.root_hardware_mfa", Title: "The root user's MFA is a hardware device", Controls: []string{"8.5"}},
	{ID: "aws_iam.root_access_keys", Title: "The root user has no access keys", Controls: []string{"8.2", "5.18"}},
	{ID: "aws_iam.root_recent_use", Title: "The root user was not used recently", Controls: []string{"8.2"}},
	{ID: "aws_iam.password_policy", Title: "The password policy requires length, complexity and no reuse", Controls: []string{"5.17"}},
	{ID: "aws_iam.console_mfa", Title: "Every user with a console password has MFA", Controls: []string{"8.5", "5.17"}},
	{ID: "aws_iam.access_key_age", Title: "Active access keys are rotated", Controls: []string{"5.17", "5.18"}},
	{ID: "aws_iam.unused_credentials", Title: "No credentials unused for too long", Controls: []string{"5.18", "5.15"}},
	{ID: "aws_iam.multiple_active_keys", Title: "No user has more than one active access key", Controls: []string{"5.17", "5.18"}},
	{ID: "aws_iam.direct_user_policies", Title: "Users get permissions through groups, not policies of their own", Controls: []string{"5.15", "5.18"}},
	{ID: "aws_iam.admin_policies", Title: "No policy of the account grants *:* administrator access", Controls: []string{"8.2", "5.15"}},
	{ID: "aws_iam.access_analyzer", Title: "IAM Access Analyzer is enabled", Controls: []string{"5.15", "8.16"}},
}

func init() {
	for i := range checks {
		checks[i].Freshness = freshness
	}
}

// decide turns what the APIs answered into one result per check.
func decide(f *facts, t thresholds, now time.Time) []evidence.Result {
	return []evidence.Result{
		rootMFA(f),
		rootHardwareMFA(f),
		rootAccessKeys(f),
		rootRecentUse(f, t, now),
		passwordPolicy(f, t),
		consoleMFA(f),
		accessKeyAge(f, t, now),
		unusedCredentials(f, t, now),
		multipleActiveKeys(f),
		directUserPolicies(f),
		adminPolicies(f),
		accessAnalyzer(f),
	}
}

// errorsFor is every check `error` with the same reason: the account could
// not be reached at all.
func errorsFor(reason string) []evidence.Result {
	out := make([]evidence.Result, len(checks))
	for i, c := range checks {
		out[i] = evidence.Result{Check: c.ID, Status: evidence.Error, Reason: reason}
	}
	return out
}

func result(check string, ok bool, pass, fail string, obs any) evidence.Result {
	r := evidence.Result{Check: check, Status: evidence.Pass, Reason: pass, Observations: evidence.Observe(obs)}
	if !ok {
		r.Status, r.Reason = evidence.Fail, fail
	}
	return r
}

func errResult(check string, err error) evidence.Result {
	return evidence.Result{Check: check, Status: evidence.Error, Reason: err.Error()}
}

func rootMFA(f *facts) evidence.Result {
	const id = "aws_iam.root_mfa"
	if f.summaryErr != nil {
		return errResult(id, f.summaryErr)
	}
	v, ok := f.summary["AccountMFAEnabled"]
	if !ok {
		return errResult(id, fmt.Errorf("GetAccountSummary has no AccountMFAEnabled"))
	}
	if r, ok := rootWithoutCredentials(id, f); ok && v != 1 {
		return r
	}
	return result(id, v == 1, "the root user has MFA", "the root user has no MFA",
		map[string]any{"AccountMFAEnabled": v})
}

// rootWithoutCredentials: with centralised root access (AWS Organizations)
// the member account's root user has no password and no access keys, so it
// cannot sign in; CIS v5.0 (1.5, 1.6) counts that as satisfying the root
// MFA checks.
func rootWithoutCredentials(id string, f *facts) (evidence.Result, bool) {
	pw, okPW := f.summary["AccountPasswordPresent"]
	keys, okKeys := f.summary["AccountAccessKeysPresent"]
	if !okPW || !okKeys || pw != 0 || keys != 0 {
		return evidence.Result{}, false
	}
	return evidence.Result{Check: id, Status: evidence.Pass,
		Reason: "the root user has no password and no access keys (centralised root access): it cannot sign in, so it needs no MFA (CIS v5.0)",
		Observations: evidence.Observe(map[string]any{"AccountPasswordPresent": pw, "AccountAccessKeysPresent": keys,
			"AccountMFAEnabled": f.summary["AccountMFAEnabled"]})}, true
}

// rootHardwareMFA: IAM does not name the root user's device type directly;
// a virtual device assigned to root shows in ListVirtualMFADevices, so root
// MFA with no such device is a hardware (or FIDO) device.
func rootHardwareMFA(f *facts) evidence.Result {
	const id = "aws_iam.root_hardware_mfa"
	if f.summaryErr != nil {
		return errResult(id, f.summaryErr)
	}
	if f.mfaErr != nil {
		return errResult(id, f.mfaErr)
	}
	v, ok := f.summary["AccountMFAEnabled"]
	if !ok {
		return errResult(id, fmt.Errorf("GetAccountSummary has no AccountMFAEnabled"))
	}
	enabled := v == 1
	if r, ok := rootWithoutCredentials(id, f); ok && !enabled {
		return r
	}
	var virtual []string
	for _, d := range f.virtualMFA {
		serial := aws.ToString(d.SerialNumber)
		if strings.HasSuffix(serial, ":mfa/root-account-mfa-device") || (d.User != nil && strings.HasSuffix(aws.ToString(d.User.Arn), ":root")) {
			virtual = append(virtual, serial)
		}
	}
	obs := map[string]any{"AccountMFAEnabled": f.summary["AccountMFAEnabled"], "root_virtual_mfa_devices": evidence.NonNil(virtual)}
	if !enabled {
		return evidence.Result{Check: id, Status: evidence.Fail, Reason: "the root user has no MFA at all", Observations: evidence.Observe(obs)}
	}
	return result(id, len(virtual) == 0, "the root user's MFA is not a virtual device",
		"the root user's MFA is a virtual device: "+strings.Join(virtual, ", "), obs)
}

func rootAccessKeys(f *facts) evidence.Result {
	const id = "aws_iam.root_access_keys"
	if f.summaryErr != nil {
		return errResult(id, f.summaryErr)
	}
	v, ok := f.summary["AccountAccessKeysPresent"]
	if !ok {
		return errResult(id, fmt.Errorf("GetAccountSummary has no AccountAccessKeysPresent"))
	}
	obs := map[string]any{"AccountAccessKeysPresent": v}
	if f.report != nil {
		obs["access_key_1_active"] = f.report.Root.Keys[0].Active
		obs["access_key_2_active"] = f.report.Root.Keys[1].Active
	}
	return result(id, v == 0, "the root user has no access keys", "the root user has access keys", obs)
}

func rootRecentUse(f *facts, t thresholds, now time.Time) evidence.Result {
	const id = "aws_iam.root_recent_use"
	if f.reportErr != nil {
		return errResult(id, f.reportErr)
	}
	root := f.report.Root
	uses := map[string]*time.Time{"password_last_used": root.PasswordLastUsed,
		"access_key_1_last_used_date": root.Keys[0].LastUsed, "access_key_2_last_used_date": root.Keys[1].LastUsed}
	var last *time.Time
	obs := map[string]any{"threshold_days": t.RootUseDays, "report_generated": f.report.Generated}
	for name, u := range uses {
		obs[name] = u
		if u != nil && (last == nil || u.After(*last)) {
			last = u
		}
	}
	if last == nil {
		return result(id, true, "the root user has never been used to sign in or call APIs", "", obs)
	}
	age := days(now.Sub(*last))
	obs["days_since_last_use"] = age
	return result(id, age >= t.RootUseDays,
		fmt.Sprintf("the root user was last used %d days ago (threshold %d)", age, t.RootUseDays),
		fmt.Sprintf("the root user was used %d days ago, within %d days", age, t.RootUseDays), obs)
}

func passwordPolicy(f *facts, t thresholds) evidence.Result {
	const id = "aws_iam.password_policy"
	if f.policyErr != nil {
		return errResult(id, f.policyErr)
	}
	want := map[string]any{"minimum_length": t.PasswordMinLength, "reuse_prevention": t.PasswordReusePrevention, "complexity": *t.PasswordComplexity}
	if f.policy == nil {
		return evidence.Result{Check: id, Status: evidence.Fail, Reason: "the account has no password policy (IAM's defaults apply)",
			Observations: evidence.Observe(map[string]any{"policy": nil, "thresholds": want})}
	}
	p := f.policy
	var gaps []string
	if n := int(aws.ToInt32(p.MinimumPasswordLength)); n < t.PasswordMinLength {
		gaps = append(gaps, fmt.Sprintf("minimum length %d < %d", n, t.PasswordMinLength))
	}
	if n := int(aws.ToInt32(p.PasswordReusePrevention)); n < t.PasswordReusePrevention {
		gaps = append(gaps, fmt.Sprintf("reuse prevention %d < %d", n, t.PasswordReusePrevention))
	}
	if *t.PasswordComplexity {
		for name, on := range map[string]bool{"symbols": p.RequireSymbols, "numbers": p.RequireNumbers,
			"uppercase": p.RequireUppercaseCharacters, "lowercase": p.RequireLowercaseCharacters} {
			if !on {
				gaps = append(gaps, "does not require "+name)
			}
		}
	}
	sort.Strings(gaps)
	obs := map[string]any{"policy": map[string]any{
		"MinimumPasswordLength": aws.ToInt32(p.MinimumPasswordLength), "PasswordReusePrevention": aws.ToInt32(p.PasswordReusePrevention),
		"RequireSymbols": p.RequireSymbols, "RequireNumbers": p.RequireNumbers,
		"RequireUppercaseCharacters": p.RequireUppercaseCharacters, "RequireLowercaseCharacters": p.RequireLowercaseCharacters,
		"ExpirePasswords": p.ExpirePasswords, "MaxPasswordAge": aws.ToInt32(p.MaxPasswordAge)}, "thresholds": want, "gaps": evidence.NonNil(gaps)}
	return result(id, len(gaps) == 0, "the password policy meets the thresholds", "the password policy: "+strings.Join(gaps, "; "), obs)
}

func consoleMFA(f *facts) evidence.Result {
	const id = "aws_iam.console_mfa"
	if f.reportErr != nil {
		return errResult(id, f.reportErr)
	}
	var without []string
	console := 0
	for _, u := range f.report.Users {
		if !u.PasswordEnabled {
			continue
		}
		console++
		if !u.MFAActive {
			without = append(without, u.User)
		}
	}
	return result(id, len(without) == 0,
		fmt.Sprintf("all %d users with a console password have MFA", console),
		fmt.Sprintf("%d of %d console users have no MFA: %s", len(without), console, named(without)),
		map[string]any{"console_users": console, "users_without_mfa": evidence.NonNil(without), "report_generated": f.report.Generated})
}

type keyFinding struct {
	User    string `json:"user"`
	Key     int    `json:"key"`
	AgeDays int    `json:"age_days"`
}

func accessKeyAge(f *facts, t thresholds, now time.Time) evidence.Result {
	const id = "aws_iam.access_key_age"
	if f.reportErr != nil {
		return errResult(id, f.reportErr)
	}
	var old, undecided []keyFinding
	active := 0
	rows := append([]credentialRow{*f.report.Root}, f.report.Users...)
	for _, u := range rows {
		for i, k := range u.Keys {
			if !k.Active {
				continue
			}
			active++
			since := k.LastRotated
			if since == nil {
				// No rotation date: the key is no older than its user. If
				// the user is new enough, so is the key; else unknown.
				if u.Created != nil && days(now.Sub(*u.Created)) <= t.AccessKeyMaxAgeDays {
					continue
				}
				undecided = append(undecided, keyFinding{User: u.User, Key: i + 1, AgeDays: -1})
				continue
			}
			if age := days(now.Sub(*since)); age > t.AccessKeyMaxAgeDays {
				old = append(old, keyFinding{User: u.User, Key: i + 1, AgeDays: age})
			}
		}
	}
	obs := map[string]any{"threshold_days": t.AccessKeyMaxAgeDays, "active_keys": active, "old_keys": evidence.NonNil(old),
		"keys_without_dates": evidence.NonNil(undecided), "report_generated": f.report.Generated}
	switch {
	case len(old) > 0:
		reason := fmt.Sprintf("%d of %d active access keys are older than %d days: %s", len(old), active, t.AccessKeyMaxAgeDays, keyNames(old))
		if len(undecided) > 0 {
			reason += fmt.Sprintf("; %d more could not be dated", len(undecided))
		}
		return evidence.Result{Check: id, Status: evidence.Fail, Reason: reason, Observations: evidence.Observe(obs)}
	case len(undecided) > 0:
		return evidence.Result{Check: id, Status: evidence.Error, Observations: evidence.Observe(obs),
			Reason: fmt.Sprintf("could not decide the age of %d of %d active access keys: the report gives no rotation date and their users are older than %d days: %s",
				len(undecided), active, t.AccessKeyMaxAgeDays, keyNames(undecided))}
	}
	return evidence.Result{Check: id, Status: evidence.Pass, Observations: evidence.Observe(obs),
		Reason: fmt.Sprintf("all %d active access keys (the root user's included) are at most %d days old", active, t.AccessKeyMaxAgeDays)}
}

// unusedCredentials follows CIS 1.12: a password or active key not used for
// the threshold; one never used counts from when it was created or rotated.
func unusedCredentials(f *facts, t thresholds, now time.Time) evidence.Result {
	const id = "aws_iam.unused_credentials"
	if f.reportErr != nil {
		return errResult(id, f.reportErr)
	}
	type finding struct {
		User       string `json:"user"`
		Credential string `json:"credential"`
		IdleDays   int    `json:"idle_days"`
		Never      bool   `json:"never_used,omitempty"`
	}
	var idle []finding
	var undecided []string
	checked := 0
	check := func(user, cred string, used, since, created *time.Time) {
		checked++
		ref, never := used, used == nil
		if never {
			ref = since
		}
		if ref == nil {
			// Never used and no date of its own: the user's creation
			// bounds it only when that is recent.
			if created != nil && days(now.Sub(*created)) < t.UnusedCredentialDays {
				return
			}
			undecided = append(undecided, user+" "+cred)
			return
		}
		if d := days(now.Sub(*ref)); d >= t.UnusedCredentialDays {
			idle = append(idle, finding{User: user, Credential: cred, IdleDays: d, Never: never})
		}
	}
	for _, u := range f.report.Users {
		if u.PasswordEnabled {
			since := u.PasswordChanged
			if since == nil {
				since = u.Created
			}
			check(u.User, "password", u.PasswordLastUsed, since, u.Created)
		}
		for i, k := range u.Keys {
			if k.Active {
				check(u.User, fmt.Sprintf("access_key_%d", i+1), k.LastUsed, k.LastRotated, u.Created)
			}
		}
	}
	names := make([]string, len(idle))
	for i, c := range idle {
		names[i] = c.User + " " + c.Credential
	}
	obs := map[string]any{"threshold_days": t.UnusedCredentialDays, "credentials_checked": checked, "unused": evidence.NonNil(idle),
		"undated": evidence.NonNil(undecided), "report_generated": f.report.Generated}
	if len(idle) == 0 && len(undecided) > 0 {
		return evidence.Result{Check: id, Status: evidence.Error, Observations: evidence.Observe(obs),
			Reason: fmt.Sprintf("could not decide %d of %d credentials: never used and the report gives no date to count from: %s", len(undecided), checked, named(undecided))}
	}
	return result(id, len(idle) == 0,
		fmt.Sprintf("none of %d credentials unused for %d days or more", checked, t.UnusedCredentialDays),
		fmt.Sprintf("%d of %d credentials unused for %d days or more: %s", len(idle), checked, t.UnusedCredentialDays, named(names)), obs)
}

func multipleActiveKeys(f *facts) evidence.Result {
	const id = "aws_iam.multiple_active_keys"
	if f.reportErr != nil {
		return errResult(id, f.reportErr)
	}
	var users []string
	for _, u := range f.report.Users {
		if u.Keys[0].Active && u.Keys[1].Active {
			users = append(users, u.User)
		}
	}
	return result(id, len(users) == 0, fmt.Sprintf("none of %d users has two active access keys", len(f.report.Users)),
		fmt.Sprintf("%d users have two active access keys: %s", len(users), named(users)),
		map[string]any{"users": evidence.NonNil(users), "users_checked": len(f.report.Users)})
}

func directUserPolicies(f *facts) evidence.Result {
	const id = "aws_iam.direct_user_policies"
	if f.authErr != nil {
		return errResult(id, f.authErr)
	}
	if err := f.contradiction(); err != nil {
		return errResult(id, err)
	}
	type finding struct {
		User    string   `json:"user"`
		Managed []string `json:"attached_managed_policies,omitempty"`
		Inline  []string `json:"inline_policies,omitempty"`
	}
	var found []finding
	var names []string
	for _, u := range f.auth.Users {
		fi := finding{User: aws.ToString(u.UserName)}
		for _, p := range u.AttachedManagedPolicies {
			fi.Managed = append(fi.Managed, aws.ToString(p.PolicyArn))
		}
		for _, p := range u.UserPolicyList {
			fi.Inline = append(fi.Inline, aws.ToString(p.PolicyName))
		}
		if len(fi.Managed)+len(fi.Inline) > 0 {
			found = append(found, fi)
			names = append(names, fi.User)
		}
	}
	return result(id, len(found) == 0,
		fmt.Sprintf("none of %d users has policies attached directly", len(f.auth.Users)),
		fmt.Sprintf("%d of %d users have policies attached directly: %s", len(found), len(f.auth.Users), named(names)),
		map[string]any{"users_checked": len(f.auth.Users), "users_with_direct_policies": evidence.NonNil(found)})
}

// adminPolicies follows CIS 1.16, whose audit includes AWS-managed
// policies: customer managed policies in use and inline policies that
// allow "*" on "*" (or the NotAction/NotResource equivalent), and AWS's own
// AdministratorAccess attached to a user, group or role.
func adminPolicies(f *facts) evidence.Result {
	const id = "aws_iam.admin_policies"
	if f.authErr != nil {
		return errResult(id, f.authErr)
	}
	if err := f.contradiction(); err != nil {
		return errResult(id, err)
	}
	var admin, awsAdmin []string
	var firstErr error
	inspect := func(label, doc string) {
		full, err := grantsFullAdmin(doc)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", label, err)
			}
			return
		}
		if full {
			admin = append(admin, label)
		}
	}
	for _, p := range f.auth.Policies {
		if aws.ToInt32(p.AttachmentCount) == 0 {
			continue
		}
		for _, v := range p.PolicyVersionList {
			if v.IsDefaultVersion {
				inspect("managed policy "+aws.ToString(p.Arn), aws.ToString(v.Document))
			}
		}
	}
	const awsAdminARN = "arn:aws:iam::aws:policy/AdministratorAccess"
	for _, u := range f.auth.Users {
		for _, p := range u.UserPolicyList {
			inspect("user "+aws.ToString(u.UserName)+" inline policy "+aws.ToString(p.PolicyName), aws.ToString(p.PolicyDocument))
		}
		awsAdmin = append(awsAdmin, attachedAdmin("user "+aws.ToString(u.UserName), u.AttachedManagedPolicies, awsAdminARN)...)
	}
	for _, g := range f.auth.Groups {
		for _, p := range g.GroupPolicyList {
			inspect("group "+aws.ToString(g.GroupName)+" inline policy "+aws.ToString(p.PolicyName), aws.ToString(p.PolicyDocument))
		}
		awsAdmin = append(awsAdmin, attachedAdmin("group "+aws.ToString(g.GroupName), g.AttachedManagedPolicies, awsAdminARN)...)
	}
	for _, r := range f.auth.Roles {
		for _, p := range r.RolePolicyList {
			inspect("role "+aws.ToString(r.RoleName)+" inline policy "+aws.ToString(p.PolicyName), aws.ToString(p.PolicyDocument))
		}
		awsAdmin = append(awsAdmin, attachedAdmin("role "+aws.ToString(r.RoleName), r.AttachedManagedPolicies, awsAdminARN)...)
	}
	if firstErr != nil {
		return errResult(id, firstErr)
	}
	for _, who := range awsAdmin {
		admin = append(admin, who+" has AWS-managed AdministratorAccess")
	}
	checked := len(f.auth.Policies)
	for _, u := range f.auth.Users {
		checked += len(u.UserPolicyList)
	}
	for _, g := range f.auth.Groups {
		checked += len(g.GroupPolicyList)
	}
	for _, r := range f.auth.Roles {
		checked += len(r.RolePolicyList)
	}
	return result(id, len(admin) == 0,
		fmt.Sprintf("none of %d policies grants *:* and AdministratorAccess is attached to none of %d users, %d groups and %d roles", checked, len(f.auth.Users), len(f.auth.Groups), len(f.auth.Roles)),
		fmt.Sprintf("%d grants of full administrator access: %s", len(admin), namedSep(admin, "; ")),
		map[string]any{"full_admin": evidence.NonNil(admin), "aws_administratoraccess_attached_to": evidence.NonNil(awsAdmin),
			"customer_managed_policies_checked": len(f.auth.Policies), "policies_checked": checked})
}

func attachedAdmin(who string, attached []types.AttachedPolicy, arn string) []string {
	for _, p := range attached {
		if aws.ToString(p.PolicyArn) == arn {
			return []string{who}
		}
	}
	return nil
}

func accessAnalyzer(f *facts) evidence.Result {
	const id = "aws_iam.access_analyzer"
	if f.analyzerErr != nil {
		return errResult(id, f.analyzerErr)
	}
	type seen struct {
		Name   string `json:"name"`
		Type   string `json:"type"`
		Status string `json:"status"`
	}
	obs := map[string][]seen{}
	var missing []string
	regions := make([]string, 0, len(f.analyzers))
	for r := range f.analyzers {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	for _, region := range regions {
		active := false
		obs[region] = []seen{}
		for _, a := range f.analyzers[region] {
			obs[region] = append(obs[region], seen{aws.ToString(a.Name), string(a.Type), string(a.Status)})
			// Unused-access analyzers do not report external access.
			if a.Status == aatypes.AnalyzerStatusActive && (a.Type == aatypes.TypeAccount || a.Type == aatypes.TypeOrganization) {
				active = true
			}
		}
		if !active {
			missing = append(missing, region)
		}
	}
	if len(regions) == 0 {
		return errResult(id, fmt.Errorf("no region to look for an analyzer in"))
	}
	return result(id, len(missing) == 0,
		fmt.Sprintf("an active external-access analyzer in each of %d regions (%s)", len(regions), f.regionsFrom),
		fmt.Sprintf("no active external-access analyzer in %d of %d regions (%s): %s", len(missing), len(regions), f.regionsFrom, named(missing)),
		map[string]any{"analyzers": obs, "regions_checked": regions, "regions_from": f.regionsFrom, "regions_without": evidence.NonNil(missing)})
}

func keyNames(ks []keyFinding) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		if k.AgeDays < 0 {
			s[i] = fmt.Sprintf("%s key %d", k.User, k.Key)
			continue
		}
		s[i] = fmt.Sprintf("%s key %d (%d days)", k.User, k.Key, k.AgeDays)
	}
	return named(s)
}

// maxNamed is how many names a reason lists: an account of 10,000 users
// must not make a 43 KB reason. The observations hold every name.
const maxNamed = 10

func named(names []string) string { return namedSep(names, ", ") }

func namedSep(names []string, sep string) string {
	if len(names) <= maxNamed {
		return strings.Join(names, sep)
	}
	return strings.Join(names[:maxNamed], sep) + fmt.Sprintf("%sand %d more", sep, len(names)-maxNamed)
}

// contradiction: the credential report and GetAccountAuthorizationDetails
// describe the same users. Details that list none while the report lists
// some (an empty but well-formed answer, a listing cut short) cannot back
// "none of 0 users has ...".
func (f *facts) contradiction() error {
	if f.auth == nil || len(f.auth.Users) > 0 {
		return nil
	}
	switch {
	case f.reportErr == nil && len(f.report.Users) > 0:
		return fmt.Errorf("GetAccountAuthorizationDetails lists no users but the credential report lists %d: the sources contradict, nothing to decide on", len(f.report.Users))
	case len(f.auth.Groups)+len(f.auth.Roles)+len(f.auth.Policies) == 0:
		return fmt.Errorf("GetAccountAuthorizationDetails answered no users, groups, roles or policies at all: an empty answer is not an account's configuration")
	case f.reportErr != nil:
		return fmt.Errorf("GetAccountAuthorizationDetails lists no users, and the credential report that would confirm it could not be read: %v", f.reportErr)
	}
	return nil
}

func days(d time.Duration) int { return int(d / (24 * time.Hour)) }
