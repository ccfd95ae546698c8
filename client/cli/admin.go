package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/internal/units"
	"github.com/annexa-dev/annexa/server/apiv1"
)

func newToken(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke API and enrollment tokens (admin)"}
	var req apiv1.TokenRequest
	var expires string
	var lbls, assets []string
	create := &cobra.Command{
		Use:         "create",
		Annotations: outputs("table", "json"),
		Short:       "Create a token; its secret is printed once",
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if expires != "" {
				if d, err := units.ParseDuration(expires); err == nil {
					req.Expires = time.Now().Add(d).UTC()
				} else if t, err := time.Parse(time.RFC3339, expires); err == nil {
					req.Expires = t
				} else if t, err := time.Parse("2006-01-02", expires); err == nil {
					req.Expires = t
				} else {
					return fmt.Errorf("--expires %q: want a duration (72h, 30d), a date (2027-01-31) or an RFC 3339 time", expires)
				}
			}
			if len(lbls) > 0 {
				var err error
				if req.Labels, err = apiv1.ParseLabels(lbls); err != nil {
					return fmt.Errorf("--label: %w", err)
				}
			}
			for _, a := range assets {
				req.Assets = append(req.Assets, evidence.Asset(a))
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var resp apiv1.TokenResponse
			if err := c.Do(cmd.Context(), http.MethodPost, "/v1/tokens", nil, req, &resp); err != nil {
				return err
			}
			if g.output == "json" {
				return render(cmd.OutOrStdout(), "json", &table{raw: resp})
			}
			fmt.Fprintln(cmd.OutOrStdout(), resp.Secret)
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s (%s) created; the secret above is not shown again\n", resp.ID, resp.Role)
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&req.Role, "role", "", "enroll, admin, analyst or auditor (required)")
	f.StringVar(&req.Name, "name", "", "a name to recognise it by")
	f.StringVar(&expires, "expires", "", "expiry: a duration (72h, 30d), a date (2027-01-31) or an RFC 3339 time; default never")
	f.Int64Var(&req.MaxUses, "max-uses", 0, "enroll tokens: how many agents may enrol with it (0: unlimited)")
	f.StringSliceVar(&lbls, "label", nil, "enroll tokens: label stamped on every agent enrolled with it, key=value; repeatable")
	f.StringSliceVar(&assets, "asset", nil, "enroll tokens: external asset the agents enrolled with it may report on (e.g. aws-account:123456789012); repeatable")
	f.StringVar(&req.Selector, "selector", "", "analyst and auditor tokens: see only the hosts whose labels match, e.g. 'team=finance' or 'env=prod,team!=lab'")
	_ = create.MarkFlagRequired("role")

	list := &cobra.Command{
		Use: "list", Short: "List tokens (never their secrets)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var page apiv1.Page[apiv1.Token]
			if err := c.Do(cmd.Context(), http.MethodGet, "/v1/tokens", nil, nil, &page); err != nil {
				return err
			}
			t := &table{header: []string{"ID", "ROLE", "NAME", "CREATED", "EXPIRES", "USES", "MAX USES", "LABELS", "SELECTOR", "REVOKED"}, raw: page.Items}
			for _, k := range page.Items {
				t.add(k.ID, k.Role, k.Name, ts(k.CreatedAt), ts(k.ExpiresAt), strconv.FormatInt(k.Uses, 10), strconv.FormatInt(k.MaxUses, 10), labels(k.Labels), k.Selector, strconv.FormatBool(k.Revoked))
			}
			return render(cmd.OutOrStdout(), g.output, t)
		},
	}
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a token", Args: cobra.ExactArgs(1), Annotations: outputs("table"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.Do(cmd.Context(), http.MethodDelete, "/v1/tokens/"+url.PathEscape(args[0]), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func newAgent(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "agent", Short: "Manage enrolled agents (admin)"}
	var purge bool
	revoke := &cobra.Command{
		Use:         "revoke ID",
		Annotations: outputs("table"),
		Short:       "Revoke an agent: its later records are refused, earlier ones stay verifiable",
		Args:        cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var resp struct {
				AgentID string `json:"agent_id"`
				After   uint64 `json:"revoked_after_seq"`
				Purged  int64  `json:"purged_states"`
			}
			var q url.Values
			if purge {
				q = url.Values{"purge": {"true"}}
			}
			if err := c.Do(cmd.Context(), http.MethodPost, "/v1/agents/"+url.PathEscape(args[0])+"/revoke", q, struct{}{}, &resp); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agent %s revoked; records after seq %d are refused\n", resp.AgentID, resp.After)
			if purge {
				fmt.Fprintf(cmd.OutOrStdout(), "%d check results of it removed from the current state; its log entries stay, verifiable\n", resp.Purged)
			}
			return nil
		},
	}
	revoke.Flags().BoolVar(&purge, "purge", false, "also remove the agent's results from the current state (a polluting agent); its log entries stay")
	grant := func(verb, short string) *cobra.Command {
		return &cobra.Command{
			Use:         verb + " ID ASSET...",
			Annotations: outputs("table"),
			Short:       short,
			Args:        cobra.MinimumNArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := g.client()
				if err != nil {
					return err
				}
				req := apiv1.GrantRequest{}
				for _, a := range args[1:] {
					req.Assets = append(req.Assets, evidence.Asset(a))
				}
				var resp struct {
					AgentID string           `json:"agent_id"`
					Assets  []evidence.Asset `json:"assets"`
				}
				if err := c.Do(cmd.Context(), http.MethodPost, "/v1/agents/"+url.PathEscape(args[0])+"/"+verb, nil, req, &resp); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "agent %s may now report on its host and: %v\n", resp.AgentID, resp.Assets)
				return nil
			},
		}
	}
	cmd.AddCommand(revoke,
		grant("grant", "Let an agent report on external assets (cloud accounts, …) besides its host; a key event in the log"),
		grant("ungrant", "Take external assets back from an agent; its earlier records about them stay verifiable"))
	return cmd
}

func newLog(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "log", Short: "Read the transparency log"}
	cp := &cobra.Command{
		Use: "checkpoint", Short: "Print the latest signed checkpoint (a signed note: text only)", Args: cobra.NoArgs, Annotations: outputs("table"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var b []byte
			if err := c.Do(cmd.Context(), http.MethodGet, "/v1/log/checkpoint", nil, nil, &b); err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	cmd.AddCommand(cp)
	return cmd
}
