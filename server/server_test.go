package server_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"strings"
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

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func get(t *testing.T, s *servertest.Server, token, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// A failure inside the server is logged with the request id, the route and
// the cause; the client gets a 500 with the request id and nothing else.
func TestInternalErrorIsLoggedNotShown(t *testing.T) {
	s := servertest.New(t, server.Config{})
	require.NoError(t, s.DB().Close()) // every query now fails inside the store

	resp, body := get(t, s, s.Admin, "/v1/tokens")
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode, "%s", body)
	id := resp.Header.Get("X-Request-Id")
	require.NotEmpty(t, id)
	var eb apiv1.ErrorBody
	require.NoError(t, json.Unmarshal(body, &eb))
	assert.Equal(t, apiv1.CodeInternal, eb.Error.Code)
	assert.Contains(t, eb.Error.Message, id)
	assert.NotContains(t, strings.ToLower(string(body)), "sql", "no internals in the answer")
	assert.NotContains(t, strings.ToLower(string(body)), "closed", "no internals in the answer")

	logs := s.Log.String()
	assert.Contains(t, logs, "request_id="+id)
	assert.Contains(t, logs, `route="GET /v1/tokens"`)
	assert.Contains(t, logs, "closed", "the cause is in the log")
}

// Client errors keep their typed code and a message that says what to fix.
func TestClientErrorsCarryCodes(t *testing.T) {
	s := servertest.New(t, server.Config{})
	analyst := s.Token(server.RoleAnalyst, apiv1.TokenRequest{})
	for _, tc := range []struct {
		path   string
		token  string
		status int
		code   apiv1.Code
	}{
		{"/v1/controls?status=passing", analyst, 400, apiv1.CodeMalformed},
		{"/v1/evidence?control=99.1", analyst, 400, apiv1.CodeUnknownControl},
		{"/v1/controls/99.1", analyst, 404, apiv1.CodeUnknownControl},
		{"/v1/hosts/agt-nobody", analyst, 404, apiv1.CodeNotFound},
		{"/v1/tokens", analyst, 403, apiv1.CodeForbidden},
		{"/v1/tokens", "anx_wrong", 401, apiv1.CodeUnauthenticated},
		{"/v1/log/entries/x", analyst, 400, apiv1.CodeMalformed},
		{"/v1/log/entries/999", analyst, 404, apiv1.CodeNotFound},
		{"/v1/export?from=2026-01-01&to=2025-01-01", s.Admin, 400, apiv1.CodeMalformed},
	} {
		resp, body := get(t, s, tc.token, tc.path)
		assert.Equal(t, tc.status, resp.StatusCode, "%s: %s", tc.path, body)
		var eb apiv1.ErrorBody
		require.NoError(t, json.Unmarshal(body, &eb), tc.path)
		assert.Equal(t, tc.code, eb.Error.Code, tc.path)
		assert.NotEmpty(t, eb.Error.Message, tc.path)
	}
	assert.NotContains(t, s.Log.String(), "request failed", "client errors are not server failures")
}

// Enrolling with a token of another role says which role it has.
func TestEnrollWithWrongRoleNamesIt(t *testing.T) {
	s := servertest.New(t, server.Config{})
	analyst := s.Token(server.RoleAnalyst, apiv1.TokenRequest{})
	pub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	_, err = s.Client("").Enroll(context.Background(), apiv1.EnrollRequest{Token: analyst, PublicKey: pub, Hostname: "h"})
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 403, ce.Status)
	assert.Contains(t, ce.Body.Message, "its role is analyst, not enroll")
	assert.Contains(t, ce.Body.Message, "annexa token create --role enroll")
}

// Enrol, ingest, query, in-process: the path every other test builds on.
func TestIngestAndQueryInProcess(t *testing.T) {
	s := servertest.New(t, server.Config{Now: func() time.Time { return t0.Add(time.Hour) }})
	a := s.Enrol("", "web-1")
	b := s.Enrol("", "web-2")
	_, err := a.Ship(a.Record(t0, map[string]evidence.Status{"disk_encryption.system_volume": evidence.Pass}))
	require.NoError(t, err)
	_, err = b.Ship(b.Record(t0, map[string]evidence.Status{"disk_encryption.system_volume": evidence.Fail}))
	require.NoError(t, err)

	c := s.Client(s.Admin)
	var d apiv1.ControlDetail
	require.NoError(t, c.Do(context.Background(), http.MethodGet, "/v1/controls/8.24", nil, nil, &d))
	assert.Equal(t, 1, d.Passing)
	assert.Equal(t, 1, d.Failing)
	require.Len(t, d.AssetsDetail, 2)
	assert.Equal(t, "host:"+b.ID, d.AssetsDetail[0].Asset, "the failing asset comes first")

	// A resent record is a duplicate with the same receipt.
	env := a.Record(t0.Add(time.Minute), map[string]evidence.Status{"disk_encryption.system_volume": evidence.Fail})
	r1, err := a.Ship(env)
	require.NoError(t, err)
	r2, err := a.Ship(env)
	require.NoError(t, err)
	assert.Equal(t, 1, r2.Duplicates)
	assert.Equal(t, r1.Receipts, r2.Receipts)

	// A record ahead of the chain is refused with where to resume.
	a.Record(t0.Add(2*time.Minute), map[string]evidence.Status{"disk_encryption.system_volume": evidence.Pass})
	_, err = a.Ship(a.Record(t0.Add(3*time.Minute), map[string]evidence.Status{"disk_encryption.system_volume": evidence.Pass}))
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, apiv1.CodeSeqGap, ce.Body.Code)
	assert.Equal(t, uint64(3), ce.Body.ExpectedSeq)
}
