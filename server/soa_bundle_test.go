package server_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/configs"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/bundle"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/server"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/servertest"
)

// readBundleFile returns one file of a bundle.
func readBundleFile(t *testing.T, tgz []byte, name string) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		require.NoError(t, err, "%s not in the bundle", name)
		if h.Name == name {
			b, err := io.ReadAll(tr)
			require.NoError(t, err)
			return b
		}
	}
}

// A bundle carries the Statement of Applicability as it stood at the
// period's end; the offline verifier checks it lists every control and
// reports where it contradicts the verified evidence.
func TestBundleCarriesTheSoAAtThePeriodsEnd(t *testing.T) {
	var clock atomic.Int64
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock.Store(start.UnixNano())
	s := servertest.New(t, server.Config{Now: func() time.Time { return time.Unix(0, clock.Load()).UTC() }})
	admin := s.Client(s.Admin)
	ctx := context.Background()
	put := func(id string, req apiv1.SoARequest) {
		t.Helper()
		require.NoError(t, admin.Do(ctx, http.MethodPut, "/v1/soa/"+id, nil, req, nil))
	}
	put("8.24", apiv1.SoARequest{Status: ptr("implemented"), Owner: ptr("it-ops")})
	put("7.4", apiv1.SoARequest{Applicable: ptr(false), Justification: ptr("fully remote")})
	a, b := s.Enrol("", "a"), s.Enrol("", "b")
	_, err := a.Ship(a.Record(start, map[string]evidence.Status{"disk_encryption.system_volume": evidence.Pass}))
	require.NoError(t, err)
	_, err = b.Ship(b.Record(start, map[string]evidence.Status{"disk_encryption.system_volume": evidence.Fail}))
	require.NoError(t, err)
	// After the period ends, 8.24 is downgraded: the bundle must show it
	// as it stood.
	clock.Store(start.Add(2 * time.Hour).UnixNano())
	put("8.24", apiv1.SoARequest{Status: ptr("planned")})

	var buf bytes.Buffer
	scope := bundle.Scope{From: start.Add(-time.Hour), To: start.Add(time.Hour), Freshness: (26 * time.Hour).String()}
	require.NoError(t, s.Export(ctx, &buf, scope))
	var soa bundle.SoA
	require.NoError(t, json.Unmarshal(readBundleFile(t, buf.Bytes(), bundle.FileSoA), &soa))
	require.Len(t, soa.Controls, 93)
	byID := map[string]bundle.SoALine{}
	for _, l := range soa.Controls {
		byID[l.Control] = l
	}
	assert.Equal(t, "implemented", byID["8.24"].Status, "as at the period's end, not as now")
	assert.Equal(t, "it-ops", byID["8.24"].Owner)
	assert.False(t, byID["7.4"].Applicable)
	assert.False(t, byID["5.1"].Assessed)

	cat, err := configs.Catalog()
	require.NoError(t, err)
	keys, err := bundle.ParseServerKeys([]byte(s.Keys().ServerPub()))
	require.NoError(t, err)
	rep := bundle.Verify(bytes.NewReader(buf.Bytes()), keys, cat)
	require.True(t, rep.OK, "%v", rep.Problems)
	assert.Equal(t, int64(2), rep.SoAChanges, "the period's SoA changes are log entries")
	notes := strings.Join(rep.Notes, "\n")
	assert.Contains(t, notes, "statement of applicability: 8.24 is implemented, yet 1 of 2 assets fail it")
	assert.NotContains(t, notes, "7.4", "excluded and not evidenced: no contradiction")

	// A SoA altered after export breaks the signed manifest.
	tampered := rewriteBundleFile(t, buf.Bytes(), bundle.FileSoA, func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"implemented"`), []byte(`"planned"`), 1)
	})
	rep = bundle.Verify(bytes.NewReader(tampered), keys, cat)
	require.False(t, rep.OK)
	assert.Contains(t, problemsText(rep), bundle.FileSoA)

	// Even the server's own log key cannot rewrite the SoA's history: a
	// re-signed manifest over an edited soa.json disagrees with the
	// changes the log committed to.
	resigned := resignManifest(t, tampered, s.Keys().LogPriv)
	rep = bundle.Verify(bytes.NewReader(resigned), keys, cat)
	require.False(t, rep.OK)
	assert.Contains(t, problemsText(rep), "8.24 differs from its last change logged in the period")
	assert.NotContains(t, problemsText(rep), "sha256", "the manifest itself holds")
}

// resignManifest recomputes manifest.json over the bundle's files and signs
// it with key: what an insider holding the log key could do.
func resignManifest(t *testing.T, tgz []byte, key ed25519.PrivateKey) []byte {
	t.Helper()
	raw := readBundleFile(t, tgz, bundle.FileManifest)
	env, err := dsse.Parse(raw)
	require.NoError(t, err)
	var m bundle.Manifest
	require.NoError(t, json.Unmarshal(env.Payload, &m))
	for name := range m.Files {
		sum := sha256.Sum256(readBundleFile(t, tgz, name))
		m.Files[name] = hex.EncodeToString(sum[:])
	}
	payload, err := json.Marshal(m)
	require.NoError(t, err)
	signed, err := dsse.Sign(key, bundle.ManifestPayloadType, payload)
	require.NoError(t, err)
	b, err := json.Marshal(signed)
	require.NoError(t, err)
	return rewriteBundleFile(t, tgz, bundle.FileManifest, func([]byte) []byte { return b })
}

// The checks of a Statement of Applicability itself.
func TestCheckSoAFindsMalformedStatements(t *testing.T) {
	cat, err := configs.Catalog()
	require.NoError(t, err)
	full := &bundle.SoA{}
	for _, c := range cat.Controls() {
		full.Controls = append(full.Controls, bundle.SoALine{Control: c.ID, Applicable: true})
	}
	problems, _ := bundle.CheckSoA(full, cat, nil, &bundle.Summary{})
	assert.Empty(t, problems)

	broken := &bundle.SoA{Controls: append([]bundle.SoALine(nil), full.Controls[1:]...)}
	broken.Controls = append(broken.Controls, bundle.SoALine{Control: "9.1", Applicable: true},
		bundle.SoALine{Control: "8.2", Applicable: true, Status: "done"},
		bundle.SoALine{Control: "8.3", Assessed: true, Applicable: false})
	problems, _ = bundle.CheckSoA(broken, cat, nil, &bundle.Summary{})
	text := strings.Join(problems, "\n")
	assert.Contains(t, text, "5.1 is missing")
	assert.Contains(t, text, `"9.1" is not an Annex A 2022 control`)
	assert.Contains(t, text, "8.2 is listed twice")
	assert.Contains(t, text, `status "done"`)
	assert.Contains(t, text, "8.3 is excluded without a justification")
}

func problemsText(r *bundle.Report) string {
	var out []string
	for _, p := range r.Problems {
		out = append(out, p.String())
	}
	return strings.Join(out, "\n")
}

// rewriteBundleFile returns the bundle with one file's bytes changed.
func rewriteBundleFile(t *testing.T, tgz []byte, name string, change func([]byte) []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		if h.Name == name {
			b = change(b)
		}
		h.Size = int64(len(b))
		require.NoError(t, tw.WriteHeader(h))
		_, err = tw.Write(b)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	return out.Bytes()
}
