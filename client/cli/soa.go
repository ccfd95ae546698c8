package cli

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/annexa-dev/annexa/server/apiv1"
)

func newSoA(g *globals) *cobra.Command {
	var flagged, scoped bool
	cmd := &cobra.Command{
		Use:   "soa",
		Short: "The Statement of Applicability: every Annex A control, applicable or excluded, its status, owner and evidence",
		Long: `The Statement of Applicability (ISO/IEC 27001 clause 6.1.3 d): the 93 Annex A
controls, each applicable or excluded with a justification, its implementation
status and owner as an admin set them (annexa soa set / exclude), the fleet's
evidence for it, and flags where they disagree: applicable without evidence,
failing or stale evidence, excluded yet evidenced, not assessed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var soa apiv1.SoAResponse
			var q url.Values
			if scoped {
				q = url.Values{"in_scope": {"true"}}
			}
			if err := c.Do(cmd.Context(), http.MethodGet, "/v1/soa", q, nil, &soa); err != nil {
				return err
			}
			t := &table{header: []string{"CONTROL", "TITLE", "APPLICABLE", "STATUS", "OWNER", "EVIDENCE", "JUSTIFICATION", "FLAGS"}, raw: soa}
			for _, l := range soa.Controls {
				if flagged && len(l.Flags) == 0 {
					continue
				}
				app := "yes"
				if !l.Applicable {
					app = "excluded"
				}
				t.add(l.ID, l.Title, app, l.Status, l.Owner, soaEvidence(l.Evidence), l.Justification, strings.Join(l.Flags, "; "))
			}
			if err := render(cmd.OutOrStdout(), g.output, t); err != nil {
				return err
			}
			if g.output == "table" {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d applicable (%d implemented), %d excluded, %d flagged\n", soa.Applicable, soa.Implemented, soa.Excluded, soa.Flagged)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&flagged, "flagged", false, "only the controls with a flag")
	cmd.Flags().BoolVar(&scoped, "in-scope", false, "evidence of the ISMS scope's assets only (annexa scope)")

	var status, owner, justification string
	var applicable bool
	set := &cobra.Command{
		Use:         "set CONTROL",
		Annotations: outputs("table", "json"),
		Short:       "Set a control's implementation status, owner or justification (admin); 2013 ids work",
		Args:        cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := apiv1.SoARequest{}
			f := cmd.Flags()
			if f.Changed("status") {
				req.Status = &status
			}
			if f.Changed("owner") {
				req.Owner = &owner
			}
			if f.Changed("justification") {
				req.Justification = &justification
			}
			if f.Changed("applicable") {
				req.Applicable = &applicable
			}
			if req == (apiv1.SoARequest{}) {
				return errors.New("nothing to set: give --status, --owner, --justification or --applicable")
			}
			return putSoA(cmd, g, args[0], req)
		},
	}
	set.Flags().StringVar(&status, "status", "", "implementation status: "+strings.Join(apiv1.SoAStatuses, ", "))
	set.Flags().StringVar(&owner, "owner", "", "who is accountable for the control")
	set.Flags().StringVar(&justification, "justification", "", "why it is applicable (or, with --applicable=false, excluded)")
	set.Flags().BoolVar(&applicable, "applicable", true, "applicable (true) or excluded (false, needs a justification)")

	var why string
	exclude := &cobra.Command{
		Use:         "exclude CONTROL --justification TEXT",
		Annotations: outputs("table", "json"),
		Short:       "Exclude a control from the ISMS, with the justification an auditor will read (admin)",
		Args:        cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(why) == "" {
				return errors.New("--justification is required: the certification body asks why a control is excluded")
			}
			no := false
			return putSoA(cmd, g, args[0], apiv1.SoARequest{Applicable: &no, Justification: &why})
		},
	}
	exclude.Flags().StringVar(&why, "justification", "", "why the control does not apply (required)")

	history := &cobra.Command{
		Use:   "history [CONTROL]",
		Short: "Who changed the Statement of Applicability, when, and what",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			if len(args) == 1 {
				q.Set("control", args[0])
			}
			var page apiv1.Page[apiv1.SoAChange]
			if err := c.Do(cmd.Context(), http.MethodGet, "/v1/soa/history", q, nil, &page); err != nil {
				return err
			}
			t := &table{header: []string{"AT", "CONTROL", "BY", "CHANGES"}, raw: page.Items}
			for _, ch := range page.Items {
				var parts []string
				for field, v := range ch.Changes {
					parts = append(parts, fmt.Sprintf("%s: %q → %q", field, v[0], v[1]))
				}
				sort.Strings(parts)
				t.add(ts(ch.At), ch.Control, ch.By, strings.Join(parts, "; "))
			}
			return render(cmd.OutOrStdout(), g.output, t)
		},
	}
	cmd.AddCommand(set, exclude, history)
	return cmd
}

func putSoA(cmd *cobra.Command, g *globals, control string, req apiv1.SoARequest) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	var line apiv1.SoAControl
	if err := c.Do(cmd.Context(), http.MethodPut, "/v1/soa/"+url.PathEscape(control), nil, req, &line); err != nil {
		return err
	}
	if g.output == "json" {
		return render(cmd.OutOrStdout(), "json", &table{raw: line})
	}
	state := "applicable"
	if !line.Applicable {
		state = "excluded"
	}
	if line.Status != "" {
		state += ", " + line.Status
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s", line.ID, line.Title, state)
	if line.Owner != "" {
		fmt.Fprintf(cmd.OutOrStdout(), ", owner %s", line.Owner)
	}
	fmt.Fprintln(cmd.OutOrStdout())
	for _, f := range line.Flags {
		fmt.Fprintf(cmd.OutOrStdout(), "  flag: %s\n", f)
	}
	return nil
}

func soaEvidence(e apiv1.SoAEvidence) string {
	var parts []string
	switch {
	case !e.Automated:
	case e.Assets == 0:
		parts = append(parts, "no asset yet")
	default:
		parts = append(parts, fmt.Sprintf("%d assets: %d pass, %d fail, %d error, %d stale", e.Assets, e.Passing, e.Failing, e.Error, e.Stale))
	}
	if e.Attested+e.AttestedStale > 0 {
		parts = append(parts, fmt.Sprintf("attested by %d (%d lapsed)", e.Attested+e.AttestedStale, e.AttestedStale))
	} else if !e.Automated {
		parts = append(parts, "people (no automated check, no attestation)")
	}
	return strings.Join(parts, "; ")
}
