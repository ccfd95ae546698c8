package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
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

// The ISMS scope: set by an admin as a selector, read by anyone with a
// read token, and asked for with ?in_scope=true on controls, hosts, the
// SoA and exports; the bundle's summary is recomputed by the verifier
// under the same selector.
func TestISMSScope(t *testing.T) {
	s := servertest.New(t, server.Config{})
	ctx := context.Background()
	admin := s.Client(s.Admin)
	now := time.Now().UTC()
	enrol := func(name string, labels map[string]string, st evidence.Status) *servertest.Agent {
		a := s.Enrol(s.Token(server.RoleEnroll, apiv1.TokenRequest{Labels: labels}), name)
		_, err := a.Ship(a.Record(now, map[string]evidence.Status{"disk_encryption.system_volume": st}))
		require.NoError(t, err)
		return a
	}
	enrol("prod-it", map[string]string{"env": "prod", "team": "it"}, evidence.Pass)
	enrol("prod-lab", map[string]string{"env": "prod", "team": "lab"}, evidence.Fail)
	enrol("dev", map[string]string{"env": "dev"}, evidence.Fail)

	var sc apiv1.Scope
	require.NoError(t, admin.Do(ctx, http.MethodGet, "/v1/scope", nil, nil, &sc))
	assert.Empty(t, sc.Selector)
	assert.Equal(t, 3, sc.Agents, "no scope: everything")

	err := admin.Do(ctx, http.MethodPut, "/v1/scope", nil, apiv1.Scope{Selector: "env"}, nil)
	require.Error(t, err)
	require.NoError(t, admin.Do(ctx, http.MethodPut, "/v1/scope", nil, apiv1.Scope{Selector: "team!=lab, env=prod"}, &sc))
	assert.Equal(t, "env=prod,team!=lab", sc.Selector)
	assert.Equal(t, 1, sc.Agents)
	analyst := s.Client(s.Token(server.RoleAnalyst, apiv1.TokenRequest{}))
	require.Error(t, analyst.Do(ctx, http.MethodPut, "/v1/scope", nil, apiv1.Scope{Selector: ""}, nil), "only an admin sets it")

	in := url.Values{"in_scope": {"true"}}
	var all, scoped apiv1.ControlsResponse
	require.NoError(t, analyst.Do(ctx, http.MethodGet, "/v1/controls", nil, nil, &all))
	require.NoError(t, analyst.Do(ctx, http.MethodGet, "/v1/controls", in, nil, &scoped))
	count := func(r apiv1.ControlsResponse, id string) apiv1.ControlSummary {
		for _, c := range r.Controls {
			if c.ID == id {
				return c
			}
		}
		return apiv1.ControlSummary{}
	}
	assert.Equal(t, 3, count(all, "8.24").Assets)
	assert.Equal(t, 1, count(scoped, "8.24").Assets)
	assert.Equal(t, 0, count(scoped, "8.24").Failing)
	var detail apiv1.ControlDetail
	require.NoError(t, analyst.Do(ctx, http.MethodGet, "/v1/controls/8.24", in, nil, &detail))
	assert.Equal(t, 1, detail.Assets)
	var hosts apiv1.Page[apiv1.Host]
	require.NoError(t, analyst.Do(ctx, http.MethodGet, "/v1/hosts", in, nil, &hosts))
	require.Len(t, hosts.Items, 1)
	assert.Equal(t, "prod-it", hosts.Items[0].Hostname)
	var soa apiv1.SoAResponse
	require.NoError(t, analyst.Do(ctx, http.MethodGet, "/v1/soa", in, nil, &soa))
	for _, l := range soa.Controls {
		if l.ID == "8.24" {
			assert.Equal(t, 1, l.Evidence.Assets)
		}
	}
	require.Error(t, analyst.Do(ctx, http.MethodGet, "/v1/controls", url.Values{"in_scope": {"maybe"}}, nil, nil))

	// The export in scope: the summary covers the scope's assets, the
	// verifier recomputes it under the same selector, and soa.json names it.
	var buf bytes.Buffer
	sc2, err := s.ExportScope(ctx, url.Values{"from": {now.Add(-time.Hour).Format(time.RFC3339)}, "to": {now.Add(time.Hour).Format(time.RFC3339)}, "in_scope": {"true"}})
	require.NoError(t, err)
	assert.Equal(t, "env=prod,team!=lab", sc2.Selector)
	require.NoError(t, s.Export(ctx, &buf, sc2))
	var sum bundle.Summary
	require.NoError(t, json.Unmarshal(readBundleFile(t, buf.Bytes(), bundle.FileSummary), &sum))
	for _, c := range sum.Controls {
		if c.Control == "8.24" {
			assert.Len(t, c.Assets, 1)
		}
	}
	var bsoa bundle.SoA
	require.NoError(t, json.Unmarshal(readBundleFile(t, buf.Bytes(), bundle.FileSoA), &bsoa))
	assert.Equal(t, "env=prod,team!=lab", bsoa.Scope)
	cat, err := configs.Catalog()
	require.NoError(t, err)
	keys, err := bundle.ParseServerKeys([]byte(s.Keys().ServerPub()))
	require.NoError(t, err)
	rep := bundle.Verify(bytes.NewReader(buf.Bytes()), keys, cat)
	require.True(t, rep.OK, "%v", rep.Problems)
}
