package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/configs"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/bundle"
	"github.com/annexa-dev/annexa/server"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/servertest"
)

// person registers a fresh key under name, as annexa person add does.
func person(t *testing.T, s *servertest.Server, name, role string) (ed25519.PrivateKey, apiv1.Person) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	var p apiv1.Person
	require.NoError(t, s.Client(s.Admin).Do(context.Background(), http.MethodPost, "/v1/persons", nil, apiv1.PersonRequest{Name: name, Role: role, PublicKey: pub}, &p))
	return priv, p
}

func apiCode(err error) apiv1.Code {
	var e *client.Error
	if errors.As(err, &e) {
		return e.Body.Code
	}
	return ""
}

// People attest controls with a signed statement and the document that
// shows it; the attestation counts for its controls until it lapses, then
// they go stale; bundles carry it, the document and the earlier ones still
// in force, and the offline verifier checks them like agents' records.
func TestAttestationsFromSigningToOfflineVerification(t *testing.T) {
	var clock atomic.Int64
	t0 := time.Now().UTC().Truncate(time.Second)
	clock.Store(t0.UnixNano())
	s := servertest.New(t, server.Config{Now: func() time.Time { return time.Unix(0, clock.Load()).UTC() }})
	ctx := context.Background()
	admin := s.Client(s.Admin)
	anon := s.Client("")

	alice, ap := person(t, s, "Alice Martin", "ciso")
	bob, _ := person(t, s, "Bob Ito", "hr-lead")
	assert.Equal(t, uint64(1), ap.NextSeq)

	// The same key cannot be registered twice.
	err := admin.Do(ctx, http.MethodPost, "/v1/persons", nil, apiv1.PersonRequest{Name: "Mallory", PublicKey: alice.Public().(ed25519.PublicKey)}, nil)
	require.Error(t, err)

	dir := t.TempDir()
	policy := filepath.Join(dir, "policy-v3.pdf")
	require.NoError(t, os.WriteFile(policy, []byte("%PDF-1.7 information security policy v3"), 0o600))
	sum := sha256.Sum256([]byte("%PDF-1.7 information security policy v3"))
	policySHA := hex.EncodeToString(sum[:])

	res, err := anon.Attest(ctx, alice, client.Attestation{Controls: []string{"5.1", "5.2"}, Statement: "Information security policy v3 approved by the board",
		File: policy, ValidFor: 365 * 24 * time.Hour, Upload: true}, t0)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), res.Seq)
	assert.True(t, res.Uploaded, "%v", res.UploadError)
	assert.Equal(t, policySHA, res.SHA256)
	assert.NotEmpty(t, res.Checkpoint)
	res2, err := anon.Attest(ctx, bob, client.Attestation{Controls: []string{"6.3"}, Statement: "All staff completed security awareness training",
		ValidFor: 20 * 24 * time.Hour}, t0)
	require.NoError(t, err)
	assert.Empty(t, res2.SHA256)

	// The controls count them.
	var controls apiv1.ControlsResponse
	require.NoError(t, admin.Do(ctx, http.MethodGet, "/v1/controls", nil, nil, &controls))
	byID := map[string]apiv1.ControlSummary{}
	for _, c := range controls.Controls {
		byID[c.ID] = c
	}
	assert.Equal(t, 1, byID["5.1"].Attested)
	assert.True(t, byID["5.1"].Covered)
	assert.Equal(t, 1, byID["6.3"].AttestedExpiring, "lapses within 30 days")
	assert.Zero(t, byID["5.3"].Attested)

	var detail apiv1.ControlDetail
	require.NoError(t, admin.Do(ctx, http.MethodGet, "/v1/controls/5.1", nil, nil, &detail))
	require.Len(t, detail.Attestations, 1)
	assert.Equal(t, "Alice Martin", detail.Attestations[0].Person)
	assert.True(t, detail.Attestations[0].FileStored)
	assert.Equal(t, "valid", detail.Attestations[0].Status)

	var soa apiv1.SoAResponse
	require.NoError(t, admin.Do(ctx, http.MethodGet, "/v1/soa", nil, nil, &soa))
	soaBy := map[string]apiv1.SoAControl{}
	for _, l := range soa.Controls {
		soaBy[l.ID] = l
	}
	assert.NotContains(t, strings.Join(soaBy["5.1"].Flags, ";"), "no evidence")
	assert.Contains(t, strings.Join(soaBy["5.3"].Flags, ";"), "no evidence")
	assert.Contains(t, strings.Join(soaBy["6.3"].Flags, ";"), "lapses within 30 days")

	// The document by its digest, for a reader.
	var doc []byte
	require.NoError(t, admin.Do(ctx, http.MethodGet, "/v1/attestations/files/"+policySHA, nil, nil, &doc))
	assert.Equal(t, "%PDF-1.7 information security policy v3", string(doc))

	// Uploads: only an attested digest, only its content.
	other := filepath.Join(dir, "other.pdf")
	require.NoError(t, os.WriteFile(other, []byte("%PDF-1.7 information security policy v4"), 0o600))
	assert.Equal(t, apiv1.CodeNotAttested, apiCode(anon.UploadDocument(ctx, other, strings.Repeat("ab", 32))))
	require.Error(t, anon.UploadDocument(ctx, other, policySHA), "content of another digest")

	// Forged, replayed and misrouted attestations.
	mallory, err := func() (ed25519.PrivateKey, error) { _, k, err := ed25519.GenerateKey(nil); return k, err }()
	require.NoError(t, err)
	forged, err := evidence.SignAttestation(mallory, evidence.Attestation{PersonID: ap.ID, Seq: 2, Prev: res.Digest, Controls: []string{"5.1"},
		Statement: "forged", AttestedAt: t0, ValidUntil: t0.Add(time.Hour)}, "")
	require.NoError(t, err)
	forged.Signatures[0].KeyID = "" // a hint only: the registered key decides
	fb, _ := json.Marshal(forged)
	assert.Equal(t, apiv1.CodeBadSignature, apiCode(anon.Do(ctx, http.MethodPost, "/v1/attestations", nil, json.RawMessage(fb), nil)))
	var first []byte
	require.NoError(t, admin.Do(ctx, http.MethodGet, "/v1/log/entries/"+strconv.FormatInt(res.Index, 10), nil, nil, &first))
	var again apiv1.AttestResponse
	require.NoError(t, anon.Do(ctx, http.MethodPost, "/v1/attestations", nil, json.RawMessage(first), &again))
	assert.True(t, again.Duplicate, "a resent attestation is acknowledged, not appended twice")
	assert.Equal(t, res.Index, again.Index)
	agent := s.Enrol("", "laptop")
	_, err = agent.Ship(first)
	assert.Equal(t, apiv1.CodeMalformed, apiCode(err), "an agent's credential does not carry attestations")

	// Bundle of the period: verified offline, with the document.
	cat, err := configs.Catalog()
	require.NoError(t, err)
	keys, err := bundle.ParseServerKeys([]byte(s.Keys().ServerPub()))
	require.NoError(t, err)
	export := func(from, to time.Time) []byte {
		var buf bytes.Buffer
		require.NoError(t, s.Export(ctx, &buf, bundle.Scope{From: from, To: to, Freshness: (26 * time.Hour).String()}))
		return buf.Bytes()
	}
	clock.Store(t0.Add(2 * time.Hour).UnixNano())
	tgz := export(t0.Add(-time.Hour), t0.Add(time.Hour))
	rep := bundle.Verify(bytes.NewReader(tgz), keys, cat)
	require.True(t, rep.OK, "%v", rep.Problems)
	assert.Equal(t, int64(2), rep.Attestations)
	assert.Equal(t, "%PDF-1.7 information security policy v3", string(readBundleFile(t, tgz, bundle.DirFiles+policySHA)))
	var summary bundle.Summary
	require.NoError(t, json.Unmarshal(readBundleFile(t, tgz, bundle.FileSummary), &summary))
	found := false
	for _, c := range summary.Controls {
		if c.Control == "5.1" {
			require.Len(t, c.Assets, 1)
			assert.Equal(t, "person:"+ap.ID, c.Assets[0].Asset)
			assert.Equal(t, "passing", c.Assets[0].Status)
			assert.Equal(t, "Alice Martin", c.Assets[0].Checks[0].Person)
			found = true
		}
	}
	assert.True(t, found, "5.1 in the summary")
	oscal := string(readBundleFile(t, tgz, bundle.FileOSCAL))
	assert.Contains(t, oscal, `"parties"`)
	assert.Contains(t, oscal, `"EXAMINE"`)
	assert.Contains(t, oscal, "files/"+policySHA)

	// Tampering: the document, or the signed statement.
	bad := rewriteBundleFile(t, tgz, bundle.DirFiles+policySHA, func(b []byte) []byte { return append(b, '!') })
	rep = bundle.Verify(bytes.NewReader(bad), keys, cat)
	require.False(t, rep.OK)
	assert.Contains(t, problemsText(rep), "the document was altered")
	bad = rewriteBundleFile(t, tgz, bundle.FileEvidence, func(b []byte) []byte {
		var out [][]byte
		for _, l := range bytes.Split(b, []byte("\n")) {
			if env, err := parseEnv(l); err == nil && strings.Contains(string(env), "approved by the board") {
				l = bytes.Replace(l, []byte(`"payload":"`), []byte(`"payload":"eyJf`), 1)
			}
			out = append(out, l)
		}
		return bytes.Join(out, []byte("\n"))
	})
	rep = bundle.Verify(bytes.NewReader(bad), keys, cat)
	require.False(t, rep.OK)

	// A month on: bob's attestation has lapsed, his control is stale.
	clock.Store(t0.Add(31 * 24 * time.Hour).UnixNano())
	controls = apiv1.ControlsResponse{}
	require.NoError(t, admin.Do(ctx, http.MethodGet, "/v1/controls", nil, nil, &controls))
	for _, c := range controls.Controls {
		if c.ID == "6.3" {
			assert.Equal(t, 1, c.AttestedStale)
			assert.Zero(t, c.Attested)
		}
	}
	var expired apiv1.AttestationsResponse
	require.NoError(t, admin.Do(ctx, http.MethodGet, "/v1/attestations", map[string][]string{"status": {"expired"}}, nil, &expired))
	require.Len(t, expired.Attestations, 1)
	assert.Equal(t, "Bob Ito", expired.Attestations[0].Person)
	soa = apiv1.SoAResponse{}
	require.NoError(t, admin.Do(ctx, http.MethodGet, "/v1/soa", nil, nil, &soa))
	for _, l := range soa.Controls {
		if l.ID == "6.3" {
			assert.Contains(t, strings.Join(l.Flags, ";"), "stale")
		}
	}

	// A later period's bundle still carries the attestations in force from
	// before it: alice's policy passes, bob's training shows lapsed.
	later := export(t0.Add(30*24*time.Hour), t0.Add(31*24*time.Hour))
	rep = bundle.Verify(bytes.NewReader(later), keys, cat)
	require.True(t, rep.OK, "%v", rep.Problems)
	assert.Equal(t, int64(2), rep.Attestations)
	require.NoError(t, json.Unmarshal(readBundleFile(t, later, bundle.FileSummary), &summary))
	statuses := map[string]string{}
	for _, c := range summary.Controls {
		for _, a := range c.Assets {
			statuses[c.Control] = a.Status
		}
	}
	assert.Equal(t, "passing", statuses["5.1"])
	assert.Equal(t, "stale", statuses["6.3"])

	// Removal: later attestations are refused; one a compromised server
	// appended anyway fails verification, as does one signed by an agent.
	require.NoError(t, admin.Do(ctx, http.MethodPost, "/v1/persons/"+ap.ID+"/revoke", nil, struct{}{}, nil))
	_, err = anon.Attest(ctx, alice, client.Attestation{Controls: []string{"5.1"}, Statement: "again", ValidFor: time.Hour}, t0.Add(31*24*time.Hour))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "removed")
	late, err := evidence.SignAttestation(alice, evidence.Attestation{PersonID: ap.ID, Seq: 2, Prev: res.Digest, Controls: []string{"5.1"},
		Statement: "after removal", AttestedAt: t0.Add(31 * 24 * time.Hour), ValidUntil: t0.Add(400 * 24 * time.Hour)}, "")
	require.NoError(t, err)
	lb, _ := json.Marshal(late)
	assert.Equal(t, apiv1.CodeRevoked, apiCode(anon.Do(ctx, http.MethodPost, "/v1/attestations", nil, json.RawMessage(lb), nil)))
	_, err = s.AppendRawForTest(ctx, ap.ID, 2, lb)
	require.NoError(t, err)
	byAgent, err := evidence.SignAttestation(agent.Key, evidence.Attestation{PersonID: agent.ID, Seq: 1, Prev: agent.Enroll.Genesis, Controls: []string{"5.1"},
		Statement: "an agent vouching", AttestedAt: t0.Add(31 * 24 * time.Hour), ValidUntil: t0.Add(400 * 24 * time.Hour)}, "")
	require.NoError(t, err)
	ab, _ := json.Marshal(byAgent)
	_, err = s.AppendRawForTest(ctx, agent.ID, 1, ab)
	require.NoError(t, err)
	clock.Store(t0.Add(32 * 24 * time.Hour).UnixNano())
	rep = bundle.Verify(bytes.NewReader(export(t0.Add(31*24*time.Hour), t0.Add(32*24*time.Hour))), keys, cat)
	require.False(t, rep.OK)
	text := problemsText(rep)
	assert.Contains(t, text, "attestation by Alice Martin ("+ap.ID+"), whose key was not valid at seq 2")
	assert.Contains(t, text, "only a registered person's key attests")
}

// parseEnv returns an envelope line's decoded payload.
func parseEnv(line []byte) ([]byte, error) {
	var e struct {
		Payload []byte `json:"payload"`
	}
	if err := json.Unmarshal(line, &e); err != nil {
		return nil, err
	}
	return e.Payload, nil
}
