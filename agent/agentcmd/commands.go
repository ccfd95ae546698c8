package agentcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/annexa-dev/annexa/agent"
	"github.com/annexa-dev/annexa/agent/config"
	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/capture"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/internal/buildinfo"
)

func newEnroll() *cobra.Command {
	var c common
	var o agent.EnrollOptions
	var unattended bool
	var enrollFile string
	cmd := &cobra.Command{
		Use:   "enroll --server URL --token TOKEN",
		Short: "Generate this host's key and register it with the server",
		Long: `Generate this host's key and register it with the server.

With --unattended (what the service runs before it starts), the server and
token may also come from ANNEXA_ENROLL_SERVER, ANNEXA_ENROLL_TOKEN and
ANNEXA_ENROLL_CA in the environment or in /etc/annexa/enroll.env, which is
deleted once used, or from a macOS configuration profile (server,
enrollment_token, ca_certificate); an enrolled agent, or one with nothing
configured, is left alone and the command succeeds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.load()
			if err != nil {
				return err
			}
			if unattended {
				s, err := findEnrollSettings(o.Server, o.Token, o.CAFile, enrollFile)
				if err != nil {
					return err
				}
				if s, err = managedEnrollment(s, c.managed, cfg); err != nil {
					return err
				}
				if s == nil {
					fmt.Fprintln(cmd.OutOrStdout(), "unattended enrollment: nothing configured")
					return nil
				}
				_, err = enrollUnattended(cmd.Context(), cfg, s, cmd.OutOrStdout())
				return err
			}
			o.StateDir = cfg.StateDir
			if o.Server == "" {
				o.Server = cfg.Server
			}
			if o.CAFile == "" {
				o.CAFile = cfg.CA
			}
			if o.Server == "" || o.Token == "" {
				return errors.New("--server and --token are required")
			}
			id, err := enrollThisHost(cmd.Context(), o)
			if errors.Is(err, agent.ErrAlreadyEnrolled) {
				return &exitError{code: 3, err: err}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "enrolled as %s with %s (state in %s)\n", id.AgentID, id.Server, o.StateDir)
			return nil
		},
	}
	c.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.Server, "server", "", "server URL, e.g. https://annexa.example.com:8443")
	f.StringVar(&o.Token, "token", "", "enrollment token (annexa token create --role enroll)")
	f.StringVar(&o.CAFile, "ca", "", "CA certificate (PEM) to trust for the server instead of the system roots")
	f.StringVar(&o.Hostname, "hostname", "", "name to enrol under (default: this host's name)")
	f.BoolVar(&unattended, "unattended", false, "enrol from flags, environment or --enroll-file if not enrolled yet; succeed quietly otherwise")
	f.StringVar(&enrollFile, "enroll-file", DefaultEnrollFile, "with --unattended: KEY=VALUE file with ANNEXA_ENROLL_SERVER, ANNEXA_ENROLL_TOKEN, ANNEXA_ENROLL_CA; deleted after use")
	return cmd
}

func newRun() *cobra.Command {
	var c common
	var once bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the agent in the foreground (what the service runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.load()
			if err != nil {
				return err
			}
			log := logger(cfg.LogLevel)
			if err := agent.CheckPluginSettings(cmd.Context(), cfg, log); err != nil {
				return fmt.Errorf("%s: %w", c.configPathOrDefault(), err)
			}
			// First start from a fleet tool: enrol from the environment or
			// the enroll file if that is how the machine was set up.
			if _, err := agent.LoadIdentity(cfg.StateDir); errors.Is(err, agent.ErrNotEnrolled) {
				s, err := findEnrollSettings("", "", "", DefaultEnrollFile)
				if err != nil {
					return err
				}
				if s, err = managedEnrollment(s, c.managed, cfg); err != nil {
					return err
				}
				if s != nil {
					if _, err := enrollUnattended(cmd.Context(), cfg, s, cmd.ErrOrStderr()); err != nil {
						return err
					}
				}
			}
			if !once && !interactive() {
				return runAsService(cfg, c, log)
			}
			a, err := agent.Open(cfg, log)
			if err != nil {
				return err
			}
			defer a.Close()
			if once {
				if err := a.Once(cmd.Context()); err != nil {
					return &exitError{code: 2, err: err}
				}
				n, _ := a.Outbox().Depth()
				fmt.Fprintf(cmd.OutOrStdout(), "collected and shipped; %d record(s) waiting\n", n)
				return nil
			}
			return a.Run(cmd.Context())
		},
	}
	c.register(cmd)
	cmd.Flags().BoolVar(&once, "once", false, "run every enabled collector once, ship, and exit (non-zero if anything was not shipped)")
	return cmd
}

// collectedRow is one collector's results as collect and capture print them.
type collectedRow struct {
	Collector string            `json:"collector"`
	Results   []evidence.Result `json:"results"`
}

// collectOn runs the named collectors (default: every enabled one) on h
// with the configuration's settings.
func collectOn(ctx context.Context, cfg *config.Config, h *host.Host, only []string) ([]collectedRow, []string, error) {
	names := only
	if len(names) == 0 {
		for _, n := range collectors.Names() {
			if cfg.Enabled(n) {
				names = append(names, n)
			}
		}
	}
	var rows []collectedRow
	for _, n := range names {
		col, ok := collectors.Get(n)
		if !ok {
			return nil, nil, fmt.Errorf("no collector %q (have: %s)", n, strings.Join(collectors.Names(), ", "))
		}
		rs, _ := collectors.Run(ctx, col, h, cfg.Limits(n), cfg.Settings(n), nil)
		rows = append(rows, collectedRow{n, rs})
	}
	return rows, names, nil
}

func printCollected(cmd *cobra.Command, output string, rows []collectedRow) error {
	switch output {
	case "json":
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "table", "":
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CHECK\tSTATUS\tREASON")
		for _, r := range rows {
			for _, res := range r.Results {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", res.Check, res.Status, res.Reason)
			}
		}
		return tw.Flush()
	}
	return fmt.Errorf("--output %q: want table or json", output)
}

func newCollect() *cobra.Command {
	var c common
	var only []string
	var output, replayDir string
	cmd := &cobra.Command{
		Use:   "collect",
		Short: "Dry run: run collectors and print their results, without signing or shipping",
		Long: `Dry run: run collectors and print their results, without signing or shipping.

With --replay DIR the collectors read a capture (annexa-agent capture) instead
of this machine: its files, its commands' answers, its clock. Any machine
reproduces the verdicts of the machine that was captured.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.load()
			if err != nil {
				return err
			}
			h := host.Live()
			if replayDir != "" {
				var m *capture.Manifest
				if h, m, err = capture.Open(replayDir); err != nil {
					return err
				}
				if len(only) == 0 {
					only = m.Collectors
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "replaying %s: %s %s (%s), captured %s\n", replayDir, m.OS, m.OSVersion, m.Arch, m.CapturedAt.Format(time.RFC3339))
			}
			rows, _, err := collectOn(cmd.Context(), cfg, h, only)
			if err != nil {
				return err
			}
			return printCollected(cmd, output, rows)
		},
	}
	c.register(cmd)
	cmd.Flags().StringSliceVar(&only, "collector", nil, "only this collector; repeatable (default: every enabled one, or the capture's)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	cmd.Flags().StringVar(&replayDir, "replay", "", "read this capture directory instead of this machine")
	return cmd
}

func newCapture() *cobra.Command {
	var c common
	var only []string
	var output, out string
	cmd := &cobra.Command{
		Use:   "capture --collector NAME --out DIR",
		Short: "Run collectors on this machine and record what they read, to replay anywhere",
		Long: `Run collectors on this machine and record everything they read into DIR:
every command (its line, standard output and error, exit code) and every file,
with the OS, its version and locale in DIR/manifest.json. Password hashes are
redacted (the manifest says which). Anyone can then replay the capture with
annexa-agent collect --replay DIR and get the same verdicts; a capture of a
real machine becomes a test fixture by copying the directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out DIR is required: a new directory for the capture")
			}
			cfg, err := c.load()
			if err != nil {
				return err
			}
			rec := capture.NewRecorder()
			rows, names, err := collectOn(cmd.Context(), cfg, rec.Host, only)
			if err != nil {
				return err
			}
			m, err := rec.Write(out, names, buildinfo.String("annexa-agent"))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "captured %d commands and %d files into %s", len(m.Commands), len(m.Files), out)
			if len(m.Redacted) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "; redacted: %s", strings.Join(m.Redacted, "; "))
			}
			fmt.Fprintln(cmd.ErrOrStderr())
			return printCollected(cmd, output, rows)
		},
	}
	c.register(cmd)
	cmd.Flags().StringSliceVar(&only, "collector", nil, "only this collector; repeatable (default: every enabled one)")
	cmd.Flags().StringVar(&out, "out", "", "the capture directory to write (new or empty)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func newStatus() *cobra.Command {
	var c common
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Enrolled?, server, last shipment, outbox depth, last result per collector",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.load()
			if err != nil {
				return err
			}
			st, err := agent.ReadStatus(cfg)
			if err != nil {
				return err
			}
			st.Settings = c.sources
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			w := cmd.OutOrStdout()
			if !st.Enrolled {
				fmt.Fprintf(w, "enrolled:      no (state %s)\n", cfg.StateDir)
				fmt.Fprintf(w, "settings:      %s\n", c.describeSources())
				return &exitError{code: 3, err: agent.ErrNotEnrolled}
			}
			defer fmt.Fprintf(w, "\nsettings:      %s\n", c.describeSources())
			fmt.Fprintf(w, "enrolled:      yes, agent %s\nserver:        %s\n", st.AgentID, st.Server)
			if st.Receipt != nil {
				fmt.Fprintf(w, "last shipment: %s (server at seq %d, log index %d)\n", st.Receipt.ShippedAt.Format(time.RFC3339), st.Receipt.NextSeq-1, st.Receipt.LastIndex)
			} else {
				fmt.Fprintln(w, "last shipment: never")
			}
			fmt.Fprintf(w, "outbox:        %d record(s) waiting, %d bytes; chain head seq %d\n", st.OutboxRecords, st.OutboxBytes, st.HeadSeq)

			names := make([]string, 0, len(st.Collectors))
			for n := range st.Collectors {
				names = append(names, n)
			}
			sort.Strings(names)
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "\nCOLLECTOR\tLAST RUN\tSEQ\tRESULTS")
			for _, n := range names {
				cs := st.Collectors[n]
				var parts []string
				for k, v := range cs.Results {
					parts = append(parts, k+"="+v)
				}
				sort.Strings(parts)
				if cs.Error != "" {
					parts = append([]string{"NOT STORED: " + cs.Error}, parts...)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", n, cs.At.Format(time.RFC3339), cs.Seq, strings.Join(parts, " "))
			}
			return tw.Flush()
		},
	}
	c.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func newRotate() *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use:   "rotate-key",
		Short: "Make a new key, announced by a record signed with the old one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.load()
			if err != nil {
				return err
			}
			a, err := agent.Open(cfg, logger(cfg.LogLevel))
			var keyID, by string
			switch {
			case errors.Is(err, agent.ErrLocked):
				// A daemon holds the chain: ask it.
				ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
				defer cancel()
				keyID, err = agent.RequestRotation(ctx, cfg.StateDir)
				by = " (made by the running agent)"
			case err != nil:
				return err
			default:
				defer a.Close()
				keyID, err = a.RotateKey()
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "new key %s%s; the rotation record ships with the next batch\n", keyID, by)
			return nil
		},
	}
	c.register(cmd)
	return cmd
}
