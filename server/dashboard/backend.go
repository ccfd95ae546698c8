package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"time"

	"github.com/annexa-dev/annexa/evidence/catalog"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// Backend is what the dashboard reads and changes: the server's own query
// functions, the same ones its /v1 API answers from, so a page and the API
// (and the CLI's --at) cannot disagree.
type Backend interface {
	// SignIn resolves an API token's secret. Enroll tokens, revoked and
	// expired ones are refused with ErrCredential (wrapped, with the why).
	SignIn(ctx context.Context, secret string) (*Principal, error)
	// Principal looks a session's token up again on every request, so a
	// token revoked or expired since sign-in ends its sessions.
	Principal(ctx context.Context, tokenID string) (*Principal, error)

	Catalog() *catalog.Catalog
	Controls(ctx context.Context, v url.Values) (*apiv1.ControlsResponse, error)
	Control(ctx context.Context, id string, v url.Values) (*apiv1.ControlDetail, error)
	Hosts(ctx context.Context, v url.Values) (*apiv1.Page[apiv1.Host], error)
	Host(ctx context.Context, id string, v url.Values) (*apiv1.HostDetail, error)
	History(ctx context.Context, v url.Values) (*apiv1.Page[apiv1.Transition], error)
	AgentKeys(ctx context.Context, agentID string) ([]apiv1.AgentKey, error)
	// Trend is, per control, its count of failing assets at the end of
	// each of the days days ending at at (oldest first); nil while it is
	// still being built.
	Trend(ctx context.Context, at time.Time, days int, v url.Values) (map[string][]int, error)
	// Record is a log entry as signed, checked by the server as an
	// auditor's verifier would check it.
	Record(ctx context.Context, index int64) (*Record, error)
	// Observations are what each check of a record examined, by
	// "asset check".
	Observations(ctx context.Context, index int64) (map[string]json.RawMessage, error)

	// SoA is the Statement of Applicability (as of ?at=); UpdateSoA an
	// admin's edit of one line; SoAHistory the edits, newest first.
	SoA(ctx context.Context, v url.Values) (*apiv1.SoAResponse, error)
	UpdateSoA(ctx context.Context, by *Principal, control string, req apiv1.SoARequest) (*apiv1.SoAControl, error)
	SoAHistory(ctx context.Context, v url.Values) (*apiv1.Page[apiv1.SoAChange], error)
	// Attestations are the people's attestations (as of ?at=, filtered as
	// GET /v1/attestations), Persons the people registered to attest.
	Attestations(ctx context.Context, v url.Values) (*apiv1.AttestationsResponse, error)
	Persons(ctx context.Context) ([]apiv1.Person, error)
	// AttestedFile is a document an attestation cites: its name, media
	// type and bytes.
	AttestedFile(ctx context.Context, sha256 string) (name, mediaType string, data []byte, err error)
	// Frameworks are the other frameworks mapped onto Annex A; Framework
	// the fleet's state per requirement of one (as of ?at=).
	Frameworks(ctx context.Context) ([]apiv1.Framework, error)
	Framework(ctx context.Context, name string, v url.Values) (*apiv1.FrameworkState, error)
	// Scope is the ISMS scope (clause 4.3) and how many agents it selects.
	Scope(ctx context.Context) (*apiv1.Scope, error)

	// Export checks an export's scope and returns the bundle's file name
	// and its writer, which streams it.
	Export(ctx context.Context, v url.Values) (string, func(io.Writer) error, error)

	Tokens(ctx context.Context) ([]apiv1.Token, error)
	CreateToken(ctx context.Context, by *Principal, req apiv1.TokenRequest) (*apiv1.TokenResponse, error)
	RevokeToken(ctx context.Context, by *Principal, id string) error
	RevokeAgent(ctx context.Context, by *Principal, id string) error

	// Info is what pages say about the server itself.
	Info() Info
}

// ErrCredential is a sign-in with a secret that opens no dashboard.
var ErrCredential = errors.New("this token cannot sign in")

// Principal is who is signed in: an API token of role admin, analyst or
// auditor.
type Principal struct {
	TokenID string
	Name    string
	Role    string
	// Selector limits what the token sees ("" for everything); the
	// backend applies it to every query made with the request's context.
	Selector string
}

type principalKey struct{}

// WithPrincipal is ctx carrying who the request is from, for the backend.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom is who a request's context is from (nil: nobody signed in).
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// Info describes the server to its pages.
type Info struct {
	Origin    string // the log's name
	ServerPub string // the lines auditors pin (server.pub)
}

// Record is one log entry as the evidence page shows it.
type Record struct {
	Index      int64
	Kind       string
	AgentID    string
	Seq        uint64
	Digest     string
	ReceivedAt time.Time
	Envelope   string // the DSSE envelope, indented
	Statement  string // its payload, indented
	KeyID      string
	Asset      string
	Collector  string
	Collected  time.Time
	// The checks the server made, each with what it found.
	Signature Verdict
	Chain     Verdict
	Inclusion Verdict
	// The latest checkpoint (a signed note) and the proof against it.
	Checkpoint string
	TreeSize   int64
	Proof      []string
}

// Verdict is one check of a record and what it found.
type Verdict struct {
	OK     bool
	Detail string
}

// Status is an error the backend raises about the request (a bad filter,
// an unknown id), with the HTTP status it answers.
type Status interface {
	error
	HTTPStatus() int
	Message() string
}
