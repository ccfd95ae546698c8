package cli

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/annexa-dev/annexa/configs"
	"github.com/annexa-dev/annexa/evidence/bundle"
)

func newExport(g *globals) *cobra.Command {
	var from, to, out string
	var controls, lbls []string
	var force, scoped bool
	cmd := &cobra.Command{
		Use:         "export --from T1 --to T2 --out bundle.tar.gz",
		Annotations: outputs("table"),
		Short:       "Download the evidence bundle for a period (auditor or admin)",
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var missing []string
			for _, f := range []struct{ name, v string }{{"--from", from}, {"--to", to}, {"--out", out}} {
				if f.v == "" {
					missing = append(missing, f.name)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("%s required (export --from 2026-01-01 --to 2026-04-01 --out q1.tar.gz)", strings.Join(missing, " and "))
			}
			if _, err := os.Stat(out); err == nil && !force {
				return fmt.Errorf("%s exists: a bundle is evidence, so it is not overwritten unless --force", out)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			v := url.Values{"from": {from}, "to": {to}}
			for _, x := range controls {
				v.Add("control", x)
			}
			for _, x := range lbls {
				v.Add("label", x)
			}
			if scoped {
				v.Set("in_scope", "true")
			}
			resp, err := c.Stream(cmd.Context(), "/v1/export", v)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			var n atomic.Int64
			stop := progress(cmd.ErrOrStderr(), &n)
			_, err = io.Copy(tmp, &countReader{r: resp.Body, n: &n})
			stop()
			if err != nil {
				tmp.Close()
				return fmt.Errorf("download cut off after %d bytes: %w", n.Load(), err)
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d bytes); check it with: annexa verify --server-key server.pub %s\n", out, n.Load(), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "start of the period (RFC 3339 or YYYY-MM-DD)")
	f.StringVar(&to, "to", "", "end of the period, exclusive")
	f.StringVar(&out, "out", "", "file to write")
	f.BoolVar(&force, "force", false, "overwrite --out if it exists")
	f.StringSliceVar(&controls, "control", nil, "narrow the summary and OSCAL report to these controls (never the proof); repeatable")
	f.StringSliceVar(&lbls, "label", nil, "narrow the summary and OSCAL report to agents with this label, key=value; repeatable")
	f.BoolVar(&scoped, "in-scope", false, "narrow the summary and OSCAL report to the ISMS scope (annexa scope); the verifier applies the same selector")
	return cmd
}

type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// progress prints the bytes received so far on a terminal, and nothing when
// stderr is a file or a pipe.
func progress(w io.Writer, n *atomic.Int64) (stop func()) {
	f, ok := w.(*os.File)
	if !ok {
		return func() {}
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-done:
				fmt.Fprintf(w, "\r%.1f MiB received in %s        \n", float64(n.Load())/(1<<20), time.Since(start).Round(100*time.Millisecond))
				return
			case <-t.C:
				fmt.Fprintf(w, "\r%.1f MiB received…", float64(n.Load())/(1<<20))
			}
		}
	}()
	return func() { close(done); <-finished }
}

func newVerify(g *globals) *cobra.Command {
	var serverKey string
	cmd := &cobra.Command{
		Use:         "verify --server-key server.pub bundle.tar.gz",
		Annotations: outputs("table", "json"),
		Short:       "Verify an evidence bundle offline; exit 0 only if everything holds",
		Long: `Verify an evidence bundle with no network access, trusting only the server
keys you pinned (server.pub): the manifest's signature and every file's hash,
both checkpoints, the consistency proof and the rebuilt root, the key events,
every record's signature (one by one, in parallel), each agent's chain (gaps,
forks, reordering, cut tails), and the summary and OSCAL report recomputed
from the verified records.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if serverKey == "" {
				return errors.New("--server-key is required: the server.pub you pinned out of band")
			}
			kb, err := os.ReadFile(serverKey)
			if err != nil {
				return err
			}
			keys, err := bundle.ParseServerKeys(kb)
			if err != nil {
				return err
			}
			cat, err := configs.Catalog()
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			rep := bundle.Verify(f, keys, cat)
			w := cmd.OutOrStdout()
			if g.output == "json" {
				if err := render(w, "json", &table{raw: rep}); err != nil {
					return err
				}
			} else {
				printReport(w, args[0], rep)
			}
			if !rep.OK {
				return &silentError{fmt.Errorf("%s: %d problem(s)", args[0], len(rep.Problems))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&serverKey, "server-key", "", "the server's public keys (server.pub), pinned out of band")
	return cmd
}

// silentError is an error whose details were already printed.
type silentError struct{ error }

func printReport(w io.Writer, name string, r *bundle.Report) {
	fmt.Fprintf(w, "bundle:   %s\nlog:      %s\n", name, r.Origin)
	if r.Scope != nil {
		fmt.Fprintf(w, "period:   %s to %s\n", r.Scope.From.Format(time.RFC3339), r.Scope.To.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "entries:  %d (%d records from %d agents, %d key events)\n", r.Entries, r.Records, r.Agents, r.KeyEvents)
	if r.SoAChanges > 0 {
		fmt.Fprintf(w, "soa changes: %d logged in the period, soa.json agrees with the last of each\n", r.SoAChanges)
	}
	if r.Attestations > 0 {
		fmt.Fprintf(w, "attestations: %d signed by people, checked like agents' records (the attested documents are under files/<sha256>)\n", r.Attestations)
	}
	for _, g := range r.Explained {
		fmt.Fprintf(w, "explained gap: agent %s seq %d-%d: %s\n", g.Agent, g.From, g.To, g.Reason)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.OK {
		fmt.Fprintln(w, "\nVERIFIED: signatures, chains, completeness proofs, summary and OSCAL all hold.")
		return
	}
	fmt.Fprintf(w, "\nFAILED: %d problem(s)\n", len(r.Problems))
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}
