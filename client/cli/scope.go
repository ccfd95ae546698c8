package cli

import (
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/annexa-dev/annexa/server/apiv1"
)

func newScope(g *globals) *cobra.Command {
	show := func(cmd *cobra.Command, sc apiv1.Scope) error {
		if g.output == "json" {
			return render(cmd.OutOrStdout(), "json", &table{raw: sc})
		}
		if sc.Selector == "" {
			fmt.Fprintf(cmd.OutOrStdout(), "no ISMS scope set: every asset is in scope (%d agents)\n", sc.Agents)
			return nil
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s (%d agents)\n", sc.Selector, sc.Agents)
		return nil
	}
	put := func(cmd *cobra.Command, sel string) error {
		c, err := g.client()
		if err != nil {
			return err
		}
		var sc apiv1.Scope
		if err := c.Do(cmd.Context(), http.MethodPut, "/v1/scope", nil, apiv1.Scope{Selector: sel}, &sc); err != nil {
			return err
		}
		return show(cmd, sc)
	}
	cmd := &cobra.Command{
		Use:         "scope",
		Annotations: outputs("table", "json"),
		Short:       "The ISMS scope (clause 4.3) as a label selector: show it",
		Long: `The ISMS scope is a selector over the labels agents were enrolled with:
"env=prod,team!=lab" selects the assets of agents labelled env=prod and not
team=lab. controls, control, hosts, evidence, history, soa and export take
--in-scope; every bundle's soa.json names the scope.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var sc apiv1.Scope
			if err := c.Do(cmd.Context(), http.MethodGet, "/v1/scope", nil, nil, &sc); err != nil {
				return err
			}
			return show(cmd, sc)
		},
	}
	set := &cobra.Command{
		Use: "set SELECTOR", Short: "Set the ISMS scope, e.g. 'env=prod,team!=lab' (admin)", Args: cobra.ExactArgs(1), Annotations: outputs("table", "json"),
		RunE: func(cmd *cobra.Command, args []string) error { return put(cmd, args[0]) },
	}
	clear := &cobra.Command{
		Use: "clear", Short: "Remove the ISMS scope: every asset is in scope (admin)", Args: cobra.NoArgs, Annotations: outputs("table", "json"),
		RunE: func(cmd *cobra.Command, _ []string) error { return put(cmd, "") },
	}
	cmd.AddCommand(set, clear)
	return cmd
}
