package server_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/configs"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/bundle"
	"github.com/annexa-dev/annexa/server"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/servertest"
)

// The API and the auditor's bundle roll the same results up the same way:
// the same states fed through both give the same status for every control
// and asset, stale and not-applicable results included.
func TestRollupAgreesWithBundle(t *testing.T) {
	now := t0
	s := servertest.New(t, server.Config{Now: func() time.Time { return now }})
	ship := func(a *servertest.Agent, at time.Time, rs map[string]evidence.Status) {
		t.Helper()
		_, err := a.Ship(a.Record(at, rs))
		require.NoError(t, err)
	}
	a, b, c := s.Enrol("", "a"), s.Enrol("", "b"), s.Enrol("", "c")
	ship(a, now, map[string]evidence.Status{
		"disk_encryption.system_volume": evidence.Pass, "patch_level.pending_updates": evidence.Fail,
		"firewall.enabled": evidence.Error, "screen_lock.idle_timeout": evidence.NotApplicable,
	})
	ship(b, now.Add(-72*time.Hour), map[string]evidence.Status{ // stale by now
		"disk_encryption.system_volume": evidence.Pass, "firewall.enabled": evidence.Pass,
	})
	ship(c, now, map[string]evidence.Status{
		"disk_encryption.system_volume": evidence.Fail, "disk_encryption.swap": evidence.Pass,
		"screen_lock.idle_timeout": evidence.Pass, "firewall.enabled": evidence.NotApplicable,
	})
	// A later result replaces an earlier one for the same check.
	ship(c, now.Add(time.Minute), map[string]evidence.Status{"disk_encryption.system_volume": evidence.Pass})
	now = now.Add(2 * time.Minute)

	api := s.Client(s.Admin)
	var controls apiv1.ControlsResponse
	require.NoError(t, api.Do(context.Background(), http.MethodGet, "/v1/controls", nil, nil, &controls))

	var buf bytes.Buffer
	scope := bundle.Scope{From: t0.Add(-24 * time.Hour), To: now, Freshness: (26 * time.Hour).String()}
	require.NoError(t, s.Export(context.Background(), &buf, scope))
	sum := readSummary(t, buf.Bytes())

	keys, err := bundle.ParseServerKeys([]byte(s.Keys().ServerPub()))
	require.NoError(t, err)
	cat, err := configs.Catalog()
	require.NoError(t, err)
	rep := bundle.Verify(bytes.NewReader(buf.Bytes()), keys, cat)
	require.True(t, rep.OK, "%v", rep.Problems)

	inBundle := map[string]bundle.ControlSummary{}
	for _, cs := range sum.Controls {
		inBundle[cs.Control] = cs
	}
	compared := 0
	for _, cs := range controls.Controls {
		bs, ok := inBundle[cs.ID]
		if !cs.Covered {
			assert.False(t, ok, "control %s: the bundle has assets the API does not", cs.ID)
			continue
		}
		require.True(t, ok, "control %s is covered in the API but not in the bundle", cs.ID)
		assert.Equal(t, [4]int{cs.Passing, cs.Failing, cs.Error, cs.Stale}, [4]int{bs.Passing, bs.Failing, bs.Error, bs.Stale}, "control %s: passing, failing, error, stale", cs.ID)
		assert.Len(t, bs.Assets, cs.Assets, "control %s: assets", cs.ID)

		var d apiv1.ControlDetail
		require.NoError(t, api.Do(context.Background(), http.MethodGet, "/v1/controls/"+cs.ID, nil, nil, &d))
		apiStatus := map[string]string{}
		for _, ac := range d.AssetsDetail {
			apiStatus[ac.Asset] = ac.Status
		}
		for _, as := range bs.Assets {
			assert.Equal(t, apiStatus[as.Asset], as.Status, "control %s, asset %s", cs.ID, as.Asset)
		}
		compared++
	}
	assert.GreaterOrEqual(t, compared, 5, "the fixture covers several controls")
	// The fixture exercises every status.
	c824 := inBundle["8.24"]
	assert.Equal(t, 2, c824.Passing, "a's pass and c's later pass")
	assert.Equal(t, 1, c824.Stale, "b's three-day-old pass")
	c820 := inBundle["8.20"]
	assert.Equal(t, 1, c820.Error)
	assert.Equal(t, 1, c820.Stale)
}

func readSummary(t *testing.T, tgz []byte) *bundle.Summary {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		require.NoError(t, err, "summary.json not in the bundle")
		if h.Name != bundle.FileSummary {
			continue
		}
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		var s bundle.Summary
		require.NoError(t, json.Unmarshal(b, &s))
		return &s
	}
}
