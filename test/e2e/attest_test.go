package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence/bundle"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// A person makes their key, an admin registers it, they attest a control
// with a document, and an auditor finds the attestation in the control's
// state, the SoA and a bundle that annexa verify accepts offline, with the
// document under its digest and an OSCAL document the schema accepts.
func TestAttestWithTheCLI(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b, func(t *testing.T) { attestWithTheCLI(t, b) })
	}
}

func attestWithTheCLI(t *testing.T, backend string) {
	s := startServer(t, backend, "", "")
	admin := s.token("admin", apiv1.TokenRequest{})
	dir := t.TempDir()
	key := filepath.Join(dir, "person.key")

	out, err := s.cli("", "person", "init", "--key", key, "-o", "json")
	require.NoError(t, err, out)
	var made struct {
		PublicKey string `json:"public_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &made), out)
	st, err := os.Stat(key)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the private key is the person's alone")

	out, err = s.cli(admin, "person", "add", "--name", "Alice Martin", "--role", "ciso", "--public-key", made.PublicKey, "-o", "json")
	require.NoError(t, err, out)
	var p apiv1.Person
	require.NoError(t, json.Unmarshal([]byte(out), &p), out)

	doc := []byte("%PDF-1.7 Information security policy v3, approved by the board")
	policy := filepath.Join(dir, "policy-v3.pdf")
	require.NoError(t, os.WriteFile(policy, doc, 0o600))
	sum := sha256.Sum256(doc)
	digest := hex.EncodeToString(sum[:])

	from := time.Now().UTC().Add(-time.Second)
	// Attesting needs the person's key, not an API token.
	out, err = s.cli("", "attest", "--key", key, "--control", "5.1", "--statement", "Information security policy v3 approved by the board",
		"--file", policy, "--valid-for", "365d")
	require.NoError(t, err, out)
	require.Contains(t, out, "5.1 attested by Alice Martin")
	require.Contains(t, out, "uploaded")
	time.Sleep(20 * time.Millisecond)
	to := time.Now().UTC()

	auditor := s.token("auditor", apiv1.TokenRequest{})
	out, err = s.cli(auditor, "attestations", "--control", "5.1")
	require.NoError(t, err, out)
	require.Contains(t, out, "Alice Martin")
	require.Contains(t, out, "policy-v3.pdf")
	out, err = s.cli(auditor, "soa", "-o", "json")
	require.NoError(t, err, out)
	var soa apiv1.SoAResponse
	require.NoError(t, json.Unmarshal([]byte(out), &soa))
	for _, l := range soa.Controls {
		if l.ID == "5.1" {
			require.Equal(t, 1, l.Evidence.Attested)
		}
	}
	// Read through another framework: 2013's A.5.1.1 is 2022's 5.1.
	out, err = s.cli(auditor, "controls", "--framework", "iso27001-2013")
	require.NoError(t, err, out)
	require.Regexp(t, `A\.5\.1\.1\s+Policies for information security\s+passing\s+5\.1 passing`, out)
	require.Contains(t, out, "mapping: ISO/IEC 27002:2022, Annex B")
	got := filepath.Join(dir, "got.pdf")
	out, err = s.cli(auditor, "attestations", "file", digest, "--out", got)
	require.NoError(t, err, out)
	b, err := os.ReadFile(got)
	require.NoError(t, err)
	require.Equal(t, doc, b)

	// The auditor's bundle, verified offline by the CLI.
	tgz := exportBundle(t, s, from, to)
	path := filepath.Join(dir, "b.tar.gz")
	require.NoError(t, os.WriteFile(path, tgz, 0o644))
	out, err = execOut(bin("annexa"), "verify", "--server-key", filepath.Join(s.Data, "server.pub"), path)
	require.NoError(t, err, out)
	require.Contains(t, out, "VERIFIED")
	require.Contains(t, out, "attestations: 1")
	files := unpack(t, tgz)
	f := file(files, bundle.DirFiles+digest)
	require.NotNil(t, f, "the document is in the bundle under its digest")
	require.Equal(t, doc, f.data)
	oscal := file(files, bundle.FileOSCAL).data
	validateOSCAL(t, oscal)
	require.Contains(t, string(oscal), `"Alice Martin"`, "the person is a party of the assessment results")
}
