package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// settings are the plugin's part of agent.yaml. Every field is optional: by
// default the plugin audits the account of the SDK's default credential
// chain (environment, shared profile, SSO, instance role).
type settings struct {
	// Region for STS and Access Analyzer (IAM is global). Default us-east-1.
	Region string `json:"region"`
	// Profile selects a shared-config profile instead of AWS_PROFILE.
	Profile string `json:"profile"`
	// EndpointURL overrides every service's endpoint (a VPC endpoint, a
	// test double). AWS_ENDPOINT_URL does the same.
	EndpointURL string `json:"endpoint_url"`
	// CABundle is a PEM file of extra roots for EndpointURL (AWS_CA_BUNDLE).
	CABundle string `json:"ca_bundle"`
	// AssumeRoles are role ARNs to audit in addition to (or, with
	// SkipDefaultAccount, instead of) the default credentials' account.
	AssumeRoles        []string `json:"assume_roles"`
	ExternalID         string   `json:"external_id"`
	SkipDefaultAccount bool     `json:"skip_default_account"`
	// AnalyzerRegions must each have an active IAM Access Analyzer.
	// Default: every region enabled for the account (EC2 DescribeRegions),
	// as CIS asks.
	AnalyzerRegions []string `json:"analyzer_regions"`
	// ReportWait bounds how long to wait for the credential report to be
	// generated (it is also bounded by the plugin's timeout); ReportPoll is
	// the pause between polls.
	ReportWait string `json:"report_wait"`
	ReportPoll string `json:"report_poll"`
	// MaxAttempts and MaxBackoff tune the SDK's retries of throttled and
	// failed calls.
	MaxAttempts int    `json:"max_attempts"`
	MaxBackoff  string `json:"max_backoff"`
	// Thresholds are the policy the checks compare against; every result
	// records the ones it used.
	Thresholds thresholds `json:"thresholds"`

	reportWait, reportPoll, maxBackoff time.Duration
}

type thresholds struct {
	RootUseDays             int   `json:"root_use_days"`
	AccessKeyMaxAgeDays     int   `json:"access_key_max_age_days"`
	UnusedCredentialDays    int   `json:"unused_credential_days"`
	PasswordMinLength       int   `json:"password_min_length"`
	PasswordReusePrevention int   `json:"password_reuse_prevention"`
	PasswordComplexity      *bool `json:"password_complexity"`
}

// defaultSettings are the settings before agent.yaml's are decoded over
// them: a key given as 0 stays 0 (and is refused below if 0 makes no
// sense), it is never mistaken for "not given".
func defaultSettings() settings {
	yes := true
	return settings{
		Region: "us-east-1", ReportWait: "2m", ReportPoll: "5s", MaxAttempts: 8, MaxBackoff: "20s",
		Thresholds: thresholds{RootUseDays: 30, AccessKeyMaxAgeDays: 90, UnusedCredentialDays: 45,
			PasswordMinLength: 14, PasswordReusePrevention: 24, PasswordComplexity: &yes},
	}
}

func parseSettings(m map[string]any) (*settings, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	s := defaultSettings()
	if len(m) > 0 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			return nil, fmt.Errorf("settings: %w", err)
		}
	}
	if s.Region == "" {
		return nil, fmt.Errorf("settings: region must not be empty")
	}
	if s.SkipDefaultAccount && len(s.AssumeRoles) == 0 {
		return nil, fmt.Errorf("settings: skip_default_account needs assume_roles")
	}
	for _, arn := range s.AssumeRoles {
		if _, err := roleAccount(arn); err != nil {
			return nil, fmt.Errorf("settings: assume_roles: %w", err)
		}
	}
	for _, d := range []struct {
		name string
		in   string
		out  *time.Duration
	}{
		{"report_wait", s.ReportWait, &s.reportWait},
		{"report_poll", s.ReportPoll, &s.reportPoll},
		{"max_backoff", s.MaxBackoff, &s.maxBackoff},
	} {
		v, err := time.ParseDuration(d.in)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("settings: %s: %q is not a positive duration", d.name, d.in)
		}
		*d.out = v
	}
	if s.MaxAttempts < 1 {
		return nil, fmt.Errorf("settings: max_attempts: %d, want at least 1", s.MaxAttempts)
	}
	t := &s.Thresholds
	for _, d := range []struct {
		name string
		v    int
	}{
		{"root_use_days", t.RootUseDays},
		{"access_key_max_age_days", t.AccessKeyMaxAgeDays},
		{"unused_credential_days", t.UnusedCredentialDays},
		{"password_min_length", t.PasswordMinLength},
	} {
		if d.v < 1 {
			return nil, fmt.Errorf("settings: thresholds.%s: %d, want at least 1", d.name, d.v)
		}
	}
	if t.PasswordReusePrevention < 0 || t.PasswordReusePrevention > 24 {
		return nil, fmt.Errorf("settings: thresholds.password_reuse_prevention: %d, want 0 to 24 (IAM's range; 0: no requirement)", t.PasswordReusePrevention)
	}
	if t.PasswordComplexity == nil {
		yes := true
		t.PasswordComplexity = &yes
	}
	return &s, nil
}

// roleAccount is the account id in a role ARN
// (arn:aws:iam::123456789012:role/Name).
func roleAccount(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") || !isAccountID(parts[4]) {
		return "", fmt.Errorf("%q is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)", arn)
	}
	return parts[4], nil
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
