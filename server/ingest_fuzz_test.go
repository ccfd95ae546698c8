package server_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/servertest"
)

// ingestRig is a server with one enrolled agent and two records it signed,
// for throwing arbitrary bodies at the ingest path.
type ingestRig struct {
	handler http.Handler
	cred    string
	r1, r2  json.RawMessage
}

func newIngestRig(tb testing.TB) *ingestRig {
	s := servertest.New(tb, server.Config{Now: time.Now})
	a := s.Enrol("", "fuzz")
	now := time.Now().UTC()
	return &ingestRig{
		handler: s.Handler(),
		cred:    a.Enroll.Credential,
		r1:      a.Record(now, map[string]evidence.Status{"ssh.root_login": evidence.Pass}),
		r2:      a.Record(now, map[string]evidence.Status{"ssh.root_login": evidence.Fail, "ssh.password_auth": evidence.Pass}),
	}
}

func batch(envs ...json.RawMessage) []byte {
	b, _ := json.Marshal(apiv1.IngestRequest{Envelopes: envs})
	return b
}

// post sends body (gzipped if gz) with the agent's credential and fails the
// test on a 5xx other than 503, or an answer that is not JSON.
func (r *ingestRig) post(t *testing.T, body []byte, gz bool) {
	t.Helper()
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = buf.Bytes()
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/evidence", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.cred)
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	rec := httptest.NewRecorder()
	r.handler.ServeHTTP(rec, req)
	if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("status %d with a body that is not JSON: %q", rec.Code, rec.Body)
	}
}

// FuzzIngest sends arbitrary bodies, plain and gzipped, through the whole
// ingest path (decode, verify, decide, store) with an enrolled agent's
// credential. Whatever arrives, the answer is a 2xx or a 4xx/503 with the
// API's JSON error, never a 5xx and never a crash.
func FuzzIngest(f *testing.F) {
	rig := newIngestRig(f)
	f.Add(batch(rig.r1), false)
	f.Add(batch(rig.r1, rig.r2), true)
	f.Add(batch(rig.r2, rig.r1), false)
	f.Add(batch(rig.r1, rig.r1), false)
	f.Add([]byte(`{"envelopes":[]}`), false)
	f.Add([]byte(`{"envelopes":[{"payload":"","payloadType":"","signatures":[]}]}`), true)
	f.Fuzz(func(t *testing.T, body []byte, gz bool) { rig.post(t, body, gz) })
}
