// Package client is the Go client of the Annexa server's /v1 API, used by
// the annexa CLI and the agent.
package client

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/server/apiv1"
)

// Client talks to one server with one credential.
type Client struct {
	base  *url.URL
	cred  string
	http  *http.Client
	agent string
}

// Options configure a client.
type Options struct {
	Server     string // https://host:port
	Credential string // API token or agent credential
	CAFile     string // PEM bundle to trust instead of the system roots
	Timeout    time.Duration
	UserAgent  string
}

// New returns a client. TLS certificates are verified against the system
// roots, or against CAFile when given; there is no switch to skip
// verification.
func New(o Options) (*Client, error) {
	if o.Server == "" {
		return nil, errors.New("no server URL (--server or ANNEXA_SERVER)")
	}
	u, err := url.Parse(strings.TrimRight(o.Server, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want https://host:port", o.Server)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificates in it", o.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	if o.UserAgent == "" {
		o.UserAgent = "annexa-client"
	}
	return &Client{base: u, cred: o.Credential, http: &http.Client{Transport: tr, Timeout: o.Timeout}, agent: o.UserAgent}, nil
}

// Server is the base URL.
func (c *Client) Server() string { return c.base.String() }

// Error is a non-2xx answer.
type Error struct {
	Status     int
	RetryAfter time.Duration
	Body       apiv1.Error
}

func (e *Error) Error() string {
	if e.Body.Code == "" {
		if e.Body.Message != "" {
			return fmt.Sprintf("server answered %d: %s", e.Status, e.Body.Message)
		}
		return fmt.Sprintf("server answered %d", e.Status)
	}
	return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Body.Code, e.Body.Message)
}

// Do sends a request with a JSON body (or none) and decodes a JSON answer
// into out (unless nil).
func (c *Client) Do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, method, path, q, rd, nil)
	if err != nil {
		return err
	}
	return decodeAnswer(resp, method, path, out)
}

// decodeAnswer reads an answer into out: JSON, or the bytes for a *[]byte;
// nil discards it. A non-2xx answer is an *Error.
func decodeAnswer(resp *http.Response, method, path string, out any) error {
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if p, ok := out.(*[]byte); ok {
		var err error
		*p, err = io.ReadAll(resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: bad answer: %w", method, path, err)
	}
	return nil
}

// Stream sends a GET and returns the open response body on success.
func (c *Client) Stream(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	resp, err := c.send(ctx, http.MethodGet, path, q, nil, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

func (c *Client) send(ctx context.Context, method, path string, q url.Values, body io.Reader, hdr http.Header) (*http.Response, error) {
	u := *c.base
	u.Path += path
	if q != nil {
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if s, ok := body.(interface{ Len() int64 }); ok {
		req.ContentLength = s.Len()
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cred != "" {
		req.Header.Set("Authorization", "Bearer "+c.cred)
	}
	req.Header.Set("User-Agent", c.agent)
	resp, err := c.http.Do(req)
	if err != nil {
		var unknownCA x509.UnknownAuthorityError
		var hostname x509.HostnameError
		switch {
		case errors.As(err, &unknownCA):
			return nil, fmt.Errorf("%s: the server's certificate is not signed by a CA this machine trusts: give its CA with --ca (or ANNEXA_CA); "+
				"a server with a self-signed certificate keeps it as tls.crt in its data directory: %w", c.base.Host, err)
		case errors.As(err, &hostname):
			return nil, fmt.Errorf("%s: the server's certificate is for other names (%w): use a URL with a name it holds, or a certificate for this one", c.base.Host, err)
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp, nil
}

func readError(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode, RetryAfter: retryAfter(resp)}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var body apiv1.ErrorBody
	if json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
		e.Body = body.Error
	} else {
		e.Body.Message = strings.TrimSpace(string(b))
	}
	return e
}

func retryAfter(resp *http.Response) time.Duration {
	if v := resp.Header.Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return time.Duration(n) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			return time.Until(t)
		}
	}
	return 0
}

// Enroll registers an agent with an enrollment token.
func (c *Client) Enroll(ctx context.Context, req apiv1.EnrollRequest) (*apiv1.EnrollResponse, error) {
	var resp apiv1.EnrollResponse
	if err := c.Do(ctx, http.MethodPost, "/v1/enroll", nil, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Ingest sends a batch of envelopes, gzip-compressed. The response is
// returned with the error too: on a rejected record it says how far the
// server got (NextSeq) and why it stopped.
func (c *Client) Ingest(ctx context.Context, envelopes []json.RawMessage) (*apiv1.IngestResponse, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(apiv1.IngestRequest{Envelopes: envelopes}); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	hdr := http.Header{"Content-Encoding": {"gzip"}, "Content-Type": {"application/json"}}
	resp, err := c.send(ctx, http.MethodPost, "/v1/evidence", nil, &buf, hdr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, err
	}
	var out apiv1.IngestResponse
	decodeErr := json.Unmarshal(b, &out)
	if resp.StatusCode/100 == 2 {
		if decodeErr != nil {
			return nil, fmt.Errorf("ingest: bad answer: %w", decodeErr)
		}
		return &out, nil
	}
	e := &Error{Status: resp.StatusCode, RetryAfter: retryAfter(resp)}
	switch {
	case decodeErr == nil && out.Error != nil:
		e.Body = *out.Error
	default:
		var body apiv1.ErrorBody
		if json.Unmarshal(b, &body) == nil {
			e.Body = body.Error
		} else {
			e.Body.Message = strings.TrimSpace(string(b))
		}
	}
	// Only an answer that says where to resume is a response: an error
	// without next_seq (an overload, an internal error, a proxy's page)
	// acknowledges nothing.
	var probe struct {
		NextSeq *uint64 `json:"next_seq"`
	}
	if decodeErr != nil || json.Unmarshal(b, &probe) != nil || probe.NextSeq == nil || *probe.NextSeq == 0 {
		return nil, e
	}
	return &out, e
}
