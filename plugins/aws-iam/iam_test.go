package main

import (
	"context"
	"encoding/json"
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
		Groups: []fakeGroup{{Name: "admins", Managed: []string{"arn:aws:iam::aws:policy/AdministratorAccess"}},
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
	require.Equal(t, []any{"group admins"}, obs["aws_administratoraccess_attached_to"])
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
	for _, id := range []string{"aws_iam.root_mfa", "aws_iam.root_hardware_mfa", "aws_iam.root_access_keys", "aws_iam.root_recent_use"} {
		want[id] = evidence.Fail
	}
	require.Equal(t, want, statuses(rs), "%v", rs)
	require.Contains(t, rs["aws_iam.root_recent_use"].Reason, "used 2 days ago")
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
	require.Equal(t, "2 active access keys are older than 90 days: carol key 1 (200 days), carol key 2 (95 days)", rs["aws_iam.access_key_age"].Reason)
	require.Equal(t, "3 credentials unused for 45 days or more: carol password, dave password, legacy-backup access_key_1", rs["aws_iam.unused_credentials"].Reason)
	require.Equal(t, "1 users have two active access keys: carol", rs["aws_iam.multiple_active_keys"].Reason)
	require.Equal(t, "2 users have policies attached directly: carol, dave", rs["aws_iam.direct_user_policies"].Reason)
	require.Contains(t, rs["aws_iam.admin_policies"].Reason, "managed policy arn:aws:iam::777788889999:policy/BreakGlass")
	require.Contains(t, rs["aws_iam.admin_policies"].Reason, "user dave inline policy everything")
	require.NotContains(t, rs["aws_iam.admin_policies"].Reason, "OldAdmin", "an unattached policy grants nothing")
	require.Equal(t, "no active external-access analyzer in us-east-1", rs["aws_iam.access_analyzer"].Reason)
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
	require.Equal(t, []string{"us-east-1"}, s.AnalyzerRegions)
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
