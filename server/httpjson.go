package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/annexa-dev/annexa/server/apiv1"
)

// This file is the API's one error path. A handler returns an error; a
// client error (apiError) becomes its 4xx with a code and a message meant
// for the caller, and anything else is logged with the request id, the
// route and the wrapped cause, while the client sees a 500 that carries the
// request id and nothing of the server's internals.

// handlerFunc is an API handler that reports failure by returning it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// apiError is an error the client caused and can act on.
type apiError struct {
	status int
	body   apiv1.Error
	header http.Header // extra response headers, e.g. Retry-After
}

func (e *apiError) Error() string { return string(e.body.Code) + ": " + e.body.Message }

// clientError is a 4xx (or a deliberate 503) with a code and a message.
func clientError(status int, code apiv1.Code, format string, args ...any) *apiError {
	return &apiError{status: status, body: apiv1.Error{Code: code, Message: fmt.Sprintf(format, args...)}}
}

func badRequest(format string, args ...any) *apiError {
	return clientError(http.StatusBadRequest, apiv1.CodeMalformed, format, args...)
}

func notFound(format string, args ...any) *apiError {
	return clientError(http.StatusNotFound, apiv1.CodeNotFound, format, args...)
}

// handle adapts a handlerFunc to net/http through the one error path.
func (s *Server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// url.Values drops every parameter when there are too many (Go
		// caps them): a query whose filters would vanish is refused.
		if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
			s.reportError(w, r, badRequest("query: %v", err))
			return
		}
		if err := h(w, r); err != nil {
			s.reportError(w, r, err)
		}
	}
}

// reportError answers err. A response already under way (a streamed
// export) cannot change its status: the failure is logged and the stream
// is cut, which the reader sees as a truncated body.
func (s *Server) reportError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		for k, vs := range ae.header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		writeJSON(w, ae.status, apiv1.ErrorBody{Error: ae.body})
		return
	}
	id := requestID(r.Context())
	started := false
	if sw, ok := w.(*statusWriter); ok {
		started = sw.wrote
	}
	s.log.LogAttrs(r.Context(), slog.LevelError, "request failed",
		slog.String("request_id", id), slog.String("method", r.Method), slog.String("route", r.Pattern),
		slog.Bool("response_started", started), slog.String("err", err.Error()))
	if started {
		panic(http.ErrAbortHandler) // cut the stream: a short body must not look complete
	}
	writeError(w, http.StatusInternalServerError, apiv1.CodeInternal, "internal error (request id "+id+"); the server's log has the cause")
}

// serveList answers a read endpoint from its query function: the API and
// the dashboard ask the same functions, so they cannot disagree.
func serveList[T any](fn func(context.Context, url.Values) (T, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := fn(r.Context(), r.URL.Query())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	}
}

// serveOne is serveList for an endpoint about one thing, named by {id}.
func serveOne[T any](fn func(context.Context, string, url.Values) (T, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := fn(r.Context(), r.PathValue("id"), r.URL.Query())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code apiv1.Code, msg string) {
	writeJSON(w, status, apiv1.ErrorBody{Error: apiv1.Error{Code: code, Message: msg}})
}

// decodeJSON reads a small JSON request body strictly.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("request body: %v", err)
	}
	return nil
}

type requestIDKey struct{}

// newRequestID is a short random id that ties a client's 500 to the
// server's log line.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func requestID(ctx context.Context) string {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		return id
	}
	return "-"
}

// statusWriter remembers the status and whether anything was written, for
// the request log and the error path.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
