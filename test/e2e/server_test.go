package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/evidence/checkpoint"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/store"
)

const (
	sysVol = "disk_encryption.system_volume"
	sshPw  = "ssh.password_auth"
)

func forEachBackend(t *testing.T, fn func(t *testing.T, backend string)) {
	for _, b := range backends(t) {
		t.Run(b, func(t *testing.T) { fn(t, b) })
	}
}

func TestServerFirstStart(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	for name, mode := range map[string]os.FileMode{"enroll.key": 0o600, "log.key": 0o600, "admin.token": 0o600, "tls.key": 0o600, "server.pub": 0o644} {
		st, err := os.Stat(filepath.Join(s.Data, name))
		require.NoError(t, err, name)
		require.Equal(t, mode, st.Mode().Perm(), name)
	}
	require.Contains(t, s.stderr.String(), "Bootstrap admin token created in")
	require.NotContains(t, s.stderr.String(), s.Admin, "stderr is not a terminal here: the secret stays out of logs")
	pub, err := os.ReadFile(filepath.Join(s.Data, "server.pub"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(pub)), "\n")
	require.Len(t, lines, 2)
	for _, l := range lines {
		_, err := note.NewVerifier(l)
		require.NoError(t, err, l)
	}
	// A second start reuses everything and prints no new token.
	s.stop()
	s.start()
	require.NotContains(t, s.stderr.String(), "Bootstrap admin token")
	// A second server on the same port fails before touching its data.
	other := t.TempDir()
	out, err := execOut(bin("annexa-server"), "serve", "--listen", s.addr, "--data", other)
	require.Error(t, err, out)
	require.Contains(t, out, "another server there?")
	_, err = os.Stat(filepath.Join(other, "admin.token"))
	require.True(t, os.IsNotExist(err), "no token created by a server that could not listen")
	pub2, _ := os.ReadFile(filepath.Join(s.Data, "server.pub"))
	require.Equal(t, pub, pub2)

	require.NoError(t, s.client(s.Admin).Do(context.Background(), http.MethodGet, "/v1/hosts", nil, nil, nil))
}

func TestEnrolIngestQuery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s := startServer(t, backend, "", "")
		ctx := context.Background()
		enrollTok := s.token("enroll", apiv1.TokenRequest{Labels: map[string]string{"team": "finance"}})
		a := s.enrol(enrollTok, "laptop-1")
		b := s.enrol(enrollTok, "laptop-2")
		require.Equal(t, map[string]string{"team": "finance"}, a.enroll.Labels)

		t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		// a: passes, then fails at 11:00; b: fails throughout.
		resp, err := a.ship(a.record(t0, map[string]evidence.Status{sysVol: evidence.Pass, sshPw: evidence.Pass}))
		require.NoError(t, err)
		require.Equal(t, 1, resp.Accepted)
		require.Equal(t, uint64(2), resp.NextSeq)
		require.Len(t, resp.Receipts, 1)
		_, err = a.ship(a.record(t0.Add(2*time.Hour), map[string]evidence.Status{sysVol: evidence.Fail, sshPw: evidence.Pass}))
		require.NoError(t, err)
		_, err = b.ship(b.record(t0, map[string]evidence.Status{sysVol: evidence.Fail}), b.record(t0.Add(time.Hour), map[string]evidence.Status{sysVol: evidence.Fail}))
		require.NoError(t, err)

		analyst := s.token("analyst", apiv1.TokenRequest{})
		c := s.client(analyst)
		// Now (2026-11): every result is stale.
		var ctl apiv1.ControlDetail
		require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/controls/8.24", nil, nil, &ctl))
		require.Equal(t, 2, ctl.Assets)
		require.Equal(t, 2, ctl.Stale)

		// Point in time: 1 March, 10:00 — a passing, b failing.
		at := url.Values{"at": {"2026-03-01T10:00:00Z"}}
		require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/controls/8.24", at, nil, &ctl))
		require.Equal(t, 1, ctl.Passing, "%+v", ctl.ControlSummary)
		require.Equal(t, 1, ctl.Failing)
		require.Equal(t, "host:"+b.ID, ctl.AssetsDetail[0].Asset, "failing first")
		// At noon both fail.
		at.Set("at", "2026-03-01T12:00:00Z")
		require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/controls/8.24", at, nil, &ctl))
		require.Equal(t, 2, ctl.Failing)
		// A 2013 id is understood: A.10.1.1 is 8.24.
		var ctl13 apiv1.ControlDetail
		require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/controls/A.10.1.1", at, nil, &ctl13))
		require.Equal(t, "8.24", ctl13.ID)

		var all apiv1.ControlsResponse
		require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/controls", at, nil, &all))
		require.Len(t, all.Controls, 93)
		require.Equal(t, 93, all.Total)
		require.Greater(t, all.Automated, 10)
		for _, cs := range all.Controls {
			if cs.ID == "8.5" { // ssh.password_auth passes on a
				require.Equal(t, 1, cs.Passing)
			}
			if cs.ID == "5.1" {
				require.False(t, cs.Automated)
			}
		}

		// History: when a started failing.
		var hist apiv1.Page[store.Transition]
		require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/history", url.Values{"asset": {"host:" + a.ID}, "check": {sysVol}}, nil, &hist))
		require.Len(t, hist.Items, 2)
		require.Equal(t, "pass", hist.Items[0].Status)
		require.Equal(t, "fail", hist.Items[1].Status)
		require.Equal(t, "pass", hist.Items[1].Previous)
		require.Equal(t, t0.Add(2*time.Hour), hist.Items[1].At)

		// Evidence, filtered and paginated.
		var ev apiv1.Page[store.Result]
		require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/evidence", url.Values{"control": {"8.24"}, "status": {"fail"}}, nil, &ev))
		require.Len(t, ev.Items, 3)
		require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/evidence", url.Values{"control": {"8.24"}, "limit": {"1"}}, nil, &ev))
		require.Len(t, ev.Items, 1)
		require.NotEmpty(t, ev.Next)
		require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/evidence", url.Values{"label": {"team=sales"}}, nil, &ev))
		require.Empty(t, ev.Items)

		// Hosts, with labels.
		var hosts apiv1.Page[apiv1.Host]
		require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/hosts", url.Values{"label": {"team=finance"}}, nil, &hosts))
		require.Len(t, hosts.Items, 2)
		var hd apiv1.HostDetail
		require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/hosts/"+a.ID, nil, nil, &hd))
		require.Len(t, hd.Results, 2)
		require.Equal(t, uint64(2), hd.LastSeq)

		// The CLI, as a person would run it.
		out, err := s.cli(analyst, "evidence", "--control", "8.24", "--status", "fail")
		require.NoError(t, err, out)
		require.Contains(t, out, "host:"+b.ID)
		require.Equal(t, 4, strings.Count(out, "\n"), out) // header + 3
		out, err = s.cli(analyst, "controls", "--at", "2026-03-01T10:00:00Z", "--automated", "-o", "csv")
		require.NoError(t, err, out)
		require.Contains(t, out, "8.24,Technological,Use of cryptography,2,1,1,0,0")
		out, err = s.cli(analyst, "hosts", "-o", "json")
		require.NoError(t, err, out)
		var hj []apiv1.Host
		require.NoError(t, json.Unmarshal([]byte(out), &hj))
		require.Len(t, hj, 2)
		out, err = s.cli(analyst, "controls", "--control", "9.99")
		require.Error(t, err)
		require.Contains(t, out, "unknown flag")
		out, err = s.cli(analyst, "control", "9.99")
		require.Error(t, err)
		require.Contains(t, out, `unknown control "9.99"`)
	})
}

func TestBadSubmissions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s := startServer(t, backend, "", "", "--max-body", "200000")
		enrollTok := s.token("enroll", apiv1.TokenRequest{})
		a := s.enrol(enrollTok, "host-a")
		other := s.enrol(enrollTok, "host-b")
		at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		r1 := a.record(at, map[string]evidence.Status{sysVol: evidence.Pass})
		_, err := a.ship(r1)
		require.NoError(t, err)

		// Re-sent: idempotent.
		resp, err := a.ship(r1)
		require.NoError(t, err)
		require.Equal(t, 0, resp.Accepted)
		require.Equal(t, 1, resp.Duplicates)

		// Forged: signed by a key that is not the agent's.
		forger := &simAgent{t: t, ID: a.ID}
		_, forger.key, _ = ed25519GenerateKey()
		forger.w, _ = chain.NewWriter(a.ID, forger.key, a.w.Head())
		forged := forger.record(at, map[string]evidence.Status{sysVol: evidence.Pass})
		_, err = a.ship(forged)
		e := apiErr(t, err)
		require.Equal(t, 422, e.Status)
		require.Equal(t, apiv1.CodeWrongKeyID, e.Body.Code) // its keyid names the forger's key
		fenv, _ := dsse.Parse(forged)
		fenv.Signatures[0].KeyID = ""
		forged, _ = json.Marshal(fenv)
		_, err = a.ship(forged)
		e = apiErr(t, err)
		require.Equal(t, 422, e.Status)
		require.Equal(t, apiv1.CodeBadSignature, e.Body.Code)

		// Tampered: one byte of a genuine record's payload.
		r2 := a.record(at.Add(time.Hour), map[string]evidence.Status{sysVol: evidence.Fail})
		env, err := dsse.Parse(r2)
		require.NoError(t, err)
		env.Payload = []byte(strings.Replace(string(env.Payload), `"fail"`, `"pass"`, 1))
		tampered, _ := json.Marshal(env)
		_, err = a.ship(tampered)
		e = apiErr(t, err)
		require.Equal(t, 400, e.Status, e.Error()) // the subject digest no longer matches: malformed before any signature check
		// Tampered signature.
		env2, _ := dsse.Parse(r2)
		env2.Signatures[0].Sig[5] ^= 1
		badSig, _ := json.Marshal(env2)
		_, err = a.ship(badSig)
		require.Equal(t, apiv1.CodeBadSignature, apiErr(t, err).Body.Code)

		// Out of order: seq 3 before 2.
		r3 := a.record(at.Add(2*time.Hour), map[string]evidence.Status{sysVol: evidence.Fail})
		resp, err = a.ship(r3)
		e = apiErr(t, err)
		require.Equal(t, 409, e.Status)
		require.Equal(t, apiv1.CodeSeqGap, e.Body.Code)
		require.Equal(t, uint64(2), e.Body.ExpectedSeq)
		require.Equal(t, uint64(2), resp.NextSeq)
		// Resent from the seq asked for: both land.
		resp, err = a.ship(r2, r3)
		require.NoError(t, err)
		require.Equal(t, 2, resp.Accepted)

		// Another agent's record under this agent's credential.
		_, err = a.ship(other.record(at, map[string]evidence.Status{sysVol: evidence.Pass}))
		e = apiErr(t, err)
		require.Equal(t, 403, e.Status)
		require.Equal(t, apiv1.CodeWrongAgent, e.Body.Code)

		// Malformed JSON, an empty batch, an oversized body.
		for name, body := range map[string]string{"not json": "{", "empty": `{"envelopes":[]}`, "junk envelope": `{"envelopes":[{"payload":1}]}`} {
			code, _ := rawPost(t, s, body)
			require.Equal(t, 400, code, name)
		}
		big := make([]json.RawMessage, 0)
		for i := 0; i < 300; i++ {
			big = append(big, r1)
		}
		_, err = a.ship(big...) // gzip makes it small on the wire; the limit holds after decompression
		require.Equal(t, 413, apiErr(t, err).Status)

		// Unknown agent, bad credential, no credential.
		for _, cred := range []string{"agt-nope.secret", a.ID + ".wrong", ""} {
			_, err := s.client(cred).Ingest(context.Background(), []json.RawMessage{r1})
			require.Equal(t, 401, apiErr(t, err).Status, cred)
		}

		// Fork: a different record at an accepted seq; the agent is flagged.
		fork := &simAgent{t: t, ID: a.ID, key: a.key}
		fork.w, _ = chain.NewWriter(a.ID, a.key, chain.Head{Digest: a.enroll.Genesis})
		f1 := fork.record(at.Add(time.Minute), map[string]evidence.Status{sysVol: evidence.Pass})
		_, err = a.ship(f1)
		e = apiErr(t, err)
		require.Equal(t, 409, e.Status)
		require.Equal(t, apiv1.CodeFork, e.Body.Code)
		var hd apiv1.HostDetail
		require.NoError(t, s.client(s.Admin).Do(context.Background(), http.MethodGet, "/v1/hosts/"+a.ID, nil, nil, &hd))
		require.Contains(t, hd.Flag, "fork at seq 1")

		// Nothing half-written: the log holds the five enrollments (a, other
		// and the three raw posters) and the three accepted records, in a
		// tree whose checkpoint verifies.
		size := verifyLog(t, s)
		require.Equal(t, int64(5+3), size)

		// Revocation: later records refused, earlier ones kept.
		_, err = s.cli(s.Admin, "agent", "revoke", a.ID)
		require.NoError(t, err)
		_, err = a.ship(a.record(at.Add(3*time.Hour), map[string]evidence.Status{sysVol: evidence.Pass}))
		e = apiErr(t, err)
		require.Equal(t, 403, e.Status)
		require.Equal(t, apiv1.CodeRevoked, e.Body.Code)
		require.Equal(t, int64(5+3+1), verifyLog(t, s)) // + the revoke event
	})
}

func TestTokensAndRoles(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s := startServer(t, backend, "", "")
		ctx := context.Background()
		auditor := s.token("auditor", apiv1.TokenRequest{})
		analyst := s.token("analyst", apiv1.TokenRequest{})
		// An auditor reads but cannot create tokens or revoke agents.
		require.NoError(t, s.client(auditor).Do(ctx, http.MethodGet, "/v1/controls", nil, nil, nil))
		err := s.client(auditor).Do(ctx, http.MethodPost, "/v1/tokens", nil, apiv1.TokenRequest{Role: "admin"}, nil)
		require.Equal(t, 403, apiErr(t, err).Status)
		out, err := s.cli(auditor, "token", "create", "--role", "admin")
		require.Error(t, err)
		require.Contains(t, out, "403")
		err = s.client(analyst).Do(ctx, http.MethodPost, "/v1/agents/x/revoke", nil, struct{}{}, nil)
		require.Equal(t, 403, apiErr(t, err).Status)
		// An enroll token cannot read.
		enrollTok := s.token("enroll", apiv1.TokenRequest{MaxUses: 1})
		err = s.client(enrollTok).Do(ctx, http.MethodGet, "/v1/hosts", nil, nil, nil)
		require.Equal(t, 403, apiErr(t, err).Status)
		// Max uses: one agent, then refused.
		s.enrol(enrollTok, "one")
		key, _, _ := ed25519GenerateKey()
		_, err = s.client("").Enroll(ctx, apiv1.EnrollRequest{Token: enrollTok, PublicKey: key, Hostname: "two"})
		e := apiErr(t, err)
		require.Equal(t, 403, e.Status)
		require.Contains(t, e.Body.Message, "no uses left")
		// Expired (a token cannot be created expired: it expires soon).
		expired := s.token("enroll", apiv1.TokenRequest{Expires: time.Now().Add(time.Second)})
		require.Eventually(t, func() bool {
			_, err := s.client("").Enroll(ctx, apiv1.EnrollRequest{Token: expired, PublicKey: key, Hostname: "x"})
			var ce *client.Error
			return errors.As(err, &ce) && strings.Contains(ce.Body.Message, "expired")
		}, 10*time.Second, 100*time.Millisecond)
		// Unknown.
		_, err = s.client("").Enroll(ctx, apiv1.EnrollRequest{Token: "anx_nope", PublicKey: key, Hostname: "x"})
		require.Equal(t, 401, apiErr(t, err).Status)
		// The CLI creates and lists tokens; secrets are stored hashed.
		out, err = s.cli(s.Admin, "token", "create", "--role", "enroll", "--max-uses", "5", "--label", "site=ams", "--expires", "72h")
		require.NoError(t, err, out)
		secret := strings.TrimSpace(strings.Split(out, "\n")[0])
		require.True(t, strings.HasPrefix(secret, "anx_"), out)
		out, err = s.cli(s.Admin, "token", "list", "-o", "csv")
		require.NoError(t, err, out)
		require.Contains(t, out, "site=ams")
		require.NotContains(t, out, secret)
		if backend == "sqlite" {
			s.stop()
			db, err := os.ReadFile(filepath.Join(s.Data, "annexa.db"))
			require.NoError(t, err)
			require.NotContains(t, string(db), secret, "secret stored in clear")
			require.NotContains(t, string(db), s.Admin, "admin secret stored in clear")
		}
	})
}

// verifyLog fetches every entry, rebuilds the tree, and checks the latest
// checkpoint's signature, root, and inclusion and consistency proofs from
// the API. It returns the log size.
func verifyLog(t *testing.T, s *server) int64 {
	t.Helper()
	ctx := context.Background()
	c := s.client(s.Admin)
	var cpText []byte
	require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/log/checkpoint", nil, nil, &cpText))
	pub, err := os.ReadFile(filepath.Join(s.Data, "server.pub"))
	require.NoError(t, err)
	v, err := note.NewVerifier(strings.Split(string(pub), "\n")[0])
	require.NoError(t, err)
	cp, err := checkpoint.Open(cpText, v)
	require.NoError(t, err)

	var hashes []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	var leaves [][]byte
	for i := int64(0); i < cp.Size; i++ {
		var b []byte
		require.NoError(t, c.Do(ctx, http.MethodGet, fmt.Sprintf("/v1/log/entries/%d", i), nil, nil, &b))
		leaves = append(leaves, b)
		hs, err := tlog.StoredHashes(i, b, hr)
		require.NoError(t, err)
		hashes = append(hashes, hs...)
	}
	root, err := tlog.TreeHash(cp.Size, hr)
	require.NoError(t, err)
	require.Equal(t, cp.Hash, root, "rebuilt root differs from the signed checkpoint")

	for _, i := range []int64{0, cp.Size / 2, cp.Size - 1} {
		var p apiv1.InclusionProof
		require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/log/proof/inclusion", url.Values{"index": {fmt.Sprint(i)}}, nil, &p))
		var proof tlog.RecordProof
		for _, h := range p.Hashes {
			x, err := tlog.ParseHash(h)
			require.NoError(t, err)
			proof = append(proof, x)
		}
		require.NoError(t, tlog.CheckRecord(proof, cp.Size, cp.Hash, i, tlog.RecordHash(leaves[i])))
	}
	if cp.Size > 1 {
		old := cp.Size / 2
		oldRoot, err := tlog.TreeHash(old, hr)
		require.NoError(t, err)
		var p apiv1.ConsistencyProof
		require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/log/proof/consistency", url.Values{"from": {fmt.Sprint(old)}}, nil, &p))
		var proof tlog.TreeProof
		for _, h := range p.Hashes {
			x, _ := tlog.ParseHash(h)
			proof = append(proof, x)
		}
		require.NoError(t, tlog.CheckTree(proof, cp.Size, cp.Hash, old, oldRoot))
	}
	// Every agent's records form an unbroken chain under its enrolled keys,
	// and every key event verifies under the enrollment authority.
	_, enrollPub, err := checkpoint.PublicKey(strings.Split(strings.TrimSpace(string(pub)), "\n")[1])
	require.NoError(t, err)
	chains := map[string]*chain.Checker{}
	for i, leaf := range leaves {
		env, err := dsse.Parse(leaf)
		require.NoError(t, err)
		if env.PayloadType == evidence.KeyEventPayloadType {
			ev, err := evidence.OpenKeyEvent(env, enrollPub)
			require.NoError(t, err, "entry %d", i)
			switch ev.Kind {
			case evidence.Enroll:
				chains[ev.AgentID] = chain.NewChecker(ev.AgentID, []chain.Key{{Public: ev.PublicKey, KeySpan: evidence.KeySpan{From: 1}}}, chain.Head{Digest: evidence.Digest(env.Payload)})
			case evidence.Rotate:
				chains[ev.AgentID].Rotate(ev.FromSeq, ev.PublicKey)
			}
			continue
		}
		rec, err := evidence.ParseRecord(env.Payload)
		require.NoError(t, err)
		chains[rec.Predicate.AgentID].Add(i, env)
	}
	for id, c := range chains {
		r := c.Finish()
		require.True(t, r.OK(), "agent %s: %v", id, r.Err())
	}
	return cp.Size
}

// rawPost sends body to /v1/evidence byte for byte, as a freshly enrolled
// agent, and returns the status and error message.
func rawPost(t *testing.T, s *server, body string) (int, string) {
	t.Helper()
	a := s.enrol(s.token("enroll", apiv1.TokenRequest{}), "raw")
	pem, err := os.ReadFile(s.CA)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequest(http.MethodPost, s.URL+"/v1/evidence", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+a.enroll.Credential)
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var ir apiv1.IngestResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ir), "every ingest answer is an IngestResponse")
	require.NotNil(t, ir.Error)
	return resp.StatusCode, ir.Error.Message
}

func TestConcurrentAgents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s := startServer(t, backend, "", "")
		enrollTok := s.token("enroll", apiv1.TokenRequest{})
		const agents, batches, perBatch = 8, 5, 20
		var wg sync.WaitGroup
		errs := make(chan error, agents)
		for i := 0; i < agents; i++ {
			a := s.enrol(enrollTok, fmt.Sprintf("host-%d", i))
			wg.Add(1)
			go func() {
				defer wg.Done()
				at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
				for b := 0; b < batches; b++ {
					var envs []json.RawMessage
					for r := 0; r < perBatch; r++ {
						at = at.Add(time.Minute)
						envs = append(envs, a.record(at, map[string]evidence.Status{sysVol: evidence.Pass, sshPw: evidence.Fail}))
					}
					if _, err := a.ship(envs...); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, int64(agents+agents*batches*perBatch), verifyLog(t, s))
	})
}

// Two replicas on one PostgreSQL database, ingesting at once, keep one
// consistent log.
func TestTwoReplicasOneDatabase(t *testing.T) {
	if os.Getenv("ANNEXA_TEST_POSTGRES") == "" {
		t.Skip("needs ANNEXA_TEST_POSTGRES (make test starts one)")
	}
	db := freshDatabase(t)
	s1 := startServer(t, "postgres", "", db)
	// The second replica shares the keys; its own TLS certificate is fine.
	d2 := t.TempDir()
	for _, f := range []string{"enroll.key", "log.key"} {
		b, err := os.ReadFile(filepath.Join(s1.Data, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(d2, f), b, 0o600))
	}
	require.NoError(t, os.WriteFile(filepath.Join(d2, "admin.token"), []byte(s1.Admin), 0o600))
	s2 := startServer(t, "postgres", d2, db)

	enrollTok := s1.token("enroll", apiv1.TokenRequest{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 6; i++ {
		srv := s1
		if i%2 == 1 {
			srv = s2
		}
		a := srv.enrol(enrollTok, fmt.Sprintf("h%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			for b := 0; b < 5; b++ {
				var envs []json.RawMessage
				for r := 0; r < 10; r++ {
					at = at.Add(time.Minute)
					envs = append(envs, a.record(at, map[string]evidence.Status{sysVol: evidence.Pass}))
				}
				if _, err := a.ship(envs...); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, int64(6+6*5*10), verifyLog(t, s1))
	require.Equal(t, int64(6+6*5*10), verifyLog(t, s2))
	// Each replica's view of the fleet includes what the other ingested,
	// and keeps up as more arrives.
	for _, srv := range []*server{s1, s2} {
		var ctl apiv1.ControlDetail
		require.NoError(t, srv.client(srv.Admin).Do(context.Background(), http.MethodGet, "/v1/controls/8.24", nil, nil, &ctl))
		require.Equal(t, 6, ctl.Assets)
	}
	late := s2.enrol(enrollTok, "late")
	_, err := late.ship(late.record(time.Now(), map[string]evidence.Status{sysVol: evidence.Fail}))
	require.NoError(t, err)
	var ctl apiv1.ControlDetail
	require.NoError(t, s1.client(s1.Admin).Do(context.Background(), http.MethodGet, "/v1/controls/8.24", nil, nil, &ctl))
	require.Equal(t, 7, ctl.Assets)
	require.Equal(t, 1, ctl.Failing)
	// Both replicas' incremental counts agree, control by control.
	var c1, c2 apiv1.ControlsResponse
	require.NoError(t, s1.client(s1.Admin).Do(context.Background(), http.MethodGet, "/v1/controls", nil, nil, &c1))
	require.NoError(t, s2.client(s2.Admin).Do(context.Background(), http.MethodGet, "/v1/controls", nil, nil, &c2))
	require.Equal(t, c1.Controls, c2.Controls)
	require.Equal(t, c1.Covered, c2.Covered)

	// A replica with other keys is refused: two keys signing one log would
	// make both worthless.
	d3 := t.TempDir()
	bad := &server{t: t, Data: d3, DB: db, addr: freePort(t)}
	bad.args = []string{"serve", "--listen", bad.addr, "--data", d3, "--database", db, "--origin", "annexa.test/log"}
	out, err := execOut(bin("annexa-server"), bad.args...)
	require.Error(t, err)
	require.Contains(t, out, "belongs to a server with log_key")
}

// Graceful shutdown loses nothing acknowledged: records acknowledged before
// SIGTERM are all there after a restart.
func TestGracefulShutdownKeepsAcknowledged(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	a := s.enrol(s.token("enroll", apiv1.TokenRequest{}), "h")
	acked := make(chan uint64, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		pending := []json.RawMessage{}
		for i := 0; i < 400; i++ {
			at = at.Add(time.Second)
			pending = append(pending, a.record(at, map[string]evidence.Status{sysVol: evidence.Pass}))
			if len(pending) < 10 {
				continue
			}
			resp, err := a.ship(pending...)
			if err != nil {
				return
			}
			acked <- resp.NextSeq - 1
			pending = nil
		}
	}()
	// Stop while the agent ships: once a batch is acknowledged.
	last := <-acked
	s.stop()
	<-done
	close(acked)
	for n := range acked {
		last = n
	}
	require.Positive(t, last, "nothing was acknowledged before the stop")
	s.start()
	var hd apiv1.HostDetail
	require.NoError(t, s.client(s.Admin).Do(context.Background(), http.MethodGet, "/v1/hosts/"+a.ID, nil, nil, &hd))
	require.GreaterOrEqual(t, hd.LastSeq, last)
	verifyLog(t, s)
}

// Slow uploads stall nobody: the body is read, at a minimum pace, before
// an ingest slot is taken, so uploads trickling at a byte a second (the
// probe's 64, from one credential) leave every other agent's ingest
// untouched; one credential has one batch in flight at a time, and a
// trickle is cut once the grace period has passed.
func TestSlowUploadsDoNotStallIngest(t *testing.T) {
	s := startServer(t, "sqlite", "", "", "--max-inflight", "2", "--upload-grace", "2s")
	enrollTok := s.token("enroll", apiv1.TokenRequest{})
	slow := s.enrol(enrollTok, "slow")
	pem, err := os.ReadFile(s.CA)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	statuses := make(chan int, 64)
	var writers []*io.PipeWriter
	for i := 0; i < 64; i++ {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		req, err := http.NewRequest(http.MethodPost, s.URL+"/v1/evidence", pr)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+slow.enroll.Credential)
		go func() {
			resp, err := hc.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
		go func() {
			for j := 0; j < 20; j++ { // a byte a second, for longer than the grace
				if _, err := pw.Write([]byte(" ")); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
		}()
	}
	defer func() {
		for _, pw := range writers {
			pw.Close()
		}
	}()

	// Meanwhile every other agent ships as usual.
	for i := 0; i < 5; i++ {
		a := s.enrol(enrollTok, fmt.Sprintf("honest-%d", i))
		start := time.Now()
		resp, err := a.ship(a.record(time.Now(), map[string]evidence.Status{sysVol: evidence.Pass}))
		require.NoError(t, err)
		require.Equal(t, 1, resp.Accepted)
		t.Logf("honest agent %d acknowledged in %s while 64 uploads trickle", i, time.Since(start).Round(time.Millisecond))
	}

	// 63 of the slow credential's uploads were turned away at once (one
	// batch per agent); the one read is cut after the grace period.
	counts := map[int]int{}
	for i := 0; i < 64; i++ {
		select {
		case st := <-statuses:
			counts[st]++
		case <-time.After(30 * time.Second):
			t.Fatalf("uploads still open after 30s: %v", counts)
		}
	}
	require.Equal(t, 63, counts[429], "%v", counts)
	require.Equal(t, 1, counts[408], "%v", counts)
}

func TestMetricsAndHealth(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	a := s.enrol(s.token("enroll", apiv1.TokenRequest{}), "h")
	_, err := a.ship(a.record(time.Now(), map[string]evidence.Status{sysVol: evidence.Pass}))
	require.NoError(t, err)
	_, _ = s.client("agt-x.y").Ingest(context.Background(), []json.RawMessage{json.RawMessage(`{}`)})
	var b []byte
	require.NoError(t, s.client("").Do(context.Background(), http.MethodGet, "/metrics", nil, nil, &b))
	require.Contains(t, string(b), "annexa_ingest_records_total 1")
	require.Contains(t, string(b), `annexa_ingest_rejects_total{reason="unauthenticated"} 1`)
	require.Contains(t, string(b), "annexa_ingest_batch_seconds_bucket")
	require.NoError(t, s.client("").Do(context.Background(), http.MethodGet, "/healthz", nil, nil, nil))
}

// A record repeated inside one batch is stored once; a different record at
// the same seq inside one batch is a fork.
func TestDuplicatesWithinBatch(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	a := s.enrol(s.token("enroll", apiv1.TokenRequest{}), "h")
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	r1 := a.record(at, map[string]evidence.Status{sysVol: evidence.Pass})
	r2 := a.record(at.Add(time.Second), map[string]evidence.Status{sysVol: evidence.Pass})
	resp, err := a.ship(r1, r1, r2, r2)
	require.NoError(t, err)
	require.Equal(t, 2, resp.Accepted)
	require.Equal(t, 2, resp.Duplicates)
	require.Equal(t, uint64(3), resp.NextSeq)

	fork := &simAgent{t: t, ID: a.ID, key: a.key}
	fork.w, _ = chain.NewWriter(a.ID, a.key, a.w.Head())
	r3 := a.record(at.Add(2*time.Second), map[string]evidence.Status{sysVol: evidence.Pass})
	f3 := fork.record(at.Add(3*time.Second), map[string]evidence.Status{sysVol: evidence.Fail})
	resp, err = a.ship(r3, f3)
	e := apiErr(t, err)
	require.Equal(t, apiv1.CodeFork, e.Body.Code)
	require.Equal(t, 1, resp.Accepted, "the record before the fork is kept")
	require.Equal(t, int64(1+3), verifyLog(t, s))
}

// Staleness follows each check's own freshness window from the mapping:
// inventory results stay current for 8 days, sshd's for the default 26h.
func TestPerCheckFreshness(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	a := s.enrol(s.token("enroll", apiv1.TokenRequest{}), "h")
	_, err := a.ship(a.record(time.Now().Add(-48*time.Hour), map[string]evidence.Status{"inventory.host": evidence.Pass, "ssh.root_login": evidence.Pass}))
	require.NoError(t, err)
	var hd apiv1.HostDetail
	require.NoError(t, s.client(s.Admin).Do(context.Background(), http.MethodGet, "/v1/hosts/"+a.ID, nil, nil, &hd))
	stale := map[string]bool{}
	for _, r := range hd.Results {
		stale[r.Check] = r.Stale
	}
	require.Equal(t, map[string]bool{"inventory.host": false, "ssh.root_login": true}, stale)
}

// Each binary answers --version and --help.
func TestBinariesVersionAndHelp(t *testing.T) {
	for _, b := range []string{"annexa", "annexa-agent", "annexa-server"} {
		out, err := execOut(bin(b), "--version")
		require.NoError(t, err, out)
		require.True(t, strings.HasPrefix(out, b+" "), out)
		out, err = execOut(bin(b), "--help")
		require.NoError(t, err, out)
		require.Contains(t, out, "Usage:")
	}
	// The plugins too, though only the agent runs them.
	for _, b := range []string{"annexa-plugin-exec", "annexa-plugin-host"} {
		out, err := execOut(bin(b), "--version")
		require.NoError(t, err, out)
		require.True(t, strings.HasPrefix(out, b+" "), out)
	}
}

// History pages through transitions with a cursor.
func TestHistoryPagination(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	a := s.enrol(s.token("enroll", apiv1.TokenRequest{}), "h")
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var envs []json.RawMessage
	for i := 0; i < 5; i++ {
		st := evidence.Pass
		if i%2 == 1 {
			st = evidence.Fail
		}
		envs = append(envs, a.record(at.Add(time.Duration(i)*time.Hour), map[string]evidence.Status{sysVol: st}))
	}
	_, err := a.ship(envs...)
	require.NoError(t, err)
	var seen []apiv1.Transition
	v := url.Values{"limit": {"2"}}
	for {
		var p apiv1.Page[apiv1.Transition]
		require.NoError(t, s.client(s.Admin).Do(context.Background(), http.MethodGet, "/v1/history", v, nil, &p))
		seen = append(seen, p.Items...)
		if p.Next == "" {
			break
		}
		v.Set("cursor", p.Next)
	}
	require.Len(t, seen, 5)
	for i := 1; i < len(seen); i++ {
		require.False(t, seen[i].At.Before(seen[i-1].At))
	}
	out, err := s.cli(s.Admin, "history", "-o", "csv")
	require.NoError(t, err, out)
	require.Equal(t, 6, strings.Count(out, "\n"), out)
}
