package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/internal/keyfile"
	"github.com/annexa-dev/annexa/internal/units"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// personKey is the --key flag: the person's private key file.
func personKey(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	return client.DefaultPersonKey()
}

func newPerson(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "person", Short: "People who attest: make your key (init), register someone's (add, admin), list, remove"}
	var keyPath string
	var force bool
	initCmd := &cobra.Command{
		Use:         "init",
		Annotations: outputs("table", "json"),
		Short:       "Make your attestation key on this machine (it never leaves it) and print the public key to register",
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := personKey(keyPath)
			if err != nil {
				return err
			}
			if _, err := os.Stat(path); err == nil && !force {
				priv, err := keyfile.Load(path)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%s exists already; its public key (--force makes a new one):\n", path)
				return printPublicKey(cmd.OutOrStdout(), g.output, path, priv.Public().(ed25519.PublicKey))
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return err
			}
			if err := keyfile.Save(path, priv); err != nil {
				return err
			}
			return printPublicKey(cmd.OutOrStdout(), g.output, path, pub)
		},
	}
	initCmd.Flags().StringVar(&keyPath, "key", "", "private key file (default: annexa/person.key in your configuration directory)")
	initCmd.Flags().BoolVar(&force, "force", false, "replace an existing key (the old one's registration must then be removed)")

	var name, role, public string
	add := &cobra.Command{
		Use:         "add",
		Annotations: outputs("table", "json"),
		Short:       "Register a person's public key with their name and role (admin)",
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, err := base64.StdEncoding.DecodeString(strings.TrimSpace(public))
			if err != nil {
				return fmt.Errorf("--public-key: not base64 (paste what annexa person init printed): %w", err)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var p apiv1.Person
			if err := c.Do(cmd.Context(), http.MethodPost, "/v1/persons", nil, apiv1.PersonRequest{Name: name, Role: role, PublicKey: pub}, &p); err != nil {
				return err
			}
			if g.output == "json" {
				return render(cmd.OutOrStdout(), g.output, &table{raw: p})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s registered as %s (key %s…, log index %d): they can now run annexa attest\n", p.Name, p.ID, p.KeyID[:16], p.LogIndex)
			return nil
		},
	}
	add.Flags().StringVar(&name, "name", "", "the person's name")
	add.Flags().StringVar(&role, "role", "", "their role (ciso, hr-lead, board…)")
	add.Flags().StringVar(&public, "public-key", "", "the public key annexa person init printed (base64)")
	_ = add.MarkFlagRequired("name")
	_ = add.MarkFlagRequired("public-key")

	list := &cobra.Command{
		Use:   "list",
		Short: "People registered to attest",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var ps []apiv1.Person
			if err := c.Do(cmd.Context(), http.MethodGet, "/v1/persons", nil, nil, &ps); err != nil {
				return err
			}
			t := &table{header: []string{"ID", "NAME", "ROLE", "KEYID", "ATTESTATIONS", "REGISTERED", "REMOVED"}, raw: ps}
			for _, p := range ps {
				removed := ""
				if p.Revoked {
					removed = fmt.Sprintf("after seq %d", p.RevokedAfter)
				}
				t.add(p.ID, p.Name, p.Role, p.KeyID[:16], fmt.Sprint(p.NextSeq-1), ts(p.CreatedAt), removed)
			}
			return render(cmd.OutOrStdout(), g.output, t)
		},
	}
	rm := &cobra.Command{
		Use:         "rm ID",
		Annotations: outputs("table"),
		Short:       "Remove a person (admin): their later attestations are refused, earlier ones stay verifiable",
		Args:        cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var resp struct {
				PersonID string `json:"person_id"`
				After    uint64 `json:"revoked_after_seq"`
			}
			if err := c.Do(cmd.Context(), http.MethodPost, "/v1/persons/"+url.PathEscape(args[0])+"/revoke", nil, struct{}{}, &resp); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "person %s removed; their attestations up to seq %d stay verifiable\n", resp.PersonID, resp.After)
			return nil
		},
	}
	cmd.AddCommand(initCmd, add, list, rm)
	return cmd
}

func printPublicKey(w io.Writer, output, path string, pub ed25519.PublicKey) error {
	b64 := base64.StdEncoding.EncodeToString(pub)
	if output == "json" {
		return render(w, output, &table{raw: map[string]string{"key_file": path, "public_key": b64, "keyid": dsse.KeyID(pub)}})
	}
	fmt.Fprintf(w, "key file:   %s (keep it; it never leaves this machine)\npublic key: %s\nkeyid:      %s\n\nAsk an admin to register it:\n  annexa person add --name \"YOUR NAME\" --role ROLE --public-key %s\n",
		path, b64, dsse.KeyID(pub), b64)
	return nil
}

func newAttest(g *globals) *cobra.Command {
	var a client.Attestation
	var keyPath, validFor string
	var noUpload bool
	cmd := &cobra.Command{
		Use:         "attest",
		Annotations: outputs("table", "json"),
		Short:       "Sign a statement that controls are met, with the document that shows it, into the transparency log",
		Long: `attest signs, with your key (annexa person init), a statement that one or more
Annex A controls are met, and the sha256 of the document that shows it
(--file): an in-toto statement in a DSSE envelope, chained on your previous
attestations and appended to the server's transparency log, where bundles and
annexa verify check it like an agent's record. The document is uploaded too
(unless --no-upload) so that bundles carry it; the server keeps documents up to
32 MiB. The attestation lapses after --valid-for: its controls then go stale,
and a webhook (attestation.expiring) reminds 30 days before.

  annexa attest --control 5.1 --statement "Information security policy v3 approved by the board" \
      --file policy-v3.pdf --valid-for 365d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := units.ParseDuration(validFor)
			if err != nil || d <= 0 {
				return fmt.Errorf("--valid-for %q: a duration such as 365d or 90d", validFor)
			}
			a.ValidFor, a.Upload = d, !noUpload
			path, err := personKey(keyPath)
			if err != nil {
				return err
			}
			priv, err := keyfile.Load(path)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s: no key; make one with annexa person init", path)
			}
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.Attest(cmd.Context(), priv, a, time.Now())
			if err != nil {
				return err
			}
			if g.output == "json" {
				return render(cmd.OutOrStdout(), g.output, &table{raw: res})
			}
			out := cmd.OutOrStdout()
			verb := "attested"
			if res.Duplicate {
				verb = "already attested"
			}
			fmt.Fprintf(out, "%s %s by %s: log index %d, seq %d, sha256 %s\n", strings.Join(a.Controls, ", "), verb, res.Person.Name, res.Index, res.Seq, res.Digest)
			fmt.Fprintf(out, "valid until %s\n", time.Now().Add(d).UTC().Format("2006-01-02"))
			switch {
			case res.SHA256 == "":
			case res.Uploaded:
				fmt.Fprintf(out, "document %s uploaded (sha256 %s)\n", filepath.Base(a.File), res.SHA256)
			case res.UploadError != nil:
				fmt.Fprintf(cmd.ErrOrStderr(), "the document was not uploaded (its digest is attested all the same): %v\n", res.UploadError)
			case !a.Upload:
				fmt.Fprintf(out, "document not uploaded (--no-upload); its sha256 %s is attested\n", res.SHA256)
			case res.FileStored:
				fmt.Fprintf(out, "document already on the server (sha256 %s)\n", res.SHA256)
			default:
				fmt.Fprintf(out, "document not uploaded: larger than the server keeps (32 MiB); its sha256 %s is attested, keep the document for the auditor\n", res.SHA256)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&a.Controls, "control", nil, "Annex A 2022 control the statement evidences (repeat or comma-separate)")
	f.StringVar(&a.Statement, "statement", "", "what you vouch for, in a sentence")
	f.StringVar(&a.File, "file", "", "the document that shows it (its sha256 is signed)")
	f.StringVar(&a.MediaType, "media-type", "", "the document's media type (default: from its extension)")
	f.StringVar(&validFor, "valid-for", "365d", "how long the attestation holds (e.g. 365d, 90d)")
	f.StringVar(&keyPath, "key", "", "your private key file (default: annexa/person.key in your configuration directory)")
	f.BoolVar(&noUpload, "no-upload", false, "attest the document's digest without sending the document")
	_ = cmd.MarkFlagRequired("control")
	_ = cmd.MarkFlagRequired("statement")
	return cmd
}

func newAttestations(g *globals) *cobra.Command {
	var control, person, status, at string
	var all bool
	cmd := &cobra.Command{
		Use:   "attestations",
		Short: "People's attestations in force: who vouches for which control, until when",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"control": control, "person": person, "status": status, "at": at} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if all {
				q.Set("all", "true")
			}
			var resp apiv1.AttestationsResponse
			if err := c.Do(cmd.Context(), http.MethodGet, "/v1/attestations", q, nil, &resp); err != nil {
				return err
			}
			t := &table{header: []string{"INDEX", "CONTROLS", "PERSON", "STATUS", "VALID_UNTIL", "STATEMENT", "DOCUMENT", "SHA256"}, raw: resp}
			for _, a := range resp.Attestations {
				st := a.Status
				if a.Superseded {
					st += " (superseded)"
				}
				doc := a.FileName
				if doc != "" && !a.FileStored {
					doc += " (not uploaded)"
				}
				t.add(fmt.Sprint(a.LogIndex), strings.Join(a.Controls, ","), a.Person, st, a.ValidUntil.UTC().Format("2006-01-02"), a.Statement, doc, a.SHA256)
			}
			return render(cmd.OutOrStdout(), g.output, t)
		},
	}
	cmd.Flags().StringVar(&control, "control", "", "of this control")
	cmd.Flags().StringVar(&person, "person", "", "by this person id")
	cmd.Flags().StringVar(&status, "status", "", "valid, expiring or expired")
	cmd.Flags().StringVar(&at, "at", "", "as of an instant (RFC 3339)")
	cmd.Flags().BoolVar(&all, "all", false, "superseded attestations too")

	var outPath string
	get := &cobra.Command{
		Use:         "file SHA256",
		Annotations: outputs("table"),
		Short:       "Download an attested document by its sha256",
		Args:        cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			resp, err := c.Stream(cmd.Context(), "/v1/attestations/files/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			w := cmd.OutOrStdout()
			if outPath != "" {
				f, err := os.Create(outPath)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			_, err = io.Copy(w, resp.Body)
			return err
		},
	}
	get.Flags().StringVarP(&outPath, "out", "O", "", "write to this file (default: standard output)")
	cmd.AddCommand(get)
	return cmd
}
