package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/server/apiv1"
)

func answer(status int, hdr map[string]string, body string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
}

func newClient(t *testing.T, url string) *client.Client {
	c, err := client.New(client.Options{Server: url, Credential: "anx_x", Timeout: 5 * time.Second})
	require.NoError(t, err)
	return c
}

// Error answers become a typed error with the status, the API's code and
// message, and Retry-After; a body that is not the API's is kept as text.
func TestErrorAnswers(t *testing.T) {
	srv := answer(503, map[string]string{"Retry-After": "7"}, `{"error":{"code":"overloaded","message":"too busy"}}`)
	defer srv.Close()
	err := newClient(t, srv.URL).Do(context.Background(), http.MethodGet, "/v1/controls", nil, nil, nil)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 503, ce.Status)
	assert.Equal(t, 7*time.Second, ce.RetryAfter)
	assert.Equal(t, apiv1.CodeOverloaded, ce.Body.Code)
	assert.Contains(t, ce.Error(), "too busy")

	proxy := answer(502, nil, "<html>Bad Gateway</html>")
	defer proxy.Close()
	err = newClient(t, proxy.URL).Do(context.Background(), http.MethodGet, "/v1/controls", nil, nil, nil)
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 502, ce.Status)
	assert.Contains(t, ce.Error(), "Bad Gateway")
}

// An ingest answer that does not say where to resume acknowledges
// nothing: the agent must not read a 503's missing next_seq as "everything
// up to seq 2^64-1 is in the log".
func TestIngestErrorWithoutNextSeqAcknowledgesNothing(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
	}{
		{503, `{"error":{"code":"overloaded","message":"busy"}}`},
		{500, `{"error":{"code":"internal","message":"internal error (request id 1)"}}`},
		{401, `{"error":{"code":"unauthenticated","message":"no"}}`},
		{502, `bad gateway`},
	} {
		srv := answer(tc.status, nil, tc.body)
		resp, err := newClient(t, srv.URL).Ingest(context.Background(), []json.RawMessage{[]byte(`{}`)})
		srv.Close()
		require.Error(t, err, "%d", tc.status)
		assert.Nil(t, resp, "%d %s: no response, no acknowledgment", tc.status, tc.body)
	}
	// A refused record does say where to resume: that answer is kept.
	srv := answer(409, nil, `{"accepted":2,"next_seq":3,"error":{"code":"seq_gap","message":"gap","expected_seq":3}}`)
	defer srv.Close()
	resp, err := newClient(t, srv.URL).Ingest(context.Background(), []json.RawMessage{[]byte(`{}`)})
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, apiv1.CodeSeqGap, ce.Body.Code)
	require.NotNil(t, resp)
	assert.Equal(t, uint64(3), resp.NextSeq)
}

func TestServerURLMustBeHTTP(t *testing.T) {
	for _, u := range []string{"", "annexa.example:8443", "ftp://x"} {
		_, err := client.New(client.Options{Server: u})
		assert.Error(t, err, u)
	}
}

// The first mistake with a self-signed server, an untrusted certificate,
// says what to do.
func TestUntrustedCertificateSaysWhatToDo(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	err := newClient(t, srv.URL).Do(context.Background(), http.MethodGet, "/v1/controls", nil, nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "give its CA with --ca (or ANNEXA_CA)")
	assert.Contains(t, err.Error(), "tls.crt")
}
