package server_test

import (
	"context"
	"net/http"
	"net/url"
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

func soaLine(t *testing.T, c *client.Client, id string) apiv1.SoAControl {
	t.Helper()
	var soa apiv1.SoAResponse
	require.NoError(t, c.Do(context.Background(), http.MethodGet, "/v1/soa", nil, nil, &soa))
	require.Len(t, soa.Controls, 93)
	for _, l := range soa.Controls {
		if l.ID == id {
			return l
		}
	}
	t.Fatalf("no SoA line %s", id)
	return apiv1.SoAControl{}
}

func ptr[T any](v T) *T { return &v }

func TestStatementOfApplicability(t *testing.T) {
	s := servertest.New(t, server.Config{})
	admin := s.Client(s.Admin)
	auditor := s.Client(s.Token(server.RoleAuditor, apiv1.TokenRequest{}))
	ctx := context.Background()

	// Before anyone assesses it: every control applicable, flagged.
	var soa apiv1.SoAResponse
	require.NoError(t, auditor.Do(ctx, http.MethodGet, "/v1/soa", nil, nil, &soa))
	require.Len(t, soa.Controls, 93)
	assert.Equal(t, 93, soa.Applicable)
	assert.Equal(t, 93, soa.Flagged)
	l := soaLine(t, auditor, "8.24")
	assert.False(t, l.Assessed)
	assert.Contains(t, l.Flags, "not assessed: applicable by default, no status, owner or justification")
	assert.Contains(t, l.Flags[1], "no evidence: no asset has reported on its checks")

	// Set 8.24 implemented; evidence arrives, one asset failing.
	var got apiv1.SoAControl
	require.NoError(t, admin.Do(ctx, http.MethodPut, "/v1/soa/8.24", nil, apiv1.SoARequest{Status: ptr("implemented"), Owner: ptr("it-ops"), Justification: ptr("Laptops and servers hold personal data")}, &got))
	assert.Equal(t, "implemented", got.Status)
	assert.Equal(t, "it-ops", got.Owner)
	assert.True(t, got.Assessed)
	a, b := s.Enrol("", "a"), s.Enrol("", "b")
	now := time.Now().UTC()
	_, err := a.Ship(a.Record(now, map[string]evidence.Status{"disk_encryption.system_volume": evidence.Pass}))
	require.NoError(t, err)
	_, err = b.Ship(b.Record(now, map[string]evidence.Status{"disk_encryption.system_volume": evidence.Fail}))
	require.NoError(t, err)
	l = soaLine(t, auditor, "8.24")
	assert.Equal(t, 2, l.Evidence.Assets)
	assert.Equal(t, []string{"failing on 1 of 2 assets"}, l.Flags)

	// Exclude 7.4 (2013 id A.11.1.2 is 7.2 and 7.6: ambiguous, refused).
	err = admin.Do(ctx, http.MethodPut, "/v1/soa/7.4", nil, apiv1.SoARequest{Applicable: ptr(false)}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "needs a justification")
	got = apiv1.SoAControl{}
	require.NoError(t, admin.Do(ctx, http.MethodPut, "/v1/soa/7.4", nil, apiv1.SoARequest{Applicable: ptr(false), Justification: ptr("No premises of our own: fully remote")}, &got))
	assert.False(t, got.Applicable)
	assert.Empty(t, got.Flags)
	// Excluding a control with evidence says so.
	got = apiv1.SoAControl{}
	require.NoError(t, admin.Do(ctx, http.MethodPut, "/v1/soa/8.1", nil, apiv1.SoARequest{Applicable: ptr(false), Justification: ptr("no endpoints")}, &got))
	assert.Equal(t, []string{"excluded, yet 2 assets report evidence for it"}, got.Flags)

	// Bad input.
	for id, req := range map[string]apiv1.SoARequest{
		"8.24": {Status: ptr("done")},
		"9.99": {Status: ptr("planned")},
	} {
		require.Error(t, admin.Do(ctx, http.MethodPut, "/v1/soa/"+id, nil, req, nil), id)
	}
	// A 2013 id that became one 2022 control sets that one.
	got = apiv1.SoAControl{}
	require.NoError(t, admin.Do(ctx, http.MethodPut, "/v1/soa/A.10.1.1", nil, apiv1.SoARequest{Owner: ptr("it-ops")}, &got))
	assert.Equal(t, "8.24", got.ID)
	// Only an admin edits it.
	err = auditor.Do(ctx, http.MethodPut, "/v1/soa/5.1", nil, apiv1.SoARequest{Status: ptr("planned")}, nil)
	require.Error(t, err)

	// Every change is kept: who, when, what.
	var hist apiv1.Page[apiv1.SoAChange]
	require.NoError(t, auditor.Do(ctx, http.MethodGet, "/v1/soa/history", nil, nil, &hist))
	require.GreaterOrEqual(t, len(hist.Items), 3)
	last := hist.Items[0]
	assert.Equal(t, "8.1", last.Control)
	assert.Equal(t, [2]string{"applicable", "excluded"}, last.Changes["applicable"])
	assert.NotEmpty(t, last.By)
	var h824 apiv1.Page[apiv1.SoAChange]
	require.NoError(t, auditor.Do(ctx, http.MethodGet, "/v1/soa/history", url.Values{"control": {"8.24"}}, nil, &h824))
	require.Len(t, h824.Items, 1)
	assert.Equal(t, [2]string{"", "implemented"}, h824.Items[0].Changes["status"])
	// An edit that changes nothing is no change.
	require.NoError(t, admin.Do(ctx, http.MethodPut, "/v1/soa/8.24", nil, apiv1.SoARequest{Status: ptr("implemented")}, nil))
	require.NoError(t, auditor.Do(ctx, http.MethodGet, "/v1/soa/history", url.Values{"control": {"8.24"}}, nil, &h824))
	assert.Len(t, h824.Items, 1)

	require.NoError(t, auditor.Do(ctx, http.MethodGet, "/v1/soa", nil, nil, &soa))
	assert.Equal(t, 91, soa.Applicable)
	assert.Equal(t, 2, soa.Excluded)
	assert.Equal(t, 1, soa.Implemented)
}
