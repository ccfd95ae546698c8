package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer"
	aatypes "github.com/aws/aws-sdk-go-v2/service/accessanalyzer/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// facts is what one account's APIs answered. Each source keeps its own
// error, so a denied or failing call makes only the checks that need it
// `error`, and the rest are still decided.
type facts struct {
	summary    map[string]int32
	summaryErr error

	virtualMFA []types.VirtualMFADevice
	mfaErr     error

	report    *credentialReport
	reportErr error

	policy    *types.PasswordPolicy // nil: the account has none
	policyErr error

	auth    *authDetails
	authErr error

	analyzers   map[string][]aatypes.AnalyzerSummary // by region
	regionsFrom string                               // where the region list came from
	analyzerErr error
}

// authDetails is GetAccountAuthorizationDetails, all pages.
type authDetails struct {
	Users    []types.UserDetail
	Groups   []types.GroupDetail
	Roles    []types.RoleDetail
	Policies []types.ManagedPolicyDetail // customer managed only
}

// gather calls every API the checks need, for the account cfg's credentials
// reach.
func gather(ctx context.Context, cfg aws.Config, s *settings) *facts {
	client := iam.NewFromConfig(cfg)
	f := &facts{}

	if out, err := client.GetAccountSummary(ctx, &iam.GetAccountSummaryInput{}); err != nil {
		f.summaryErr = fmt.Errorf("GetAccountSummary: %w", err)
	} else {
		f.summary = out.SummaryMap
	}

	p := iam.NewListVirtualMFADevicesPaginator(client, &iam.ListVirtualMFADevicesInput{AssignmentStatus: types.AssignmentStatusTypeAssigned},
		func(o *iam.ListVirtualMFADevicesPaginatorOptions) { o.StopOnDuplicateToken = true })
	guard := pageGuard{api: "ListVirtualMFADevices"}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err == nil {
			err = guard.check(page.IsTruncated, page.Marker)
		}
		if err != nil {
			f.mfaErr = fmt.Errorf("ListVirtualMFADevices: %w", err)
			break
		}
		f.virtualMFA = append(f.virtualMFA, page.VirtualMFADevices...)
	}

	f.report, f.reportErr = fetchCredentialReport(ctx, client, s.reportWait, s.reportPoll)

	if out, err := client.GetAccountPasswordPolicy(ctx, &iam.GetAccountPasswordPolicyInput{}); err != nil {
		// NoSuchEntity is an answer: the account has no password policy.
		if !isCode(err, "NoSuchEntity") {
			f.policyErr = fmt.Errorf("GetAccountPasswordPolicy: %w", err)
		}
	} else {
		f.policy = out.PasswordPolicy
	}

	f.auth, f.authErr = authorizationDetails(ctx, client)
	regions, from := s.AnalyzerRegions, "the analyzer_regions setting"
	if len(regions) == 0 {
		var err error
		regions, err = enabledRegions(ctx, cfg)
		from = "every region enabled for the account (DescribeRegions)"
		if err != nil {
			f.analyzerErr = fmt.Errorf("cannot list the account's enabled regions: %w", err)
			return f
		}
	}
	f.regionsFrom = from
	f.analyzers, f.analyzerErr = listAnalyzers(ctx, cfg, regions)
	return f
}

func authorizationDetails(ctx context.Context, client *iam.Client) (*authDetails, error) {
	d := &authDetails{}
	p := iam.NewGetAccountAuthorizationDetailsPaginator(client, &iam.GetAccountAuthorizationDetailsInput{
		Filter: []types.EntityType{types.EntityTypeUser, types.EntityTypeGroup, types.EntityTypeRole, types.EntityTypeLocalManagedPolicy},
	}, func(o *iam.GetAccountAuthorizationDetailsPaginatorOptions) { o.StopOnDuplicateToken = true })
	guard := pageGuard{api: "GetAccountAuthorizationDetails"}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err == nil {
			err = guard.check(page.IsTruncated, page.Marker)
		}
		if err != nil {
			return nil, fmt.Errorf("GetAccountAuthorizationDetails: %w", err)
		}
		d.Users = append(d.Users, page.UserDetailList...)
		d.Groups = append(d.Groups, page.GroupDetailList...)
		d.Roles = append(d.Roles, page.RoleDetailList...)
		d.Policies = append(d.Policies, page.Policies...)
	}
	return d, nil
}

// pageGuard refuses a listing that cannot be complete. The SDK's
// paginators follow Marker alone: IsTruncated with no Marker ends the
// listing early without a word, and a Marker seen before loops (the SDK's
// duplicate-token stop catches only the same token twice in a row, and
// then also ends early). Either way the pages read are not the account.
type pageGuard struct {
	api  string
	seen map[string]bool
}

func (g *pageGuard) check(truncated bool, marker *string) error {
	m := aws.ToString(marker)
	if truncated && m == "" {
		return fmt.Errorf("IsTruncated is true but no Marker was given: the listing is incomplete")
	}
	if m == "" {
		return nil
	}
	if g.seen[m] {
		return fmt.Errorf("the Marker %q repeated: the listing loops and is incomplete", m)
	}
	if g.seen == nil {
		g.seen = map[string]bool{}
	}
	g.seen[m] = true
	return nil
}

func listAnalyzers(ctx context.Context, cfg aws.Config, regions []string) (map[string][]aatypes.AnalyzerSummary, error) {
	all := map[string][]aatypes.AnalyzerSummary{}
	for _, region := range regions {
		client := accessanalyzer.NewFromConfig(cfg, func(o *accessanalyzer.Options) { o.Region = region })
		p := accessanalyzer.NewListAnalyzersPaginator(client, &accessanalyzer.ListAnalyzersInput{},
			func(o *accessanalyzer.ListAnalyzersPaginatorOptions) { o.StopOnDuplicateToken = true })
		all[region] = []aatypes.AnalyzerSummary{}
		guard := pageGuard{api: "ListAnalyzers"}
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err == nil {
				err = guard.check(false, page.NextToken)
			}
			if err != nil {
				return nil, fmt.Errorf("ListAnalyzers in %s: %w", region, err)
			}
			all[region] = append(all[region], page.Analyzers...)
		}
	}
	return all, nil
}

// policyDocument is the part of an IAM policy the admin check reads.
// Statement, Action and Resource may each be one value or a list.
type policyDocument struct {
	Statement oneOrMany[statement] `json:"Statement"`
}

type statement struct {
	Effect      string            `json:"Effect"`
	Action      oneOrMany[string] `json:"Action"`
	NotAction   oneOrMany[string] `json:"NotAction"`
	Resource    oneOrMany[string] `json:"Resource"`
	NotResource oneOrMany[string] `json:"NotResource"`
}

type oneOrMany[T any] []T

func (o *oneOrMany[T]) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '[' {
		return json.Unmarshal(b, (*[]T)(o))
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*o = []T{v}
	return nil
}

// grantsFullAdmin reports whether an IAM policy document, URL-encoded as
// IAM returns it, allows every action on every resource, or the
// equivalent: "NotAction" grants every action it does not list, so one
// that leaves IAM allowed lets its holder grant themselves the rest;
// "NotResource" is every resource but the ones listed.
func grantsFullAdmin(encoded string) (bool, error) {
	raw, err := url.PathUnescape(encoded)
	if err != nil {
		return false, fmt.Errorf("policy document: %w", err)
	}
	var doc policyDocument
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		return false, fmt.Errorf("policy document: %w", err)
	}
	for _, st := range doc.Statement {
		if !strings.EqualFold(st.Effect, "Allow") {
			continue
		}
		allActions := slices.Contains(st.Action, "*") || slices.Contains(st.Action, "*:*") ||
			(len(st.NotAction) > 0 && !excludesIAM(st.NotAction))
		allResources := slices.Contains(st.Resource, "*") || len(st.NotResource) > 0
		if allActions && allResources {
			return true, nil
		}
	}
	return false, nil
}

// excludesIAM: a NotAction list that takes all of IAM away ("iam:*",
// "iam:*" spelled with other case, or "*").
func excludesIAM(notAction []string) bool {
	for _, a := range notAction {
		switch strings.ToLower(a) {
		case "*", "*:*", "iam:*", "iam*":
			return true
		}
	}
	return false
}
