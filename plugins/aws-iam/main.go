// Command annexa-plugin-aws-iam audits the IAM configuration of one or more
// AWS accounts against Annex A: root user, password policy, MFA, access
// keys, unused credentials, directly attached and administrator policies,
// IAM Access Analyzer. Each account is an asset, aws-account:<id>. See
// README.md for the settings.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/plugins"
	"github.com/annexa-dev/annexa/plugins/sdk"
)

const version = "1.0.0"

func main() { sdk.Serve(iamPlugin{now: time.Now, log: sdk.Logger()}) }

type iamPlugin struct {
	now func() time.Time
	log *slog.Logger
}

func (iamPlugin) Describe(_ context.Context, req plugins.Request) (*plugins.Description, error) {
	if _, err := parseSettings(req.Settings); err != nil {
		return nil, err
	}
	return &plugins.Description{Name: "aws_iam", Version: version, Checks: checks}, nil
}

// Collect audits every configured account. An account that cannot be
// reached (a role that cannot be assumed) gets `error` for every check with
// the reason; only when the default credentials themselves fail is the whole
// run an error, since then no account id is known to report against.
func (p iamPlugin) Collect(ctx context.Context, req plugins.Request) (*plugins.CollectResponse, error) {
	s, err := parseSettings(req.Settings)
	if err != nil {
		return nil, err
	}
	log := p.log
	base, err := loadConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	resp := &plugins.CollectResponse{}
	left := len(s.AssumeRoles)
	if !s.SkipDefaultAccount {
		left++
	}
	// share gives the next account its part of what is left of the run's
	// deadline, so a throttled account cannot spend all of it (the SDK's
	// retries of one fully throttled account take minutes) and lose every
	// account's results: at its share's end its calls stop, the checks
	// decided so far stand and the rest are error.
	share := func() (context.Context, context.CancelFunc, time.Duration) {
		defer func() { left-- }()
		dl, ok := ctx.Deadline()
		if !ok || left <= 0 {
			c, cancel := context.WithCancel(ctx)
			return c, cancel, 0
		}
		rest := time.Until(dl)
		rest -= min(2*time.Second, rest/10) // to answer the host in
		d := rest / time.Duration(left)
		c, cancel := context.WithTimeout(ctx, d)
		return c, cancel, d
	}
	if !s.SkipDefaultAccount {
		id, err := callerAccount(ctx, base)
		if err != nil {
			return nil, fmt.Errorf("aws credentials: %w", err)
		}
		log.Info("auditing account", "account", id, "credentials", "default chain")
		actx, cancel, d := share()
		resp.Assets = append(resp.Assets, p.audit(actx, base, id, s, d))
		cancel()
	}
	for _, role := range s.AssumeRoles {
		want, _ := roleAccount(role) // validated in parseSettings
		cfg := base.Copy()
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(base), role,
			func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = "annexa-aws-iam"
				if s.ExternalID != "" {
					o.ExternalID = aws.String(s.ExternalID)
				}
			}))
		asset := evidence.Asset("aws-account:" + want)
		actx, cancel, d := share()
		defer cancel()
		got, err := callerAccount(actx, cfg)
		if err != nil {
			log.Warn("cannot assume role", "role", role, "err", err)
			resp.Assets = append(resp.Assets, plugins.AssetResults{Asset: asset, Results: errorsFor(fmt.Sprintf("assume role %s: %v", role, err))})
			continue
		}
		if got != want {
			resp.Assets = append(resp.Assets, plugins.AssetResults{Asset: asset,
				Results: errorsFor(fmt.Sprintf("role %s answered as account %s", role, got))})
			continue
		}
		log.Info("auditing account", "account", got, "credentials", role)
		resp.Assets = append(resp.Assets, p.audit(actx, cfg, got, s, d))
	}
	return resp, nil
}

// audit decides one account's checks within ctx, whose deadline is this
// account's share (d) of the run's.
func (p iamPlugin) audit(ctx context.Context, cfg aws.Config, account string, s *settings, d time.Duration) plugins.AssetResults {
	f := gather(ctx, cfg, s)
	rs := decide(f, s.Thresholds, p.now())
	if ctx.Err() != nil && d > 0 {
		for i := range rs {
			if rs[i].Status == evidence.Error && (strings.Contains(rs[i].Reason, "deadline exceeded") || strings.Contains(rs[i].Reason, "context canceled")) {
				rs[i].Reason = fmt.Sprintf("not decided within this account's %s share of the plugin's timeout: %s", d.Round(time.Second), rs[i].Reason)
			}
		}
	}
	return plugins.AssetResults{Asset: evidence.Asset("aws-account:" + account), Results: rs}
}

func loadConfig(ctx context.Context, s *settings) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(s.Region),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = s.MaxAttempts
				o.MaxBackoff = s.maxBackoff
			})
		}),
	}
	if s.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(s.Profile))
	}
	if s.EndpointURL != "" {
		opts = append(opts, config.WithBaseEndpoint(s.EndpointURL))
	}
	if s.CABundle != "" {
		f, err := os.Open(s.CABundle)
		if err != nil {
			return aws.Config{}, fmt.Errorf("settings: ca_bundle: %w", err)
		}
		defer f.Close()
		opts = append(opts, config.WithCustomCABundle(f))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws config: %w", err)
	}
	return cfg, nil
}

func callerAccount(ctx context.Context, cfg aws.Config) (string, error) {
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Account), nil
}
