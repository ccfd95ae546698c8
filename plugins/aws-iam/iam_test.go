package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/plugins"
)

var testNow = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

const (
	readOnlyDoc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","s3:List*"],"Resource":"*"}]}`
	adminDoc    = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`
)

func readReport(t *testing.T, name string) string {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return string(b)
}

// expandedReport is a testdata report with its NOW-<n>d tokens as times.
func expandedReport(t *testing.T, name string) string {
	return (&fakeAWS{now: testNow}).expandDays(readReport(t, name))
}

func testPlugin(now func() time.Time) iamPlugin {
	return iamPlugin{now: now, log: slog.New(slog.DiscardHandler)}
}

// cleanAccount passes every check.
func cleanAccount(t *testing.T, id string) *fakeAccount {
	return &fakeAccount{
		ID:      id,
		Summary: map[string]int{"AccountMFAEnabled": 1, "AccountAccessKeysPresent": 0, "Users": 3, "Groups": 2, "Policies": 1},
		Report:  strings.ReplaceAll(readReport(t, "report-clean.csv"), "111122223333", id),
		PasswordPolicy: map[string]string{"MinimumPasswordLength": "16", "RequireSymbols": "true", "RequireNumbers": "true",
			"RequireUppercaseCharacters": "true", "RequireLowercaseCharacters": "true", "AllowUsersToChangePassword": "true",
			"ExpirePasswords": "false", "PasswordReusePrevention": "24", "HardExpiry": "false"},
		VirtualMFA: map[string]string{"arn:aws:iam::" + id + ":mfa/alice": "arn:aws:iam::" + id + ":user/alice",
			"arn:aws:iam::" + id + ":mfa/bob": "arn:aws:iam::" + id + ":user/bob"},
		Users: []fakeUser{{Name: "alice", Groups: []string{"admins"}}, {Name: "bob", Groups: []string{"developers"}},
			{Name: "ci-deploy", Groups: []string{"deployers"}}},
		Groups: []fakeGroup{{Name: "admins", Managed: []string{"arn:aws:iam::aws:policy/PowerUserAccess"}},
			{Name: "developers", Managed: []string{"arn:aws:iam::" + id + ":policy/ReadOnlyExtras"}},
			{Name: "deployers", Inline: map[string]string{"push": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`}}},
		Policies:  []fakePolicy{{Name: "ReadOnlyExtras", Document: readOnlyDoc, Attachments: 1}, {Name: "OldAdmin", Document: adminDoc, Attachments: 0}},
		Analyzers: map[string][]fakeAnalyzer{"us-east-1": {{Name: "account-analyzer", Type: "ACCOUNT", Status: "ACTIVE"}}},
	}
}

// testEnv points the SDK's default chain at static keys and nothing else
// (no shared files, no instance metadata).
func testEnv(t *testing.T, akid string) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": akid, "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AWS_SESSION_TOKEN": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "", "AWS_REGION": "", "AWS_ENDPOINT_URL": "", "AWS_CA_BUNDLE": "",
	} {
		t.Setenv(k, v)
	}
}

func fakeSettings(f *fakeAWS, extra map[string]any) map[string]any {
	s := map[string]any{"endpoint_url": f.srv.URL, "ca_bundle": f.caFile(), "region": "us-east-1",
		"report_poll": "10ms", "report_wait": "3s", "max_backoff": "20ms"}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

func collect(t *testing.T, f *fakeAWS, settings map[string]any) map[evidence.Asset]map[string]evidence.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := testPlugin(func() time.Time { return testNow }).Collect(ctx, plugins.Request{Settings: settings})
	require.NoError(t, err)
	out := map[evidence.Asset]map[string]evidence.Result{}
	for _, a := range resp.Assets {
		out[a.Asset] = map[string]evidence.Result{}
		for _, r := range a.Results {
			require.NoError(t, r.Validate())
			out[a.Asset][r.Check] = r
		}
		require.Len(t, out[a.Asset], len(checks), "one result per check for %s", a.Asset)
	}
	return out
}

func statuses(rs map[string]evidence.Result) map[string]evidence.Status {
	m := map[string]evidence.Status{}
	for id, r := range rs {
		m[id] = r.Status
	}
	return m
}

func observations(t *testing.T, r evidence.Result) map[string]any {
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Observations, &m), r.Reason)
	return m
}

func allStatus(s evidence.Status) map[string]evidence.Status {
	m := map[string]evidence.Status{}
	for _, c := range checks {
		m[c.ID] = s
	}
	return m
}

func TestCleanAccountPassesEverything(t *testing.T) {
	f := newFakeAWS(t, testNow)
	f.addAccount("AKIACLEAN", cleanAccount(t, "111122223333"))
	testEnv(t, "AKIACLEAN")
	got := collect(t, f, fakeSettings(f, nil))
	rs := got["aws-account:111122223333"]
	require.Equal(t, allStatus(evidence.Pass), statuses(rs), "%v", rs)

	// The results say what they were decided from, thresholds included.
	obs := observations(t, rs["aws_iam.access_key_age"])
	require.EqualValues(t, 90, obs["threshold_days"])
	require.EqualValues(t, 2, obs["active_keys"])
	obs = observations(t, rs["aws_iam.root_recent_use"])
	require.EqualValues(t, 200, obs["days_since_last_use"])
	obs = observations(t, rs["aws_iam.admin_policies"])
	require.Equal(t, []any{}, obs["aws_administratoraccess_attached_to"])
	obs = observations(t, rs["aws_iam.access_analyzer"])
	require.Equal(t, []any{"us-east-1"}, obs["regions_checked"])
	require.Equal(t, "every region enabled for the account (DescribeRegions)", obs["regions_from"])
	// Pagination: three users, three groups and two policies at two per page.
	require.Equal(t, 4, f.count("111122223333", "GetAccountAuthorizationDetails"))
}

func TestRootWithoutMFA(t *testing.T) {
	f := newFakeAWS(t, testNow)
	a := cleanAccount(t, "444455556666")
	a.Summary["AccountMFAEnabled"] = 0
	a.Summary["AccountAccessKeysPresent"] = 1
	a.Report = readReport(t, "report-root-no-mfa.csv")
	f.addAccount("AKIAROOT", a)
	testEnv(t, "AKIAROOT")
	rs := collect(t, f, fakeSettings(f, nil))["aws-account:444455556666"]
	want := allStatus(evidence.Pass)
	for _, id := range []string{"aws_iam.root_mfa", "aws_iam.root_hardware_mfa", "aws_iam.root_access_keys", "aws_iam.root_recent_use", "aws_iam.access_key_age"} {
		want[id] = evidence.Fail
	}
	require.Equal(t, want, statuses(rs), "%v", rs)
	require.Contains(t, rs["aws_iam.root_recent_use"].Reason, "used 2 days ago")
	// The root user's 700-day-old key is an access key like any other.
	require.Equal(t, "1 of 1 active access keys are older than 90 days: <root_account> key 1 (700 days)", rs["aws_iam.access_key_age"].Reason)
	require.Equal(t, true, observations(t, rs["aws_iam.root_access_keys"])["access_key_1_active"])

	// A virtual MFA device on root passes root_mfa but not the hardware check.
	a.Summary["AccountMFAEnabled"] = 1
	a.VirtualMFA["arn:aws:iam::444455556666:mfa/root-account-mfa-device"] = "arn:aws:iam::444455556666:root"
	rs = collect(t, f, fakeSettings(f, nil))["aws-account:444455556666"]
	require.Equal(t, evidence.Pass, rs["aws_iam.root_mfa"].Status)
	require.Equal(t, evidence.Fail, rs["aws_iam.root_hardware_mfa"].Status, string(rs["aws_iam.root_hardware_mfa"].Observations))
	require.Contains(t, rs["aws_iam.root_hardware_mfa"].Reason, "root-account-mfa-device")

	// Thresholds are the auditor's: allow root use within 1 day and the 2-day-old use passes.
	rs = collect(t, f, fakeSettings(f, map[string]any{"thresholds": map[string]any{"root_use_days": 1}}))["aws-account:444455556666"]
	require.Equal(t, evidence.Pass, rs["aws_iam.root_recent_use"].Status, rs["aws_iam.root_recent_use"].Reason)
}

func TestStaleKeysAndPolicies(t *testing.T) {
	f := newFakeAWS(t, testNow)
	a := cleanAccount(t, "777788889999")
	a.Report = readReport(t, "report-stale-keys.csv")
	a.Users = []fakeUser{
		{Name: "carol", Managed: []string{"arn:aws:iam::aws:policy/AdministratorAccess"}},
		{Name: "dave", Inline: map[string]string{"everything": adminDoc}},
		{Name: "legacy-backup", Groups: []string{"developers"}},
	}
	a.Policies = append(a.Policies, fakePolicy{Name: "BreakGlass", Document: `{"Statement":[{"Effect":"Allow","Action":["*:*"],"Resource":["*"]}]}`, Attachments: 2})
	a.Analyzers = map[string][]fakeAnalyzer{"us-east-1": {{Name: "unused", Type: "ACCOUNT_UNUSED_ACCESS", Status: "ACTIVE"}}}
	f.addAccount("AKIASTALE", a)
	testEnv(t, "AKIASTALE")
	rs := collect(t, f, fakeSettings(f, nil))["aws-account:777788889999"]
	want := allStatus(evidence.Fail)
	for _, id := range []string{"aws_iam.root_mfa", "aws_iam.root_hardware_mfa", "aws_iam.root_access_keys", "aws_iam.root_recent_use", "aws_iam.password_policy"} {
		want[id] = evidence.Pass
	}
	require.Equal(t, want, statuses(rs), "%v", rs)

	require.Equal(t, "1 of 2 console users have no MFA: carol", rs["aws_iam.console_mfa"].Reason)
	require.Equal(t, "2 of 3 active access keys are older than 90 days: carol key 1 (200 days), carol key 2 (95 days)", rs["aws_iam.access_key_age"].Reason)
	require.Equal(t, "3 of 5 credentials unused for 45 days or more: carol password, dave password, legacy-backup access_key_1", rs["aws_iam.unused_credentials"].Reason)
	require.Equal(t, "1 users have two active access keys: carol", rs["aws_iam.multiple_active_keys"].Reason)
	require.Equal(t, "2 of 3 users have policies attached directly: carol, dave", rs["aws_iam.direct_user_policies"].Reason)
	require.Contains(t, rs["aws_iam.admin_policies"].Reason, "user carol has AWS-managed AdministratorAccess", "CIS 1.16 counts AWS-managed policies")
	require.Contains(t, rs["aws_iam.admin_policies"].Reason, "managed policy arn:aws:iam::777788889999:policy/BreakGlass")
	require.Contains(t, rs["aws_iam.admin_policies"].Reason, "user dave inline policy everything")
	require.NotContains(t, rs["aws_iam.admin_policies"].Reason, "OldAdmin", "an unattached policy grants nothing")
	require.Equal(t, "no active external-access analyzer in 1 of 1 regions (every region enabled for the account (DescribeRegions)): us-east-1", rs["aws_iam.access_analyzer"].Reason)
	unused := observations(t, rs["aws_iam.unused_credentials"])["unused"].([]any)
	require.Equal(t, map[string]any{"user": "dave", "credential": "password", "idle_days": 120.0, "never_used": true}, unused[1])

	// With the auditor's own thresholds the same account reads differently.
	rs = collect(t, f, fakeSettings(f, map[string]any{"thresholds": map[string]any{"access_key_max_age_days": 365, "unused_credential_days": 180}}))["aws-account:777788889999"]
	require.Equal(t, evidence.Pass, rs["aws_iam.access_key_age"].Status)
	require.Equal(t, evidence.Pass, rs["aws_iam.unused_credentials"].Status)
}

func TestWeakOrMissingPasswordPolicy(t *testing.T) {
	f := newFakeAWS(t, testNow)
	a := cleanAccount(t, "111122223333")
	a.PasswordPolicy = map[string]string{"MinimumPasswordLength": "8", "RequireSymbols": "false", "RequireNumbers": "true",
		"RequireUppercaseCharacters": "true", "RequireLowercaseCharacters": "true", "AllowUsersToChangePassword": "true", "ExpirePasswords": "false"}
	f.addAccount("AKIAWEAK", a)
	testEnv(t, "AKIAWEAK")
	r := collect(t, f, fakeSettings(f, nil))["aws-account:111122223333"]["aws_iam.password_policy"]
	require.Equal(t, evidence.Fail, r.Status)
	require.Equal(t, "the password policy: does not require symbols; minimum length 8 < 14; reuse prevention 0 < 24", r.Reason)

	a.PasswordPolicy = nil // NoSuchEntity: an answer, not an error
	r = collect(t, f, fakeSettings(f, nil))["aws-account:111122223333"]["aws_iam.password_policy"]
	require.Equal(t, evidence.Fail, r.Status)
	require.Contains(t, r.Reason, "no password policy")
}

func TestCredentialReportNotReady(t *testing.T) {
	reportChecks := []string{"aws_iam.root_recent_use", "aws_iam.console_mfa", "aws_iam.access_key_age", "aws_iam.unused_credentials", "aws_iam.multiple_active_keys"}

	t.Run("ready after polls and a LimitExceeded", func(t *testing.T) {
		f := newFakeAWS(t, testNow)
		a := cleanAccount(t, "111122223333")
		a.ReportReadyAfter, a.GenerateLimitExceeded = 3, 1
		f.addAccount("AKIASLOW", a)
		testEnv(t, "AKIASLOW")
		rs := collect(t, f, fakeSettings(f, nil))["aws-account:111122223333"]
		require.Equal(t, allStatus(evidence.Pass), statuses(rs), "%v", rs)
		require.Equal(t, 4, f.count("111122223333", "GetCredentialReport"))
	})

	t.Run("never ready within the wait", func(t *testing.T) {
		f := newFakeAWS(t, testNow)
		a := cleanAccount(t, "111122223333")
		a.ReportReadyAfter = -1
		f.addAccount("AKIANEVER", a)
		testEnv(t, "AKIANEVER")
		// The wait leaves room for many polls even on a loaded machine;
		// whichever call the deadline cuts, the reason is what IAM said.
		rs := collect(t, f, fakeSettings(f, map[string]any{"report_wait": "1s"}))["aws-account:111122223333"]
		for _, id := range reportChecks {
			require.Equal(t, evidence.Error, rs[id].Status, id)
			require.Contains(t, rs[id].Reason, "credential report not ready after 1s")
			require.Contains(t, rs[id].Reason, "ReportInProgress")
			require.NotContains(t, rs[id].Reason, "context deadline exceeded")
		}
		// The checks that do not need the report are still decided.
		require.Equal(t, evidence.Pass, rs["aws_iam.root_mfa"].Status)
		require.Equal(t, evidence.Pass, rs["aws_iam.password_policy"].Status)
		require.Greater(t, f.count("111122223333", "GetCredentialReport"), 2)
	})
}

func TestThrottlingAndDenial(t *testing.T) {
	t.Run("throttled calls are retried", func(t *testing.T) {
		f := newFakeAWS(t, testNow)
		a := cleanAccount(t, "111122223333")
		a.Throttle = map[string]int{"GetAccountAuthorizationDetails": 2, "GetAccountSummary": 1, "GetCredentialReport": 1}
		f.addAccount("AKIATHROTTLE", a)
		testEnv(t, "AKIATHROTTLE")
		rs := collect(t, f, fakeSettings(f, nil))["aws-account:111122223333"]
		require.Equal(t, allStatus(evidence.Pass), statuses(rs), "%v", rs)
		require.Equal(t, 2, f.count("111122223333", "GetAccountSummary"))
		require.Equal(t, 6, f.count("111122223333", "GetAccountAuthorizationDetails"))
	})

	t.Run("throttled past the retries, or denied, is an error for what needs it", func(t *testing.T) {
		f := newFakeAWS(t, testNow)
		a := cleanAccount(t, "111122223333")
		a.Throttle = map[string]int{"GetAccountAuthorizationDetails": 1000}
		a.Deny = map[string]bool{"GetAccountSummary": true, "ListAnalyzers": true}
		f.addAccount("AKIADENIED", a)
		testEnv(t, "AKIADENIED")
		rs := collect(t, f, fakeSettings(f, map[string]any{"max_attempts": 3}))["aws-account:111122223333"]
		require.Equal(t, 3, f.count("111122223333", "GetAccountAuthorizationDetails"))
		for _, id := range []string{"aws_iam.direct_user_policies", "aws_iam.admin_policies"} {
			require.Equal(t, evidence.Error, rs[id].Status)
			require.Contains(t, rs[id].Reason, "Throttling")
		}
		for _, id := range []string{"aws_iam.root_mfa", "aws_iam.root_hardware_mfa", "aws_iam.root_access_keys"} {
			require.Equal(t, evidence.Error, rs[id].Status)
			require.Contains(t, rs[id].Reason, "AccessDenied")
		}
		require.Equal(t, evidence.Error, rs["aws_iam.access_analyzer"].Status)
		require.Contains(t, rs["aws_iam.access_analyzer"].Reason, "AccessDeniedException")
		require.Equal(t, evidence.Pass, rs["aws_iam.console_mfa"].Status)
	})
}

func TestAssumeRoleIntoSeveralAccounts(t *testing.T) {
	f := newFakeAWS(t, testNow)
	f.addAccount("AKIAMGMT", cleanAccount(t, "111122223333"))
	member := cleanAccount(t, "222233334444")
	member.Summary["AccountMFAEnabled"] = 0
	f.addAccount("", member)
	f.addRole("arn:aws:iam::222233334444:role/AnnexaAudit", "222233334444")
	testEnv(t, "AKIAMGMT")
	got := collect(t, f, fakeSettings(f, map[string]any{"assume_roles": []any{
		"arn:aws:iam::222233334444:role/AnnexaAudit", "arn:aws:iam::999999999999:role/AnnexaAudit"}}))
	require.Len(t, got, 3)
	require.Equal(t, allStatus(evidence.Pass), statuses(got["aws-account:111122223333"]))
	require.Equal(t, evidence.Fail, got["aws-account:222233334444"]["aws_iam.root_mfa"].Status, "the member account's own answers")
	require.Equal(t, allStatus(evidence.Error), statuses(got["aws-account:999999999999"]))
	require.Contains(t, got["aws-account:999999999999"]["aws_iam.root_mfa"].Reason, "assume role arn:aws:iam::999999999999:role/AnnexaAudit")
	require.Contains(t, got["aws-account:999999999999"]["aws_iam.root_mfa"].Reason, "AccessDenied")

	// skip_default_account audits only the roles' accounts.
	got = collect(t, f, fakeSettings(f, map[string]any{"skip_default_account": true,
		"assume_roles": []any{"arn:aws:iam::222233334444:role/AnnexaAudit"}}))
	require.Len(t, got, 1)
	require.Contains(t, got, evidence.Asset("aws-account:222233334444"))
}

func TestBadCredentialsFailTheRun(t *testing.T) {
	f := newFakeAWS(t, testNow)
	f.addAccount("AKIAKNOWN", cleanAccount(t, "111122223333"))
	testEnv(t, "AKIAUNKNOWN")
	_, err := testPlugin(time.Now).Collect(context.Background(), plugins.Request{Settings: fakeSettings(f, map[string]any{"max_attempts": 1})})
	require.ErrorContains(t, err, "aws credentials")
	require.ErrorContains(t, err, "InvalidClientTokenId")
}

func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		in   map[string]any
		want string
	}{
		{map[string]any{"regoin": "eu-west-1"}, `unknown field "regoin"`},
		{map[string]any{"assume_roles": []any{"arn:aws:iam::123:role/x"}}, "not an IAM role ARN"},
		{map[string]any{"report_wait": "soon"}, "report_wait"},
		{map[string]any{"skip_default_account": true}, "needs assume_roles"},
		{map[string]any{"thresholds": map[string]any{"root_use_days": -1}}, "root_use_days"},
		{map[string]any{"max_attempts": -2}, "max_attempts"},
		// A zero is refused where it makes no sense, never taken as "unset".
		{map[string]any{"max_attempts": 0}, "max_attempts: 0, want at least 1"},
		{map[string]any{"thresholds": map[string]any{"access_key_max_age_days": 0}}, "access_key_max_age_days: 0, want at least 1"},
		{map[string]any{"report_wait": "0s"}, "report_wait"},
		{map[string]any{"thresholds": map[string]any{"password_reuse_prevention": 25}}, "password_reuse_prevention"},
	} {
		_, err := parseSettings(tc.in)
		require.ErrorContains(t, err, tc.want, "%v", tc.in)
	}
	s, err := parseSettings(nil)
	require.NoError(t, err)
	require.Equal(t, 14, s.Thresholds.PasswordMinLength)
	require.Empty(t, s.AnalyzerRegions, "default: every enabled region, asked of the account")
	// A zero that means something (no reuse rule) is honoured; the other
	// thresholds keep their defaults.
	s, err = parseSettings(map[string]any{"thresholds": map[string]any{"password_reuse_prevention": 0}})
	require.NoError(t, err)
	require.Equal(t, 0, s.Thresholds.PasswordReusePrevention)
	require.Equal(t, 90, s.Thresholds.AccessKeyMaxAgeDays)
}

func TestCredentialReportParsing(t *testing.T) {
	_, err := parseCredentialReport([]byte("user,arn\n<root_account>,x\n"), testNow)
	require.ErrorContains(t, err, `column "user_creation_time" missing`)
	bad := strings.Replace(expandedReport(t, "report-clean.csv"), "2025-10-23T10:00:00+00:00", "yesterday", 1)
	_, err = parseCredentialReport([]byte(bad), testNow)
	require.ErrorContains(t, err, `line 3: user_creation_time: "yesterday" is not a time`)
	lines := strings.Split(expandedReport(t, "report-clean.csv"), "\n")
	_, err = parseCredentialReport([]byte(lines[0]+"\n"+strings.Join(lines[2:], "\n")), testNow)
	require.ErrorContains(t, err, "no row for the root user")
}

func TestPolicyDocuments(t *testing.T) {
	for doc, want := range map[string]bool{
		adminDoc:    true,
		readOnlyDoc: false,
		`{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`:                          false,
		`{"Statement":[{"Effect":"Allow","Action":["s3:*","*"],"Resource":["arn:aws:s3:::b"]}]}`: false,
		`{"Statement":[{"Effect":"Allow","Action":"*:*","Resource":["*"]}]}`:                     true,
		// NotAction that leaves IAM allowed: its holder grants themselves the rest.
		`{"Statement":[{"Effect":"Allow","NotAction":"s3:DeleteBucket","Resource":"*"}]}`: true,
		// PowerUserAccess: everything but IAM, Organizations and Account.
		`{"Statement":[{"Effect":"Allow","NotAction":["iam:*","organizations:*","account:*"],"Resource":"*"}]}`: false,
		// NotResource: every resource but one.
		`{"Statement":[{"Effect":"Allow","Action":"*","NotResource":"arn:aws:s3:::audit-logs/*"}]}`: true,
	} {
		got, err := grantsFullAdmin(strings.ReplaceAll(doc, " ", "%20"))
		require.NoError(t, err)
		require.Equal(t, want, got, doc)
	}
	_, err := grantsFullAdmin("%7Bnot json")
	require.ErrorContains(t, err, "policy document")
}

func FuzzCredentialReport(f *testing.F) {
	for _, name := range []string{"report-clean.csv", "report-stale-keys.csv"} {
		b, _ := os.ReadFile(filepath.Join("testdata", name))
		f.Add(daysAgo.ReplaceAll(b, []byte("2026-11-01T00:00:00+00:00")))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := parseCredentialReport(b, testNow)
		if err == nil && rep.Root == nil {
			t.Fatal("a report without a root row parsed")
		}
	})
}

// The credential report's booleans are lowercase true or false; anything
// else is an error naming the row and the column, never read as false.
func TestCredentialReportBooleans(t *testing.T) {
	clean := expandedReport(t, "report-clean.csv")
	lines := strings.Split(clean, "\n")
	for _, v := range []string{"TRUE", "yes", "1", ""} {
		f := strings.Split(lines[2], ",")
		f[7] = v // mfa_active of alice
		bad := strings.Join(append(append([]string{}, lines[:2]...), append([]string{strings.Join(f, ",")}, lines[3:]...)...), "\n")
		_, err := parseCredentialReport([]byte(bad), testNow)
		require.ErrorContains(t, err, fmt.Sprintf(`line 3 (user "alice"): mfa_active: %q is neither true nor false`, v))
	}

	// Through the plugin: a console user whose MFA reads TRUE is no pass.
	f := newFakeAWS(t, testNow)
	a := cleanAccount(t, "111122223333")
	a.Report = strings.Replace(a.Report, "alice,arn:aws:iam::111122223333:user/alice,NOW-400d,true,NOW-1d,NOW-60d,NOW-30d,true,", "alice,arn:aws:iam::111122223333:user/alice,NOW-400d,true,NOW-1d,NOW-60d,NOW-30d,TRUE,", 1)
	f.addAccount("AKIABOOL", a)
	testEnv(t, "AKIABOOL")
	rs := collect(t, f, fakeSettings(f, nil))["aws-account:111122223333"]
	require.Equal(t, evidence.Error, rs["aws_iam.console_mfa"].Status)
	require.Contains(t, rs["aws_iam.console_mfa"].Reason, "mfa_active")
}

// An active key whose rotation date is N/A is not skipped: it is dated
// from its user's creation when that settles it, else it is undecided.
func TestUndatedKeys(t *testing.T) {
	f := newFakeAWS(t, testNow)
	a := cleanAccount(t, "111122223333")
	// alice (created 400 days ago) has an active key 1 rotated NOW-30d: make its date N/A.
	a.Report = strings.Replace(a.Report, "NOW-30d,true,true,NOW-30d,NOW-1d", "NOW-30d,true,true,N/A,NOW-1d", 1)
	require.Contains(t, a.Report, "true,true,N/A,NOW-1d")
	f.addAccount("AKIANA", a)
	testEnv(t, "AKIANA")
	rs := collect(t, f, fakeSettings(f, nil))["aws-account:111122223333"]
	r := rs["aws_iam.access_key_age"]
	require.Equal(t, evidence.Error, r.Status, r.Reason)
	require.Contains(t, r.Reason, "could not decide the age of 1 of 2 active access keys")
	require.Contains(t, r.Reason, "alice key 1")
	require.NotContains(t, r.Reason, "are at most")
}

// GetAccountAuthorizationDetails that lists nothing, or whose pagination
// breaks, cannot back "none of 0 users": it contradicts the credential
// report, and a repeated Marker does not loop.
func TestAuthorizationDetailsContradict(t *testing.T) {
	for mode, want := range map[string]string{
		"empty":         "GetAccountAuthorizationDetails lists no users but the credential report lists 3",
		"no-marker":     "IsTruncated is true but no Marker was given",
		"repeat-marker": `Marker "AAAA" repeated`,
	} {
		f := newFakeAWS(t, testNow)
		a := cleanAccount(t, "111122223333")
		a.AuthPaging = mode
		f.addAccount("AKIAPAGE", a)
		testEnv(t, "AKIAPAGE")
		rs := collect(t, f, fakeSettings(f, nil))["aws-account:111122223333"]
		for _, id := range []string{"aws_iam.direct_user_policies", "aws_iam.admin_policies"} {
			require.Equal(t, evidence.Error, rs[id].Status, "%s %s: %s", mode, id, rs[id].Reason)
			require.Contains(t, rs[id].Reason, want, mode)
		}
		require.LessOrEqual(t, f.count("111122223333", "GetAccountAuthorizationDetails"), 3, mode)
	}
}

// Centralised root access: no password, no keys, no MFA satisfies the
// root MFA checks (CIS v5.0). Without a SummaryMap both are error.
func TestRootSummary(t *testing.T) {
	f := newFakeAWS(t, testNow)
	a := cleanAccount(t, "111122223333")
	a.Summary = map[string]int{"AccountMFAEnabled": 0, "AccountAccessKeysPresent": 0, "AccountPasswordPresent": 0}
	f.addAccount("AKIACENTRAL", a)
	testEnv(t, "AKIACENTRAL")
	rs := collect(t, f, fakeSettings(f, nil))["aws-account:111122223333"]
	for _, id := range []string{"aws_iam.root_mfa", "aws_iam.root_hardware_mfa"} {
		require.Equal(t, evidence.Pass, rs[id].Status, rs[id].Reason)
		require.Contains(t, rs[id].Reason, "no password and no access keys")
	}
	a.Summary["AccountPasswordPresent"] = 1
	rs = collect(t, f, fakeSettings(f, nil))["aws-account:111122223333"]
	require.Equal(t, evidence.Fail, rs["aws_iam.root_mfa"].Status, "a root password without MFA")

	a.NoSummaryMap = true
	rs = collect(t, f, fakeSettings(f, nil))["aws-account:111122223333"]
	for _, id := range []string{"aws_iam.root_mfa", "aws_iam.root_hardware_mfa", "aws_iam.root_access_keys"} {
		require.Equal(t, evidence.Error, rs[id].Status, id)
		require.Contains(t, rs[id].Reason, "GetAccountSummary has no", id)
	}
}

// Access Analyzer is checked in every enabled region: an analyzer in one
// of three fails, naming the other two.
func TestAnalyzerEveryRegion(t *testing.T) {
	f := newFakeAWS(t, testNow)
	a := cleanAccount(t, "111122223333")
	a.Regions = []string{"eu-west-1", "us-east-1", "us-west-2"}
	f.addAccount("AKIAREGIONS", a)
	testEnv(t, "AKIAREGIONS")
	r := collect(t, f, fakeSettings(f, nil))["aws-account:111122223333"]["aws_iam.access_analyzer"]
	require.Equal(t, evidence.Fail, r.Status)
	require.Equal(t, "no active external-access analyzer in 2 of 3 regions (every region enabled for the account (DescribeRegions)): eu-west-1, us-west-2", r.Reason)
	// The setting narrows it.
	r = collect(t, f, fakeSettings(f, map[string]any{"analyzer_regions": []any{"us-east-1"}}))["aws-account:111122223333"]["aws_iam.access_analyzer"]
	require.Equal(t, evidence.Pass, r.Status, r.Reason)
}

// 10,000 users without MFA make a short reason: counts and the first ten
// names; the observations hold them all.
func TestReasonsBounded(t *testing.T) {
	f := newFakeAWS(t, testNow)
	a := cleanAccount(t, "111122223333")
	var b strings.Builder
	b.WriteString(a.Report)
	for i := range 10000 {
		fmt.Fprintf(&b, "\nuser%05d,arn:aws:iam::111122223333:user/user%05d,NOW-10d,true,NOW-1d,NOW-10d,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A", i, i)
	}
	a.Report = strings.TrimSpace(b.String())
	f.addAccount("AKIAMANY", a)
	testEnv(t, "AKIAMANY")
	r := collect(t, f, fakeSettings(f, nil))["aws-account:111122223333"]["aws_iam.console_mfa"]
	require.Equal(t, evidence.Fail, r.Status)
	require.Less(t, len(r.Reason), 400, r.Reason)
	require.True(t, strings.HasSuffix(r.Reason, "and 9990 more"), r.Reason)
	require.Len(t, observations(t, r)["users_without_mfa"], 10000)
}

// A fully throttled account gets its share of the run's deadline, not all
// of it: the next account is still audited, and what the throttled one
// could not decide says why.
func TestThrottledAccountKeepsToItsShare(t *testing.T) {
	f := newFakeAWS(t, testNow)
	slow := cleanAccount(t, "111122223333")
	slow.Throttle = map[string]int{"GetAccountAuthorizationDetails": 1 << 30, "ListVirtualMFADevices": 1 << 30}
	f.addAccount("AKIASLOW", slow)
	f.addAccount("AKIAFAST", cleanAccount(t, "444455556666"))
	f.addRole("arn:aws:iam::444455556666:role/audit", "444455556666")
	testEnv(t, "AKIASLOW")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	resp, err := testPlugin(func() time.Time { return testNow }).Collect(ctx, plugins.Request{Settings: fakeSettings(f, map[string]any{
		"assume_roles": []any{"arn:aws:iam::444455556666:role/audit"}, "max_attempts": 1000, "max_backoff": "1s"})})
	require.NoError(t, err)
	require.Len(t, resp.Assets, 2)
	got := map[evidence.Asset]map[string]evidence.Result{}
	for _, a := range resp.Assets {
		got[a.Asset] = map[string]evidence.Result{}
		for _, r := range a.Results {
			got[a.Asset][r.Check] = r
		}
	}
	throttled := got["aws-account:111122223333"]
	require.Equal(t, evidence.Pass, throttled["aws_iam.root_mfa"].Status, "decided before the share ran out")
	require.Equal(t, evidence.Error, throttled["aws_iam.direct_user_policies"].Status)
	require.Contains(t, throttled["aws_iam.direct_user_policies"].Reason, "share of the plugin's timeout")
	require.Equal(t, allStatus(evidence.Pass), statuses(got["aws-account:444455556666"]), "the second account is not starved")
}

// No check passes on an account whose answers are absent (every call
// denied), empty (well-formed answers with nothing in them) or garbage.
func TestNeverPassOnNothing(t *testing.T) {
	header := strings.SplitN(readReport(t, "report-clean.csv"), "\n", 2)[0] + "\n"
	deny := map[string]bool{}
	for _, a := range []string{"GetAccountSummary", "ListVirtualMFADevices", "GenerateCredentialReport", "GetCredentialReport",
		"GetAccountPasswordPolicy", "GetAccountAuthorizationDetails", "ListAnalyzers", "DescribeRegions"} {
		deny[a] = true
	}
	for mode, set := range map[string]func(a *fakeAccount){
		"absent": func(a *fakeAccount) { a.Deny = deny },
		"empty": func(a *fakeAccount) {
			a.Summary, a.NoSummaryMap, a.Report, a.PasswordPolicy = map[string]int{}, true, header, nil
			a.VirtualMFA, a.Users, a.Groups, a.Policies, a.Analyzers, a.Regions = nil, nil, nil, nil, nil, []string{}
			a.AuthPaging = "empty"
		},
		"garbage": func(a *fakeAccount) { a.Garbage = true },
	} {
		t.Run(mode, func(t *testing.T) {
			f := newFakeAWS(t, testNow)
			a := cleanAccount(t, "111122223333")
			set(a)
			f.addAccount("AKIANOTHING", a)
			testEnv(t, "AKIANOTHING")
			rs := collect(t, f, fakeSettings(f, map[string]any{"report_wait": "1s"}))["aws-account:111122223333"]
			require.Len(t, rs, len(checks))
			for id, r := range rs {
				require.NotEqual(t, evidence.Pass, r.Status, "%s with every answer %s: %s", id, mode, r.Reason)
				require.NotEmpty(t, r.Reason)
			}
		})
	}
}
