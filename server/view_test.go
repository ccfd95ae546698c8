package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/servertest"
)

// An external auditor's token limited to team=finance sees the finance
// hosts only, on every endpoint and every page; what lies outside is not
// found, and exporting is refused.
func TestLimitedTokenSeesOnlyItsSelector(t *testing.T) {
	s := servertest.New(t, server.Config{PlainHTTP: true})
	ctx := context.Background()
	now := time.Now().UTC()
	enrol := func(name, team string) (*servertest.Agent, int64) {
		a := s.Enrol(s.Token(server.RoleEnroll, apiv1.TokenRequest{Labels: map[string]string{"team": team}}), name)
		resp, err := a.Ship(a.Record(now, map[string]evidence.Status{"disk_encryption.system_volume": evidence.Fail}))
		require.NoError(t, err)
		return a, resp.Receipts[0].Index
	}
	fin, finIdx := enrol("fin-laptop", "finance")
	other, otherIdx := enrol("eng-laptop", "engineering")

	// Only read tokens take a selector; a bad one is refused.
	admin := s.Client(s.Admin)
	for _, req := range []apiv1.TokenRequest{{Role: "admin", Selector: "team=finance"}, {Role: "enroll", Selector: "team=finance"}, {Role: "auditor", Selector: "team"}} {
		require.Error(t, admin.Do(ctx, http.MethodPost, "/v1/tokens", nil, req, nil), "%+v", req)
	}
	tok := s.Token(server.RoleAuditor, apiv1.TokenRequest{Name: "external auditor", Selector: "team=finance"})
	c := s.Client(tok)

	var hosts apiv1.Page[apiv1.Host]
	require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/hosts", nil, nil, &hosts))
	require.Len(t, hosts.Items, 1)
	assert.Equal(t, "fin-laptop", hosts.Items[0].Hostname)
	require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/hosts", url.Values{"q": {"eng"}}, nil, &hosts))
	assert.Empty(t, hosts.Items)

	require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/hosts/"+fin.ID, nil, nil, nil))
	notFound := func(path string, q url.Values) {
		t.Helper()
		err := c.Do(ctx, http.MethodGet, path, q, nil, nil)
		var ce *client.Error
		require.ErrorAs(t, err, &ce, path)
		assert.Equal(t, http.StatusNotFound, ce.Status, path)
	}
	notFound("/v1/hosts/"+other.ID, nil)
	notFound("/v1/agents/"+other.ID+"/keys", nil)
	notFound("/v1/agents/"+other.ID+"/grants", nil)
	notFound("/v1/log/entries/"+strconv.FormatInt(otherIdx, 10), nil)
	notFound("/v1/log/proof/inclusion", url.Values{"index": {strconv.FormatInt(otherIdx, 10)}})
	require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/log/entries/"+strconv.FormatInt(finIdx, 10), nil, nil, new([]byte)))
	require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/agents/"+fin.ID+"/keys", nil, nil, nil))

	var controls apiv1.ControlsResponse
	require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/controls", nil, nil, &controls))
	for _, cs := range controls.Controls {
		if cs.ID == "8.24" {
			assert.Equal(t, 1, cs.Assets)
			assert.Equal(t, 1, cs.Failing)
		}
	}
	var detail apiv1.ControlDetail
	require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/controls/8.24", nil, nil, &detail))
	require.Len(t, detail.AssetsDetail, 1)
	assert.Equal(t, "host:"+fin.ID, detail.AssetsDetail[0].Asset)
	// Asking for the other agent by name gives nothing, not its rows.
	var ev apiv1.Page[apiv1.Result]
	require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/evidence", nil, nil, &ev))
	require.Len(t, ev.Items, 1)
	assert.Equal(t, fin.ID, ev.Items[0].AgentID)
	require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/evidence", url.Values{"agent": {other.ID}}, nil, &ev))
	assert.Empty(t, ev.Items)
	var hist apiv1.Page[apiv1.Transition]
	require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/history", nil, nil, &hist))
	require.Len(t, hist.Items, 1)
	assert.Equal(t, "host:"+fin.ID, hist.Items[0].Asset)
	// Naming the other host's asset or agent gives nothing.
	for _, q := range []url.Values{{"asset": {"host:" + other.ID}}, {"agent": {other.ID}}} {
		require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/history", q, nil, &hist))
		assert.Empty(t, hist.Items, "%v", q)
		require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/evidence", q, nil, &ev))
		assert.Empty(t, ev.Items, "%v", q)
		require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/controls/8.24", q, nil, &detail))
		assert.Empty(t, detail.AssetsDetail, "%v", q)
	}
	var soa apiv1.SoAResponse
	require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/soa", nil, nil, &soa))
	for _, l := range soa.Controls {
		if l.ID == "8.24" {
			assert.Equal(t, 1, l.Evidence.Assets)
		}
	}
	// Another framework's view is the controls' under the same view: 2013's
	// A.10.1.1 is 8.24, which only the finance host reports on here.
	var fw apiv1.FrameworkState
	require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/frameworks/iso27001-2013", nil, nil, &fw))
	assert.Equal(t, "failing", fw.Requirements[39].Status)
	require.Equal(t, "A.10.1.1", fw.Requirements[39].ID)
	// People's attestations are the organisation's: a limited token reads
	// them, and their log entries, like any reader.
	alice, _ := person(t, s, "Alice Martin", "ciso")
	att, err := s.Client("").Attest(ctx, alice, client.Attestation{Controls: []string{"5.1"}, Statement: "Policy approved", ValidFor: 24 * time.Hour}, now)
	require.NoError(t, err)
	var atts apiv1.AttestationsResponse
	require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/attestations", nil, nil, &atts))
	require.Len(t, atts.Attestations, 1)
	require.NoError(t, c.Do(ctx, http.MethodGet, "/v1/log/entries/"+strconv.FormatInt(att.Index, 10), nil, nil, new([]byte)))
	// No export: a bundle holds the whole log of its period.
	err = c.Do(ctx, http.MethodGet, "/v1/export", url.Values{"from": {now.Add(-time.Hour).Format(time.RFC3339)}, "to": {now.Add(time.Hour).Format(time.RFC3339)}}, nil, nil)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, http.StatusForbidden, ce.Status)
	assert.Contains(t, ce.Body.Message, "limited to team=finance")

	// The same on the dashboard's pages.
	b := newBrowser(t, s.URL)
	resp, page := b.signIn(tok)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, page)
	for path, want := range map[string]int{
		"/": http.StatusOK, "/controls": http.StatusOK, "/controls/8.24": http.StatusOK, "/hosts": http.StatusOK,
		"/hosts/" + fin.ID: http.StatusOK, "/hosts/" + other.ID: http.StatusNotFound,
		"/evidence/" + strconv.FormatInt(finIdx, 10): http.StatusOK, "/evidence/" + strconv.FormatInt(otherIdx, 10): http.StatusNotFound,
		"/soa": http.StatusOK, "/soa/print": http.StatusOK, "/frameworks": http.StatusOK, "/frameworks/iso27001-2013": http.StatusOK,
		"/export/bundle?from=2020-01-01&to=2030-01-01": http.StatusForbidden,
	} {
		resp, page := b.get(path)
		assert.Equal(t, want, resp.StatusCode, path)
		assert.NotContains(t, page, "eng-laptop", path)
		if want == http.StatusOK {
			// (A refusal may repeat the id the URL asked for; a page
			// never shows one of its own accord.)
			assert.NotContains(t, page, other.ID, path)
		}
	}
	_, page = b.get("/")
	assert.Contains(t, page, "limited to team=finance")
	assert.NotContains(t, page, `href="/export"`, "no export offered")
	_, page = b.get("/hosts")
	assert.Contains(t, page, "fin-laptop")
}
