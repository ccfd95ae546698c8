package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/annexa-dev/annexa/configs"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/bundle"
	"github.com/annexa-dev/annexa/evidence/catalog"
	"github.com/annexa-dev/annexa/evidence/checkpoint"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/server/apiv1"
)

type bundleFile struct {
	name string
	data []byte
}

func unpack(t *testing.T, b []byte) []bundleFile {
	gz, err := gzip.NewReader(bytes.NewReader(b))
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	var out []bundleFile
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		d, err := io.ReadAll(tr)
		require.NoError(t, err)
		out = append(out, bundleFile{h.Name, d})
	}
}

func pack(t *testing.T, files []bundleFile) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}))
		_, err := tw.Write(f.data)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	return buf.Bytes()
}

func file(files []bundleFile, name string) *bundleFile {
	for i := range files {
		if files[i].name == name {
			return &files[i]
		}
	}
	return nil
}

// period builds a server history: before the period, inside it (with a key
// rotation and a revocation), and after it. It returns the period bounds.
func period(t *testing.T, s *server) (time.Time, time.Time, []*simAgent) {
	tok := s.token("enroll", apiv1.TokenRequest{Labels: map[string]string{"team": "finance"}})
	a, b, c := s.enrol(tok, "a"), s.enrol(tok, "b"), s.enrol(tok, "c")
	at := time.Now().Add(-time.Hour).UTC()
	ship := func(x *simAgent, n int, st evidence.Status) {
		var envs []json.RawMessage
		for i := 0; i < n; i++ {
			at = at.Add(time.Second)
			envs = append(envs, x.record(at, map[string]evidence.Status{sysVol: st, sshPw: evidence.Pass}))
		}
		_, err := x.ship(envs...)
		require.NoError(t, err)
	}
	for _, x := range []*simAgent{a, b, c} {
		ship(x, 3, evidence.Pass)
	}
	time.Sleep(20 * time.Millisecond)
	from := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	ship(a, 4, evidence.Fail)
	ship(b, 2, evidence.Pass)
	// b rotates its key inside the period.
	_, next, _ := ed25519.GenerateKey(nil)
	rot, err := b.w.Rotate(evidence.HostAsset(b.ID), next, time.Now())
	require.NoError(t, err)
	_, err = b.ship(rot.JSON)
	require.NoError(t, err)
	ship(b, 3, evidence.Pass)
	ship(c, 2, evidence.Error)
	_, err = s.cli(s.Admin, "agent", "revoke", c.ID)
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond)
	to := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	ship(a, 2, evidence.Fail)
	ship(b, 2, evidence.Pass)
	return from, to, []*simAgent{a, b, c}
}

func exportBundle(t *testing.T, s *server, from, to time.Time, extra ...string) []byte {
	auditor := s.token("auditor", apiv1.TokenRequest{})
	out := filepath.Join(t.TempDir(), "bundle.tar.gz")
	args := append([]string{"export", "--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano), "--out", out}, extra...)
	o, err := s.cli(auditor, args...)
	require.NoError(t, err, o)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	return b
}

func verifyBytes(t *testing.T, s *server, b []byte) *bundle.Report {
	pub, err := os.ReadFile(filepath.Join(s.Data, "server.pub"))
	require.NoError(t, err)
	keys, err := bundle.ParseServerKeys(pub)
	require.NoError(t, err)
	cat, err := configs.Catalog()
	require.NoError(t, err)
	return bundle.Verify(bytes.NewReader(b), keys, cat)
}

func TestBundleCleanVerifies(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	from, to, agents := period(t, s)
	b := exportBundle(t, s, from, to)
	path := filepath.Join(t.TempDir(), "b.tar.gz")
	require.NoError(t, os.WriteFile(path, b, 0o644))

	// The CLI, offline, as an auditor runs it.
	out, err := execOut(bin("annexa"), "verify", "--server-key", filepath.Join(s.Data, "server.pub"), path)
	require.NoError(t, err, out)
	require.Contains(t, out, "VERIFIED")
	require.Contains(t, out, "entries:  14 (12 records from 3 agents, 2 key events)")
	out, err = execOut(bin("annexa"), "verify", "--server-key", filepath.Join(s.Data, "server.pub"), path, "-o", "json")
	require.NoError(t, err, out)
	var rep bundle.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.True(t, rep.OK)

	// The summary says what the records say: a fails 8.24 in the period.
	files := unpack(t, b)
	var sum bundle.Summary
	require.NoError(t, json.Unmarshal(file(files, bundle.FileSummary).data, &sum))
	var found bool
	for _, c := range sum.Controls {
		if c.Control == "8.24" {
			found = true
			require.Equal(t, 1, c.Failing)
			require.Equal(t, 1, c.Passing) // b
			require.Equal(t, 1, c.Error)   // c
		}
	}
	require.True(t, found)
	// A control filter narrows the report, not the proof.
	b2 := exportBundle(t, s, from, to, "--control", "8.5", "--label", "team=finance")
	r2 := verifyBytes(t, s, b2)
	require.True(t, r2.OK, "%v", r2.Problems)
	require.Equal(t, int64(14), r2.Entries)
	var sum2 bundle.Summary
	require.NoError(t, json.Unmarshal(file(unpack(t, b2), bundle.FileSummary).data, &sum2))
	require.Len(t, sum2.Controls, 1)
	require.Equal(t, "8.5", sum2.Controls[0].Control)
	_ = agents
}

func TestBundleOSCALValidates(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	from, to, _ := period(t, s)
	files := unpack(t, exportBundle(t, s, from, to))
	validateOSCAL(t, file(files, bundle.FileOSCAL).data)
}

func problems(r *bundle.Report) string {
	var b strings.Builder
	for _, p := range r.Problems {
		b.WriteString(p.String())
		b.WriteString("\n")
	}
	return b.String()
}

// lines splits evidence.jsonl.
func lines(f *bundleFile) [][]byte {
	return bytes.Split(bytes.TrimSuffix(f.data, []byte("\n")), []byte("\n"))
}

func join(ls [][]byte) []byte { return append(bytes.Join(ls, []byte("\n")), '\n') }

// recordLine finds the n-th record line (not a key event) of an agent.
func recordLine(t *testing.T, ls [][]byte, agent string, n int) int {
	for i, l := range ls {
		env, err := dsse.Parse(l)
		require.NoError(t, err)
		if env.PayloadType != evidence.PayloadType {
			continue
		}
		rec, err := evidence.ParseRecord(env.Payload)
		require.NoError(t, err)
		if rec.Predicate.AgentID == agent {
			if n == 0 {
				return i
			}
			n--
		}
	}
	t.Fatalf("no record %d of %s", n, agent)
	return -1
}

func TestBundleTamperMatrix(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	from, to, agents := period(t, s)
	clean := exportBundle(t, s, from, to)
	require.True(t, verifyBytes(t, s, clean).OK)
	a, b := agents[0], agents[1]

	_, otherSigner, _ := ed25519.GenerateKey(nil)
	_ = otherSigner
	cases := []struct {
		name   string
		mutate func(files []bundleFile) []bundleFile
		want   []string
	}{
		{"one byte of one payload", func(fs []bundleFile) []bundleFile {
			f := file(fs, bundle.FileEvidence)
			ls := lines(f)
			i := recordLine(t, ls, a.ID, 1)
			env, _ := dsse.Parse(ls[i])
			env.Payload = bytes.Replace(env.Payload, []byte(`"status":"fail"`), []byte(`"status":"pass"`), 1)
			ls[i], _ = json.Marshal(env)
			f.data = join(ls)
			return fs
		}, []string{"[signatures]", "[root]", "evidence.jsonl: sha256"}},
		{"one signature", func(fs []bundleFile) []bundleFile {
			f := file(fs, bundle.FileEvidence)
			ls := lines(f)
			i := recordLine(t, ls, a.ID, 0)
			env, _ := dsse.Parse(ls[i])
			env.Signatures[0].Sig[3] ^= 1
			ls[i], _ = json.Marshal(env)
			f.data = join(ls)
			return fs
		}, []string{"signature: no valid signature", "[root]"}},
		{"a record removed", func(fs []bundleFile) []bundleFile {
			f := file(fs, bundle.FileEvidence)
			ls := lines(f)
			i := recordLine(t, ls, a.ID, 1)
			f.data = join(append(ls[:i:i], ls[i+1:]...))
			return fs
		}, []string{"[root]", "gap"}},
		{"two records swapped", func(fs []bundleFile) []bundleFile {
			f := file(fs, bundle.FileEvidence)
			ls := lines(f)
			i, j := recordLine(t, ls, a.ID, 0), recordLine(t, ls, a.ID, 1)
			ls[i], ls[j] = ls[j], ls[i]
			f.data = join(ls)
			return fs
		}, []string{"[root]", "reorder"}},
		{"a record replayed", func(fs []bundleFile) []bundleFile {
			f := file(fs, bundle.FileEvidence)
			ls := lines(f)
			i := recordLine(t, ls, a.ID, 0)
			f.data = join(append(ls, ls[i]))
			return fs
		}, []string{"[root]", "replay"}},
		{"a record from another agent spliced in", func(fs []bundleFile) []bundleFile {
			f := file(fs, bundle.FileEvidence)
			ls := lines(f)
			var bds []bundle.Boundary
			_ = json.Unmarshal(file(fs, bundle.FileBoundaries).data, &bds)
			for _, bd := range bds {
				if bd.AgentID == b.ID && bd.After != nil {
					ls = append(ls, bd.After.Envelope) // b's record from after the period
				}
			}
			f.data = join(ls)
			return fs
		}, []string{"[root]", "cut tail"}},
		{"a key swapped in keys.json", func(fs []bundleFile) []bundleFile {
			f := file(fs, bundle.FileKeys)
			var ks []bundle.AgentKeys
			_ = json.Unmarshal(f.data, &ks)
			pub, _, _ := ed25519.GenerateKey(nil)
			ks[0].Keys[0].PublicKey = pub
			f.data, _ = json.MarshalIndent(ks, "", "  ")
			return fs
		}, []string{"[keys]", "keys.json differs from what the log's key events say"}},
		{"a checkpoint re-signed with another key", func(fs []bundleFile) []bundleFile {
			f := file(fs, bundle.FileCheckpointEnd)
			n, _ := note.Open(f.data, note.VerifierList(mustVerifier(t, s)))
			skey, _, _ := note.GenerateKey(nil, "annexa.test/log")
			signer, _ := note.NewSigner(skey)
			f.data, _ = note.Sign(&note.Note{Text: n.Text}, signer)
			return fs
		}, []string{"[checkpoints]", "not signed by the pinned log key"}},
		{"a proof altered", func(fs []bundleFile) []bundleFile {
			f := file(fs, bundle.FileProof)
			var p bundle.Proof
			_ = json.Unmarshal(f.data, &p)
			p.Consistency[0] = strings.Repeat("A", 43) + "="
			f.data, _ = json.Marshal(p)
			return fs
		}, []string{"[proof]", "consistency proof"}},
		{"summary edited to hide a failure", func(fs []bundleFile) []bundleFile {
			f := file(fs, bundle.FileSummary)
			f.data = bytes.Replace(f.data, []byte(`"status": "failing"`), []byte(`"status": "passing"`), 1)
			return fs
		}, []string{"[summary]", "summary.json", "differs from the summary recomputed"}},
		{"OSCAL edited to hide a failure", func(fs []bundleFile) []bundleFile {
			f := file(fs, bundle.FileOSCAL)
			f.data = bytes.Replace(f.data, []byte(`"not-satisfied"`), []byte(`"satisfied"`), 1)
			return fs
		}, []string{"[summary]", "oscal-assessment-results.json", "differs from the OSCAL document recomputed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := pack(t, tc.mutate(unpack(t, clean)))
			r := verifyBytes(t, s, b)
			require.False(t, r.OK)
			got := problems(r)
			for _, w := range tc.want {
				require.Contains(t, got, w)
			}
		})
	}
	t.Run("a truncated tar", func(t *testing.T) {
		for _, n := range []int{len(clean) / 3, len(clean) - 40} {
			r := verifyBytes(t, s, clean[:n])
			require.False(t, r.OK)
			require.Contains(t, problems(r), "truncated")
		}
	})
}

func mustVerifier(t *testing.T, s *server) note.Verifier {
	pub, _ := os.ReadFile(filepath.Join(s.Data, "server.pub"))
	v, err := note.NewVerifier(strings.Fields(string(pub))[0])
	require.NoError(t, err)
	return v
}

// The insider holds the server's keys: they drop one agent's record (or
// edit a result) and re-sign every checkpoint, proof and the manifest so
// that everything the server vouches for is consistent. The agents'
// signatures and chains still catch it.
func TestBundleInsiderWithServerKeys(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	_, to, agents := period(t, s)
	// From the log's beginning, so the forger need not fake a start tree.
	clean := exportBundle(t, s, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), to)
	require.True(t, verifyBytes(t, s, clean).OK, problems(verifyBytes(t, s, clean)))
	a := agents[0]
	logKeyFile, err := os.ReadFile(filepath.Join(s.Data, "log.key"))
	require.NoError(t, err)
	skey := strings.Split(string(logKeyFile), "\n")[0]

	forge := func(edit func(ls [][]byte) [][]byte) []byte {
		fs := unpack(t, clean)
		ev := file(fs, bundle.FileEvidence)
		ls := edit(lines(ev))
		ev.data = join(ls)
		fr, _ := bundle.NewFrontier(0, nil)
		for _, l := range ls {
			fr.Append(l)
		}
		root, _ := fr.Root()
		signer, err := note.NewSigner(skey)
		require.NoError(t, err)
		cp, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: signer.Name(), Size: int64(len(ls)), Hash: root}, signer)
		require.NoError(t, err)
		var man bundle.Manifest
		menv, _ := dsse.Parse(file(fs, bundle.FileManifest).data)
		require.NoError(t, json.Unmarshal(menv.Payload, &man))
		// Recompute the summary and OSCAL from the forged entries.
		cat, _ := configs.Catalog()
		m, err := catalog.LoadMapping(bytes.NewReader(file(fs, bundle.FileMapping).data), cat)
		require.NoError(t, err)
		bld := bundle.NewBuilder(man.Scope, m)
		for i, l := range ls {
			env, _ := dsse.Parse(l)
			if env.PayloadType == evidence.PayloadType {
				rec, err := evidence.ParseRecord(env.Payload)
				if err == nil {
					bld.Add(int64(i), rec)
				}
			}
		}
		var ks []bundle.AgentKeys
		_ = json.Unmarshal(file(fs, bundle.FileKeys).data, &ks)
		for _, k := range ks {
			bld.Enrolled(k.AgentID, k.Labels)
		}
		sum, _ := bld.Summary()
		oscal, _ := bundle.OSCAL(sum, man.CreatedAt, man.Origin)
		proof, _ := json.Marshal(bundle.Proof{Start: 0, End: int64(len(ls)), Consistency: []string{}, Frontier: []string{}})
		var out bytes.Buffer
		w := bundle.NewWriter(&out, man.CreatedAt)
		priv, _ := checkpoint.PrivateKey(skey)
		for _, f := range []bundleFile{{bundle.FileMapping, file(fs, bundle.FileMapping).data}, {bundle.FileCheckpointEnd, cp}, {bundle.FileCheckpointLatest, cp},
			{bundle.FileProof, proof}, {bundle.FileKeyEvents, nil}, {bundle.FileBoundaries, []byte("[]")}, {bundle.FileKeys, file(fs, bundle.FileKeys).data},
			{bundle.FileEvidence, ev.data}, {bundle.FileSummary, bundle.EncodeSummary(sum)}, {bundle.FileOSCAL, oscal}} {
			require.NoError(t, w.File(f.name, f.data))
		}
		man.EndSize, man.LatestSize, man.Counts.Entries = int64(len(ls)), int64(len(ls)), int64(len(ls))
		require.NoError(t, w.Finish(man, priv))
		return out.Bytes()
	}

	dropped := forge(func(ls [][]byte) [][]byte {
		i := recordLine(t, ls, a.ID, 4)
		return append(ls[:i:i], ls[i+1:]...)
	})
	r := verifyBytes(t, s, dropped)
	require.False(t, r.OK)
	got := problems(r)
	require.Contains(t, got, "[chains]")
	require.Contains(t, got, "gap")
	require.NotContains(t, got, "[manifest]", "the forger's manifest is consistent")
	require.NotContains(t, got, "[root]", "the forger's checkpoints are consistent")

	edited := forge(func(ls [][]byte) [][]byte {
		i := recordLine(t, ls, a.ID, 4)
		env, _ := dsse.Parse(ls[i])
		var st evidence.Statement
		_ = json.Unmarshal(env.Payload, &st)
		st.Predicate.Results[0].Status = evidence.Pass
		st.Predicate.Results[1].Status = evidence.Pass
		fixed, _ := evidence.NewStatement(evidence.Asset(st.Subject[0].Name), st.Predicate)
		env.Payload, _ = json.Marshal(fixed)
		ls[i], _ = json.Marshal(env)
		return ls
	})
	r = verifyBytes(t, s, edited)
	require.False(t, r.OK)
	require.Contains(t, problems(r), "[signatures]")
	require.Contains(t, problems(r), "no valid signature")
}

// The export endpoint is for auditors and admins.
func TestExportRoles(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	analyst := s.token("analyst", apiv1.TokenRequest{})
	_, err := s.client(analyst).Stream(context.Background(), "/v1/export", url.Values{"from": {"2026-01-01"}, "to": {"2026-02-01"}})
	require.Equal(t, 403, apiErr(t, err).Status)
	err = s.client(s.Admin).Do(context.Background(), http.MethodGet, "/v1/export", url.Values{"from": {"2026-02-01"}, "to": {"2026-01-01"}}, nil, nil)
	require.Equal(t, 400, apiErr(t, err).Status)
}

// A period with nothing in it, and a log with nothing in it, still make
// bundles that verify.
func TestBundleEmptyPeriods(t *testing.T) {
	s := startServer(t, "sqlite", "", "")
	empty := exportBundle(t, s, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2020, 2, 1, 0, 0, 0, 0, time.UTC))
	r := verifyBytes(t, s, empty)
	require.True(t, r.OK, problems(r))
	require.Zero(t, r.Entries)

	period(t, s)
	quiet := exportBundle(t, s, time.Now().Add(time.Hour), time.Now().Add(2*time.Hour))
	r = verifyBytes(t, s, quiet)
	require.True(t, r.OK, problems(r))
	require.Zero(t, r.Entries)
}
