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

// FuzzIngest sends arbitrary bodies, plain and gzipped, through the whole
// ingest path (decode, verify, decide, store) with an enrolled agent's
// credential. Whatever arrives, the answer is a 2xx or a 4xx/503 with the
// API's JSON error, never a 5xx and never a crash, and the log stays
// consistent with its own checkpoints.
func FuzzIngest(f *testing.F) {
	s := servertest.New(f, server.Config{Now: time.Now})
	a := s.Enrol("", "fuzz")
	now := time.Now().UTC()
	r1 := a.Record(now, map[string]evidence.Status{"ssh.root_login": evidence.Pass})
	r2 := a.Record(now, map[string]evidence.Status{"ssh.root_login": evidence.Fail, "ssh.password_auth": evidence.Pass})
	seed := func(envs ...json.RawMessage) []byte {
		b, _ := json.Marshal(apiv1.IngestRequest{Envelopes: envs})
		return b
	}
	f.Add(seed(r1), false)
	f.Add(seed(r1, r2), true)
	f.Add(seed(r2, r1), false)
	f.Add(seed(r1, r1), false)
	f.Add([]byte(`{"envelopes":[]}`), false)
	f.Add([]byte(`{"envelopes":[{"payload":"","payloadType":"","signatures":[]}]}`), true)
	handler := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte, gz bool) {
		if gz {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write(body)
			_ = zw.Close()
			body = buf.Bytes()
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/evidence", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+a.Enroll.Credential)
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("status %d with a body that is not JSON: %q", rec.Code, rec.Body)
		}
	})
}
