package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"
)

// credentialReport is IAM's credential report: one row per user and one for
// the root user, answering most of the checks with one API call however many
// users the account has.
type credentialReport struct {
	Generated time.Time
	Root      *credentialRow
	Users     []credentialRow
}

// credentialRow is one line of the report, with the documented columns this
// plugin decides from. Times are nil where the report says N/A,
// no_information or not_supported.
type credentialRow struct {
	User             string
	ARN              string
	Created          *time.Time
	PasswordEnabled  bool
	PasswordLastUsed *time.Time
	PasswordChanged  *time.Time
	MFAActive        bool
	Keys             [2]accessKey
}

type accessKey struct {
	Active      bool
	LastRotated *time.Time
	LastUsed    *time.Time
}

// rootUser is the report's name for the account's root user.
const rootUser = "<root_account>"

var requiredColumns = []string{
	"user", "arn", "user_creation_time", "password_enabled", "password_last_used",
	"password_last_changed", "mfa_active",
	"access_key_1_active", "access_key_1_last_rotated", "access_key_1_last_used_date",
	"access_key_2_active", "access_key_2_last_rotated", "access_key_2_last_used_date",
}

// parseCredentialReport reads the report's CSV. A missing column or a value
// it cannot read is an error naming the line: the checks that depend on it
// then say why they could not decide.
func parseCredentialReport(content []byte, generated time.Time) (*credentialReport, error) {
	r := csv.NewReader(bytes.NewReader(content))
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("credential report: header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	for _, c := range requiredColumns {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("credential report: column %q missing", c)
		}
	}
	rep := &credentialReport{Generated: generated}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("credential report: %w", err)
		}
		get := func(name string) string { return rec[col[name]] }
		var perr error
		tm := func(name string) *time.Time {
			v := get(name)
			switch v {
			case "N/A", "no_information", "not_supported", "":
				return nil
			}
			t, err := time.Parse(time.RFC3339, v)
			if err != nil && perr == nil {
				perr = fmt.Errorf("credential report line %d: %s: %q is not a time", line, name, v)
			}
			if err != nil {
				return nil
			}
			return &t
		}
		// IAM writes booleans as lowercase true or false. Anything else
		// (TRUE, yes, 1, empty) is not read as false: a console user
		// without MFA must never pass on a value nobody understood.
		flag := func(name string, na bool) bool {
			v := get(name)
			switch {
			case v == "true":
				return true
			case v == "false":
				return false
			case na && (v == "not_supported" || v == "N/A"):
				// The root row's password_enabled is not_supported.
				return false
			}
			if perr == nil {
				perr = fmt.Errorf("credential report line %d (user %q): %s: %q is neither true nor false", line, get("user"), name, v)
			}
			return false
		}
		row := credentialRow{
			User:             get("user"),
			ARN:              get("arn"),
			Created:          tm("user_creation_time"),
			PasswordEnabled:  flag("password_enabled", get("user") == rootUser),
			PasswordLastUsed: tm("password_last_used"),
			PasswordChanged:  tm("password_last_changed"),
			MFAActive:        flag("mfa_active", false),
		}
		for i := range 2 {
			p := fmt.Sprintf("access_key_%d_", i+1)
			row.Keys[i] = accessKey{Active: flag(p+"active", false), LastRotated: tm(p + "last_rotated"), LastUsed: tm(p + "last_used_date")}
		}
		if perr != nil {
			return nil, perr
		}
		if row.User == rootUser {
			r := row
			rep.Root = &r
			continue
		}
		rep.Users = append(rep.Users, row)
	}
	if rep.Root == nil {
		return nil, errors.New("credential report: no row for the root user")
	}
	return rep, nil
}

// iamReportAPI is the part of the IAM client the report needs.
type iamReportAPI interface {
	GenerateCredentialReport(context.Context, *iam.GenerateCredentialReportInput, ...func(*iam.Options)) (*iam.GenerateCredentialReportOutput, error)
	GetCredentialReport(context.Context, *iam.GetCredentialReportInput, ...func(*iam.Options)) (*iam.GetCredentialReportOutput, error)
}

// fetchCredentialReport asks IAM to generate the report (IAM regenerates it
// at most every 4 hours and otherwise hands back the current one), then
// fetches it, waiting while IAM answers ReportInProgress, ReportNotPresent or
// LimitExceeded, for at most wait. It never returns a stale guess: after the
// wait it is an error saying what IAM last answered.
func fetchCredentialReport(parent context.Context, api iamReportAPI, wait, poll time.Duration) (*credentialReport, error) {
	ctx, cancel := context.WithTimeout(parent, wait)
	defer cancel()
	var last error
	// notReady is the answer once the wait is over, whichever call it cut
	// short: what IAM last said, not the cancelled call's deadline.
	notReady := func(cut error) error {
		if last == nil {
			last = cut
		}
		return fmt.Errorf("credential report not ready after %s: %w", wait, last)
	}
	waitOver := func() bool { return ctx.Err() != nil && parent.Err() == nil }
	for attempt := 0; ; attempt++ {
		_, gerr := api.GenerateCredentialReport(ctx, &iam.GenerateCredentialReportInput{})
		if gerr != nil && !isCode(gerr, "LimitExceeded") {
			if waitOver() {
				return nil, notReady(gerr)
			}
			return nil, fmt.Errorf("generate credential report: %w", gerr)
		}
		out, err := api.GetCredentialReport(ctx, &iam.GetCredentialReportInput{})
		if err == nil {
			if out.ReportFormat != "" && out.ReportFormat != "text/csv" {
				return nil, fmt.Errorf("credential report: format %q, want text/csv", out.ReportFormat)
			}
			gen := time.Time{}
			if out.GeneratedTime != nil {
				gen = *out.GeneratedTime
			}
			return parseCredentialReport(out.Content, gen)
		}
		if !isCode(err, "ReportInProgress", "ReportNotPresent", "ReportExpired") {
			if waitOver() {
				return nil, notReady(err)
			}
			return nil, fmt.Errorf("get credential report: %w", err)
		}
		last = err
		if gerr != nil {
			last = fmt.Errorf("%w (and generating: %v)", err, gerr)
		}
		select {
		case <-ctx.Done():
			if waitOver() {
				return nil, notReady(ctx.Err())
			}
			return nil, fmt.Errorf("credential report: %w", parent.Err())
		case <-time.After(poll):
		}
	}
}

// isCode reports whether err is an AWS API error with one of codes.
func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}
