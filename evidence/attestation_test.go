package evidence_test

import (
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence"
)

func TestAttestationRoundTrip(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	prev := strings.Repeat("0", 64)
	a := evidence.Attestation{PersonID: "prs-1", Seq: 1, Prev: prev, Controls: []string{"5.1", "5.36"}, Statement: "Policy v3 approved by the board",
		AttestedAt: at, ValidUntil: at.Add(365 * 24 * time.Hour), File: &evidence.AttestedFile{Name: "policy-v3.pdf", Size: 1234, MediaType: "application/pdf"}}
	digest := strings.Repeat("ab", 32)
	env, err := evidence.SignAttestation(priv, a, digest)
	require.NoError(t, err)
	rec, err := evidence.Open(env, pub)
	require.NoError(t, err)
	require.NotNil(t, rec.Attestation)
	assert.Equal(t, "prs-1", rec.Predicate.AgentID, "the chain fields are the person's")
	assert.Equal(t, uint64(1), rec.Predicate.Seq)
	assert.Equal(t, prev, rec.Predicate.Prev)
	assert.Equal(t, evidence.Asset("person:prs-1"), rec.Asset())
	assert.Equal(t, digest, rec.Subject[0].Digest["sha256"], "the subject is the document")
	assert.Equal(t, "policy-v3.pdf", rec.Subject[0].Name)
	assert.Empty(t, rec.Predicate.Results)
	assert.False(t, rec.Attestation.Expired(at.Add(364*24*time.Hour)))
	assert.True(t, rec.Attestation.Expired(at.Add(365*24*time.Hour)))

	// Without a document the subject is the statement itself.
	a.File = nil
	env, err = evidence.SignAttestation(priv, a, "")
	require.NoError(t, err)
	rec, err = evidence.Open(env, pub)
	require.NoError(t, err)
	assert.Equal(t, evidence.StatementSubject, rec.Subject[0].Name)
	assert.Equal(t, evidence.Digest([]byte(a.Statement)), rec.Subject[0].Digest["sha256"])

	// A statement changed after signing fails the signature; one re-signed
	// with its subject left stale fails the shape.
	var st map[string]any
	require.NoError(t, json.Unmarshal(env.Payload, &st))
	st["predicate"].(map[string]any)["statement"] = "Policy v2"
	b, _ := json.Marshal(st)
	env.Payload = b
	_, err = evidence.Open(env, pub)
	require.Error(t, err)
	_, err = evidence.ParseRecord(b)
	require.ErrorIs(t, err, evidence.ErrMalformedRecord)
	assert.Contains(t, err.Error(), "statement's digest")
}

func TestAttestationShape(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	good := func() evidence.Attestation {
		return evidence.Attestation{PersonID: "prs-1", Seq: 1, Prev: strings.Repeat("0", 64), Controls: []string{"5.1"}, Statement: "ok", AttestedAt: at, ValidUntil: at.Add(time.Hour)}
	}
	for name, tc := range map[string]struct {
		change func(*evidence.Attestation)
		want   string
	}{
		"no controls":        {func(a *evidence.Attestation) { a.Controls = nil }, "controls"},
		"not a control":      {func(a *evidence.Attestation) { a.Controls = []string{"A.5.1"} }, "not an Annex A control id"},
		"theme 9":            {func(a *evidence.Attestation) { a.Controls = []string{"9.1"} }, "not an Annex A control id"},
		"empty statement":    {func(a *evidence.Attestation) { a.Statement = "  " }, "statement"},
		"lapses before made": {func(a *evidence.Attestation) { a.ValidUntil = at }, "valid_until"},
		"for a decade":       {func(a *evidence.Attestation) { a.ValidUntil = at.Add(10 * 365 * 24 * time.Hour) }, "at most"},
		"seq 0":              {func(a *evidence.Attestation) { a.Seq = 0 }, "seq 0"},
		"no person":          {func(a *evidence.Attestation) { a.PersonID = "" }, "person_id"},
		"a path as the name": {func(a *evidence.Attestation) { a.File = &evidence.AttestedFile{Name: "../etc/passwd"} }, "base name"},
	} {
		t.Run(name, func(t *testing.T) {
			a := good()
			tc.change(&a)
			d := ""
			if a.File != nil {
				d = strings.Repeat("ab", 32)
			}
			_, err := evidence.SignAttestation(priv, a, d)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
