package server_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/servertest"
)

// Three thousand mutations of a valid batch (fixed seed: the same ones each
// run), plain and gzipped, each answered with a 4xx or 2xx and the API's
// JSON, never a 5xx; the fuzz target FuzzIngest explores further.
func TestMutatedBatchesNeverFailTheServer(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := servertest.New(t, server.Config{Now: time.Now})
	a := s.Enrol("", "fuzz")
	now := time.Now().UTC()
	r1 := a.Record(now, map[string]evidence.Status{"ssh.root_login": evidence.Pass})
	r2 := a.Record(now, map[string]evidence.Status{"ssh.root_login": evidence.Fail, "ssh.password_auth": evidence.Pass})
	b, _ := json.Marshal(apiv1.IngestRequest{Envelopes: []json.RawMessage{r1, r2}})
	h := s.Handler()
	for i := 0; i < 3000; i++ {
		body := append([]byte(nil), b...)
		for k := 0; k < 1+rng.IntN(3); k++ {
			body[rng.IntN(len(body))] = byte(rng.IntN(256))
		}
		gz := rng.IntN(2) == 0
		if gz {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write(body)
			_ = zw.Close()
			body = buf.Bytes()
		}
		start := time.Now()
		req := httptest.NewRequest(http.MethodPost, "/v1/evidence", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+a.Enroll.Credential)
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("mutation %d: status %d after %s: %s", i, rec.Code, time.Since(start), rec.Body.String())
		}
	}
}
