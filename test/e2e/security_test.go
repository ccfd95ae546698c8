package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// One enrolled machine may lie about itself, never about another asset:
// a record about another host, or about an external asset not granted to
// it, is refused; a collected_at in the future (to stay fresh forever) is
// refused; grants come from the enrollment token or an admin, are key
// events in the log, and the offline verifier applies the same rule.
func TestAgentCannotWriteOthersState(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	a := s.enrol(s.token("enroll", apiv1.TokenRequest{}), "attacker")
	b := s.enrol(s.token("enroll", apiv1.TokenRequest{}), "victim")
	now := time.Now().UTC()
	_, err := b.ship(b.record(now, map[string]evidence.Status{sysVol: evidence.Fail}))
	require.NoError(t, err)

	// A writes B's disk encryption as passing, dated 2099.
	_, err = a.ship(a.recordAbout(evidence.HostAsset(b.ID), now.AddDate(73, 0, 0), map[string]evidence.Status{sysVol: evidence.Pass}))
	e := apiErr(t, err)
	require.Equal(t, 403, e.Status)
	require.Equal(t, apiv1.CodeNotGranted, e.Body.Code)
	require.Contains(t, e.Body.Message, "host:"+b.ID)

	// About itself, dated 2099: refused too, and A can resend a fixed one
	// only as a new chain position, which it cannot (the seq is signed):
	// A's chain holds at seq 1 until its agent explains.
	a2 := s.enrol(s.token("enroll", apiv1.TokenRequest{}), "liar")
	_, err = a2.ship(a2.record(now.AddDate(73, 0, 0), map[string]evidence.Status{sysVol: evidence.Pass}))
	e = apiErr(t, err)
	require.Equal(t, 422, e.Status)
	require.Equal(t, apiv1.CodeBadTime, e.Body.Code)
	// Past 2262 (beyond int64 nanoseconds) is refused the same way.
	a3 := s.enrol(s.token("enroll", apiv1.TokenRequest{}), "overflow")
	_, err = a3.ship(a3.record(time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), map[string]evidence.Status{sysVol: evidence.Pass}))
	require.Equal(t, apiv1.CodeBadTime, apiErr(t, err).Body.Code)

	var hd apiv1.HostDetail
	require.NoError(t, s.client(s.Admin).Do(context.Background(), http.MethodGet, "/v1/hosts/"+b.ID, nil, nil, &hd))
	require.Len(t, hd.Results, 1)
	require.Equal(t, "fail", hd.Results[0].Status, "B's own state stands")

	// An external asset: refused until an admin grants it, accepted after,
	// refused again once taken back.
	cloud := evidence.Asset("aws-account:111122223333")
	c := s.enrol(s.token("enroll", apiv1.TokenRequest{}), "cloud-runner")
	_, err = c.ship(c.recordAbout(cloud, now, map[string]evidence.Status{"aws_iam.root_mfa": evidence.Pass}))
	require.Equal(t, apiv1.CodeNotGranted, apiErr(t, err).Body.Code)
	out, err := s.cli(s.Admin, "agent", "grant", c.ID, string(cloud))
	require.NoError(t, err, out)
	require.Contains(t, out, string(cloud))
	// The refused record is not in the log: sign again from the start.
	c.w, err = chain.NewWriter(c.ID, c.key, chain.Head{Digest: c.enroll.Genesis})
	require.NoError(t, err)
	_, err = c.ship(c.recordAbout(cloud, now, map[string]evidence.Status{"aws_iam.root_mfa": evidence.Pass}))
	require.NoError(t, err)
	out, err = s.cli(s.Admin, "agent", "ungrant", c.ID, string(cloud))
	require.NoError(t, err, out)
	_, err = c.ship(c.recordAbout(cloud, now, map[string]evidence.Status{"aws_iam.root_mfa": evidence.Pass}))
	require.Equal(t, apiv1.CodeNotGranted, apiErr(t, err).Body.Code)

	// An enrollment token can grant at enrollment.
	d := s.enrol(s.token("enroll", apiv1.TokenRequest{Assets: []evidence.Asset{"aws-account:444455556666"}}), "aws-agent")
	_, err = d.ship(d.recordAbout("aws-account:444455556666", now, map[string]evidence.Status{"aws_iam.root_mfa": evidence.Fail}))
	require.NoError(t, err)
	// Grants are for enroll tokens only, and a host cannot be granted.
	err = s.client(s.Admin).Do(context.Background(), http.MethodPost, "/v1/tokens", nil, apiv1.TokenRequest{Role: "auditor", Assets: []evidence.Asset{cloud}}, nil)
	require.Equal(t, 400, apiErr(t, err).Status)
	out, err = s.cli(s.Admin, "agent", "grant", c.ID, "host:"+b.ID)
	require.Error(t, err, out)
	require.Contains(t, out, "cannot be granted")

	// The offline verifier replays the grants from the log and finds the
	// period clean.
	rep := verifyBytes(t, s, exportBundle(t, s, now.Add(-time.Hour), time.Now().Add(time.Minute)))
	require.True(t, rep.OK, problems(rep))
}

// A gap record can explain only what an agent could have dropped: one
// claiming seqs 1 … 2^64-2 is refused (it would end the agent's chain and
// cost a verifier per claimed seq), and the agent ships on from its head.
func TestHugeGapRecordRefused(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	a := s.enrol(s.token("enroll", apiv1.TokenRequest{}), "gapper")
	now := time.Now().UTC()
	_, err := a.ship(a.record(now, map[string]evidence.Status{sysVol: evidence.Pass}))
	require.NoError(t, err)
	head := a.w.Head()
	gap, err := chain.SignGap(a.key, a.ID, evidence.HostAsset(a.ID), 2, math.MaxUint64-1, head.Digest, head.Digest, "dropped everything", now, nil)
	require.NoError(t, err)
	_, err = a.ship(gap.JSON)
	e := apiErr(t, err)
	require.Equal(t, 422, e.Status)
	require.Contains(t, e.Body.Message, "a gap covers at most")

	resp, err := a.ship(a.record(now.Add(time.Second), map[string]evidence.Status{sysVol: evidence.Pass}))
	require.NoError(t, err)
	require.Equal(t, uint64(3), resp.NextSeq)
	rep := verifyBytes(t, s, exportBundle(t, s, now.Add(-time.Hour), time.Now().Add(time.Minute)))
	require.True(t, rep.OK, problems(rep))
}

// Invented check ids cannot grow the server: a record may carry only the
// checks the server's mapping knows; even then a record holds at most 1000
// results and an agent at most 2000 check states; and an admin can revoke a
// polluting agent and purge its states from the current view (on every
// replica), its log entries staying verifiable.
func TestInventedChecksBounded(t *testing.T) {
	// A check the server's mapping does not know is refused outright.
	plain := startServer(t, "sqlite", "", "")
	x := plain.enrol(plain.token("enroll", apiv1.TokenRequest{}), "inventor")
	_, err := x.ship(x.record(time.Now().UTC(), map[string]evidence.Status{"x.invented": evidence.Pass}))
	e := apiErr(t, err)
	require.Equal(t, apiv1.CodeUnknownCheck, e.Body.Code)
	require.Contains(t, e.Body.Message, "add it to the mapping file")

	// With checks the mapping knows (here 2700 of them), the bounds hold.
	var many []string
	for i := 0; i < 2700; i++ {
		many = append(many, fmt.Sprintf("x.check_%06d", i))
	}
	s := startServer(t, "sqlite", "", "", "--mapping", mappingWith(t, many...))
	tok := s.token("enroll", apiv1.TokenRequest{})
	p := s.enrol(tok, "polluter")
	honest := s.enrol(tok, "honest")
	now := time.Now().UTC()
	_, err = honest.ship(honest.record(now, map[string]evidence.Status{sysVol: evidence.Pass}))
	require.NoError(t, err)

	invented := func(from, n int) map[string]evidence.Status {
		m := map[string]evidence.Status{}
		for i := from; i < from+n; i++ {
			m[fmt.Sprintf("x.check_%06d", i)] = evidence.Pass
		}
		return m
	}
	head := p.w.Head()
	_, err = p.ship(p.record(now, invented(0, 1001)))
	require.Equal(t, apiv1.CodeTooMany, apiErr(t, err).Body.Code)
	p.w, err = chain.NewWriter(p.ID, p.key, head)
	require.NoError(t, err)
	var envs []json.RawMessage
	for b := 0; b < 3; b++ {
		envs = append(envs, p.record(now, invented(b*900, 900)))
	}
	resp, err := p.ship(envs...)
	require.Equal(t, apiv1.CodeTooMany, apiErr(t, err).Body.Code)
	require.NotNil(t, resp)
	require.Equal(t, 2, resp.Accepted, "1800 states kept, the third record would pass 2000")

	var hd apiv1.HostDetail
	require.NoError(t, s.client(s.Admin).Do(context.Background(), http.MethodGet, "/v1/hosts/"+p.ID, nil, nil, &hd))
	require.Len(t, hd.Results, 1800)
	out, err := s.cli(s.Admin, "agent", "revoke", "--purge", p.ID)
	require.NoError(t, err, out)
	require.Contains(t, out, "1800 check results of it removed")
	require.NoError(t, s.client(s.Admin).Do(context.Background(), http.MethodGet, "/v1/hosts/"+p.ID, nil, nil, &hd))
	require.Empty(t, hd.Results, "purged from the current state")
	require.NoError(t, s.client(s.Admin).Do(context.Background(), http.MethodGet, "/v1/hosts/"+honest.ID, nil, nil, &hd))
	require.Len(t, hd.Results, 1, "others untouched")
	rep := verifyBytes(t, s, exportBundle(t, s, now.Add(-time.Hour), time.Now().Add(time.Minute)))
	require.True(t, rep.OK, problems(rep))
	require.Equal(t, int64(2+1), rep.Records, "the polluter's records stay in the log")
}

// An endpoint trusted for TLS but without the server's log key (a proxy, an
// impostor) answering "all duplicates, resume after them" makes the agent
// drop nothing: only receipts under the log key pinned at enrollment count.
func TestUnsignedAcknowledgmentsDropNothing(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	impostor := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/evidence" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"accepted":0,"duplicates":50,"next_seq":51}`))
	}))
	defer impostor.Close()
	caFile := filepath.Join(t.TempDir(), "impostor.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: impostor.Certificate().Raw}), 0o644))

	h := newAgentHost(t, s, fmt.Sprintf("server: %s\nca: %s\n", impostor.URL, caFile))
	h.enroll(s.token("enroll", apiv1.TokenRequest{}))
	out, code := h.run("run", "--once")
	require.Equal(t, 2, code, "nothing was shipped: %s", out)
	out, _ = h.run("status", "-o", "json")
	var st struct {
		Records int `json:"outbox_records"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	require.Equal(t, int(h.perRun()), st.Records, "every record is still held")
}

// A database that comes back behind the checkpoint the server signed (its
// WAL deleted after a kill -9) is refused at start with what was lost and
// how to recover, instead of serving quietly without acknowledged records.
func TestRolledBackDatabaseRefused(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	a := s.enrol(s.token("enroll", apiv1.TokenRequest{}), "h")
	for i := 0; i < 5; i++ {
		_, err := a.ship(a.record(time.Now().UTC(), map[string]evidence.Status{sysVol: evidence.Pass}))
		require.NoError(t, err)
	}
	require.NoError(t, s.cmd.Process.Kill())
	_ = s.cmd.Wait()
	s.stopped = true
	for _, f := range []string{"annexa.db-wal", "annexa.db-shm"} {
		require.NoError(t, os.Remove(filepath.Join(s.Data, f)))
	}
	out, err := execOut(bin("annexa-server"), s.args...)
	require.Error(t, err, out)
	require.Contains(t, out, "the database is behind the checkpoint this server last signed")
	require.Contains(t, out, "Restore the database from a backup")
	require.NotContains(t, out, "listening", "it does not serve")
}

// What the probe tried, refused with a clear answer.
func TestHostileInputsRefused(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	ctx := context.Background()
	enrollTok := s.token("enroll", apiv1.TokenRequest{})
	a := s.enrol(enrollTok, "a")
	b := s.enrol(enrollTok, "b")
	admin := s.client(s.Admin)

	// A small-order key (all zero): a constant signature would verify for
	// any record.
	_, err := s.client("").Enroll(ctx, apiv1.EnrollRequest{Token: enrollTok, PublicKey: make([]byte, 32), Hostname: "zero"})
	e := apiErr(t, err)
	require.Equal(t, 400, e.Status)
	require.Contains(t, e.Body.Message, "small order")
	// A 10 KB hostname.
	pub, _, _ := ed25519GenerateKey()
	_, err = s.client("").Enroll(ctx, apiv1.EnrollRequest{Token: enrollTok, PublicKey: pub, Hostname: strings.Repeat("h", 10000)})
	require.Equal(t, 400, apiErr(t, err).Status)

	// Unsigned fields beside the envelope's signed ones.
	env := a.record(time.Now().UTC(), map[string]evidence.Status{sysVol: evidence.Pass})
	padded := append([]byte(`{"junk":"`+strings.Repeat("x", 1000)+`",`), env[1:]...)
	_, err = a.ship(padded)
	e = apiErr(t, err)
	require.Equal(t, 400, e.Status)
	require.Contains(t, e.Body.Message, "payload, payloadType and signatures only")
	resp, err := a.ship(env)
	require.NoError(t, err)

	// An agent reads its own log entries, not another's.
	var raw []byte
	require.NoError(t, a.c.Do(ctx, http.MethodGet, fmt.Sprintf("/v1/log/entries/%d", resp.Receipts[0].Index), nil, nil, &raw))
	err = b.c.Do(ctx, http.MethodGet, fmt.Sprintf("/v1/log/entries/%d", resp.Receipts[0].Index), nil, nil, &raw)
	require.Equal(t, 403, apiErr(t, err).Status)
	err = b.c.Do(ctx, http.MethodGet, "/v1/log/proof/inclusion", url.Values{"index": {fmt.Sprint(resp.Receipts[0].Index)}}, nil, nil)
	require.Equal(t, 403, apiErr(t, err).Status)

	// More query parameters than Go keeps: the filters would vanish.
	many := url.Values{}
	for i := 0; i < 10001; i++ {
		many.Add("check", fmt.Sprintf("c%d", i))
	}
	err = admin.Do(ctx, http.MethodGet, "/v1/evidence", many, nil, nil)
	require.Equal(t, 400, apiErr(t, err).Status)

	// Instants beyond what the store holds, and periods backwards.
	for _, q := range []url.Values{{"at": {"0001-01-01"}}, {"at": {"2300-01-01"}}} {
		err = admin.Do(ctx, http.MethodGet, "/v1/controls", q, nil, nil)
		require.Equal(t, 400, apiErr(t, err).Status, q)
	}
	err = admin.Do(ctx, http.MethodGet, "/v1/history", url.Values{"from": {"2026-02-01"}, "to": {"2026-01-01"}}, nil, nil)
	require.Equal(t, 400, apiErr(t, err).Status)
	out, err := s.cli(s.Admin, "export", "--from", "2026-01-01", "--to", "9999-12-31", "--out", filepath.Join(t.TempDir(), "b.tgz"))
	require.Error(t, err, out)
	require.Contains(t, out, "out of range")
	for _, exp := range []time.Time{time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), time.Now().Add(-time.Hour)} {
		err = admin.Do(ctx, http.MethodPost, "/v1/tokens", nil, apiv1.TokenRequest{Role: "enroll", Expires: exp}, nil)
		require.Equal(t, 400, apiErr(t, err).Status, exp)
	}

	// The secret stays out of --help, the database out of other users'
	// reach, and TLS offers no CBC suites; the certificate is a leaf.
	cmd := exec.Command(bin("annexa"), "--help")
	cmd.Env = append(os.Environ(), "ANNEXA_TOKEN="+s.Admin)
	help, _ := cmd.CombinedOutput()
	require.NotContains(t, string(help), s.Admin)
	st, err := os.Stat(filepath.Join(s.Data, "annexa.db"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	_, err = tls.Dial("tcp", strings.TrimPrefix(s.URL, "https://"), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, //nolint:gosec // probing the offer
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_CBC_SHA}})
	require.Error(t, err, "a CBC-only client finds no suite in common")
	certPEM, err := os.ReadFile(s.CA)
	require.NoError(t, err)
	blk, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	require.False(t, cert.IsCA)
}
