package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/evidence/compliance"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// filters are the query flags shared by the read commands.
type filters struct {
	controls, checks, statuses, assets, agents, labels []string
	at, from, to                                       string
	limit                                              int
	inScope                                            bool
}

func (f *filters) register(cmd *cobra.Command, which string) {
	fl := cmd.Flags()
	for _, c := range which {
		switch c {
		case 'c':
			fl.StringSliceVar(&f.controls, "control", nil, "Annex A control id (8.24, or 2013 A.10.1.1); repeatable")
			fl.StringSliceVar(&f.checks, "check", nil, "check id, e.g. disk_encryption.system_volume; repeatable")
		case 's':
			fl.StringSliceVar(&f.statuses, "status", nil, "pass, fail, error or not_applicable; repeatable")
		case 'a':
			fl.StringSliceVar(&f.assets, "asset", nil, "asset, e.g. host:agt-…; repeatable")
			fl.StringSliceVar(&f.agents, "agent", nil, "agent id; repeatable")
		case 'l':
			fl.StringSliceVar(&f.labels, "label", nil, "agent label key=value; repeatable (all must match)")
			fl.BoolVar(&f.inScope, "in-scope", false, "only the ISMS scope's assets (annexa scope)")
		case 't':
			fl.StringVar(&f.at, "at", "", "state at this instant (RFC 3339 or YYYY-MM-DD) instead of now")
		case 'r':
			fl.StringVar(&f.from, "from", "", "from this time (RFC 3339 or YYYY-MM-DD)")
			fl.StringVar(&f.to, "to", "", "until this time (exclusive)")
		case 'n':
			fl.IntVar(&f.limit, "limit", 0, "at most this many rows (0: all)")
		}
	}
}

func (f *filters) values() url.Values {
	v := url.Values{}
	add := func(k string, vals []string) {
		for _, x := range vals {
			v.Add(k, x)
		}
	}
	add("control", f.controls)
	add("check", f.checks)
	add("status", f.statuses)
	add("asset", f.assets)
	add("agent", f.agents)
	add("label", f.labels)
	if f.inScope {
		v.Set("in_scope", "true")
	}
	for k, x := range map[string]string{"at": f.at, "from": f.from, "to": f.to} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v
}

// pages fetches every page of a paginated list (or up to limit items).
func pages[T any](cmd *cobra.Command, g *globals, path string, v url.Values, limit int) ([]T, error) {
	c, err := g.client()
	if err != nil {
		return nil, err
	}
	var all []T
	for {
		pageSize := 1000
		if limit > 0 && limit-len(all) < pageSize {
			pageSize = limit - len(all)
		}
		v.Set("limit", strconv.Itoa(pageSize))
		var page apiv1.Page[T]
		if err := c.Do(cmd.Context(), http.MethodGet, path, v, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.Next == "" || (limit > 0 && len(all) >= limit) {
			return all, nil
		}
		v.Set("cursor", page.Next)
	}
}

func newHosts(g *globals) *cobra.Command {
	f := &filters{}
	cmd := &cobra.Command{
		Use:   "hosts",
		Short: "List enrolled hosts with their checks by status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hosts, err := pages[apiv1.Host](cmd, g, "/v1/hosts", f.values(), f.limit)
			if err != nil {
				return err
			}
			t := &table{header: []string{"AGENT", "HOSTNAME", "LABELS", "LAST SEEN", "PASS", "FAIL", "ERROR", "STALE", "NOTE"}, raw: hosts}
			for _, h := range hosts {
				note := h.Flag
				if h.Revoked {
					note = "revoked " + note
				}
				t.add(h.AgentID, h.Hostname, labels(h.Labels), ts(h.LastSeen), itoa(h.Counts["passing"]), itoa(h.Counts["failing"]),
					itoa(h.Counts["error"]), itoa(h.Counts["stale"]), note)
			}
			return render(cmd.OutOrStdout(), g.output, t)
		},
	}
	f.register(cmd, "ltn")
	return cmd
}

func newHost(g *globals) *cobra.Command {
	f := &filters{}
	cmd := &cobra.Command{
		Use:   "host AGENT-ID",
		Short: "Show one host's latest result for every check",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var d apiv1.HostDetail
			if err := c.Do(cmd.Context(), http.MethodGet, "/v1/hosts/"+url.PathEscape(args[0]), f.values(), nil, &d); err != nil {
				return err
			}
			t := &table{header: []string{"ASSET", "CHECK", "STATUS", "STALE", "COLLECTED", "SINCE", "REASON"}, raw: d}
			for _, r := range d.Results {
				t.add(r.Asset, r.Check, r.Status, strconv.FormatBool(r.Stale), ts(r.CollectedAt), ts(r.Since), r.Reason)
			}
			return render(cmd.OutOrStdout(), g.output, t)
		},
	}
	f.register(cmd, "t")
	return cmd
}

func newControls(g *globals) *cobra.Command {
	f := &filters{}
	var automated, covered bool
	var framework string
	cmd := &cobra.Command{
		Use:   "controls",
		Short: "The fleet's state for each of the 93 Annex A controls, or per requirement of another framework",
		Long: `The fleet's state for each of the 93 Annex A controls: assets passing, failing,
in error or stale, and the people who attest it.

With --framework, the state per requirement of another framework through its
mapping onto Annex A (annexa frameworks lists them; the server's --frameworks
directory adds an organisation's own): each requirement is as bad as its worst
mapped control, partial when some of its controls have no evidence.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if framework != "" {
				return frameworkState(cmd, g, c, framework, f.values())
			}
			var resp apiv1.ControlsResponse
			if err := c.Do(cmd.Context(), http.MethodGet, "/v1/controls", f.values(), nil, &resp); err != nil {
				return err
			}
			t := &table{header: []string{"CONTROL", "THEME", "TITLE", "ASSETS", "PASSING", "FAILING", "ERROR", "STALE", "N/A", "ATTESTED"}, raw: resp}
			for _, s := range resp.Controls {
				if (automated && !s.Automated) || (covered && !s.Covered) {
					continue
				}
				attested := "-"
				if n := s.Attested + s.AttestedStale; n > 0 {
					attested = fmt.Sprintf("%d (%d lapsed)", n, s.AttestedStale)
				}
				if !s.Automated {
					t.add(s.ID, s.Theme, s.Title, "-", "-", "-", "-", "-", "-", attested)
					continue
				}
				t.add(s.ID, s.Theme, s.Title, itoa(s.Assets), itoa(s.Passing), itoa(s.Failing), itoa(s.Error), itoa(s.Stale), itoa(s.NotApplicable), attested)
			}
			if err := render(cmd.OutOrStdout(), g.output, t); err != nil {
				return err
			}
			if g.output == "table" || g.output == "" {
				fmt.Fprintf(cmd.OutOrStdout(), "\n%d of %d controls have automated evidence; %d have checks mapped (as of %s)\n", resp.Covered, resp.Total, resp.Automated, ts(resp.At))
			}
			return nil
		},
	}
	f.register(cmd, "tl")
	cmd.Flags().BoolVar(&automated, "automated", false, "only controls with a check mapped to them")
	cmd.Flags().BoolVar(&covered, "covered", false, "only controls with evidence from at least one asset")
	cmd.Flags().StringVar(&framework, "framework", "", "per requirement of this framework (e.g. iso27001-2013; annexa frameworks lists them)")
	return cmd
}

// frameworkState prints GET /v1/frameworks/{name}.
func frameworkState(cmd *cobra.Command, g *globals, c *client.Client, name string, q url.Values) error {
	var resp apiv1.FrameworkState
	if err := c.Do(cmd.Context(), http.MethodGet, "/v1/frameworks/"+url.PathEscape(name), q, nil, &resp); err != nil {
		return err
	}
	t := &table{header: []string{"REQUIREMENT", "TITLE", "STATUS", "ANNEX A CONTROLS"}, raw: resp}
	for _, r := range resp.Requirements {
		var cs []string
		for _, rc := range r.Controls {
			cs = append(cs, rc.ID+" "+strings.ReplaceAll(rc.Status, "_", " "))
		}
		t.add(r.ID, r.Title, strings.ReplaceAll(r.Status, "_", " "), strings.Join(cs, ", "))
	}
	if err := render(cmd.OutOrStdout(), g.output, t); err != nil {
		return err
	}
	if g.output == "table" {
		var parts []string
		for _, st := range []string{"failing", "error", "stale", "passing", "partial", "not_covered", "not_applicable"} {
			if n := resp.Counts[st]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, strings.ReplaceAll(st, "_", " ")))
			}
		}
		fmt.Fprintf(cmd.OutOrStdout(), "\n%s: %d requirements: %s (as of %s)\nmapping: %s\n", resp.Title, len(resp.Requirements), strings.Join(parts, ", "), ts(resp.At), resp.Source)
	}
	return nil
}

func newFrameworks(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "frameworks",
		Short: "The frameworks whose requirements the server maps onto Annex A (for annexa controls --framework)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var fws []apiv1.Framework
			if err := c.Do(cmd.Context(), http.MethodGet, "/v1/frameworks", nil, nil, &fws); err != nil {
				return err
			}
			t := &table{header: []string{"NAME", "TITLE", "REQUIREMENTS", "SOURCE"}, raw: fws}
			for _, f := range fws {
				t.add(f.Name, f.Title, itoa(f.Requirements), f.Source)
			}
			return render(cmd.OutOrStdout(), g.output, t)
		},
	}
}

func newControl(g *globals) *cobra.Command {
	f := &filters{}
	cmd := &cobra.Command{
		Use:   "control ID",
		Short: "Which assets pass or fail one control, and why",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			// The control's assets come a page at a time: follow the
			// cursor to the end, or to --limit assets.
			var d apiv1.ControlDetail
			v := f.values()
			if f.limit > 0 && f.limit < 1000 {
				v.Set("limit", strconv.Itoa(f.limit))
			}
			for {
				var page apiv1.ControlDetail
				if err := c.Do(cmd.Context(), http.MethodGet, "/v1/controls/"+url.PathEscape(args[0]), v, nil, &page); err != nil {
					return err
				}
				assets := append(d.AssetsDetail, page.AssetsDetail...)
				d = page
				d.AssetsDetail = assets
				if f.limit > 0 && len(d.AssetsDetail) >= f.limit {
					d.AssetsDetail = d.AssetsDetail[:f.limit]
					break
				}
				if page.Next == "" {
					break
				}
				v.Set("cursor", page.Next)
			}
			d.Next = ""
			if !d.Automated && (g.output == "table" || g.output == "") {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s: no automated check is mapped to this control; its evidence comes from people (attestations), not agents\n", d.ID, d.Title)
				return nil
			}
			// ASSET STATUS is the asset's status for the control, the worst of
			// its checks; DECIDES marks the checks that made it so.
			t := &table{header: []string{"ASSET", "STATUS", "CHECK", "RESULT", "DECIDES", "COLLECTED", "REASON"}, raw: d}
			for _, a := range d.AssetsDetail {
				for _, r := range a.Checks {
					decides := ""
					if string(compliance.Of(r.Status, r.Stale)) == a.Status {
						decides = "*"
					}
					t.add(a.Asset, a.Status, r.Check, r.Status, decides, ts(r.CollectedAt), r.Reason)
				}
			}
			return render(cmd.OutOrStdout(), g.output, t)
		},
	}
	f.register(cmd, "tln")
	return cmd
}

func newEvidence(g *globals) *cobra.Command {
	f := &filters{}
	cmd := &cobra.Command{
		Use:   "evidence",
		Short: "List check results, filtered by control, check, status, asset, label and time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := pages[apiv1.Result](cmd, g, "/v1/evidence", f.values(), f.limit)
			if err != nil {
				return err
			}
			t := &table{header: []string{"LOG INDEX", "ASSET", "CHECK", "STATUS", "COLLECTED", "REASON"}, raw: rows}
			for _, r := range rows {
				t.add(strconv.FormatInt(r.LogIndex, 10), r.Asset, r.Check, r.Status, ts(r.CollectedAt), r.Reason)
			}
			return render(cmd.OutOrStdout(), g.output, t)
		},
	}
	f.register(cmd, "csalrn")
	return cmd
}

func newHistory(g *globals) *cobra.Command {
	f := &filters{}
	cmd := &cobra.Command{
		Use:   "history",
		Short: "When each asset started or stopped failing each check",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			items, err := pages[apiv1.Transition](cmd, g, "/v1/history", f.values(), f.limit)
			if err != nil {
				return err
			}
			t := &table{header: []string{"AT", "ASSET", "CHECK", "FROM", "TO", "LOG INDEX"}, raw: items}
			for _, tr := range items {
				prev := tr.Previous
				if prev == "" {
					prev = "-"
				}
				t.add(ts(tr.At), tr.Asset, tr.Check, prev, tr.Status, strconv.FormatInt(tr.LogIndex, 10))
			}
			return render(cmd.OutOrStdout(), g.output, t)
		},
	}
	f.register(cmd, "carln")
	return cmd
}
