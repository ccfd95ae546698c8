package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/store"
)

// Roles of API tokens. Enroll tokens only enrol agents.
const (
	RoleAdmin   = "admin"
	RoleAnalyst = "analyst"
	RoleAuditor = "auditor"
	RoleEnroll  = "enroll"
)

// ValidRole says whether role is one a token can have.
func ValidRole(role string) bool {
	return role == RoleAdmin || role == RoleAnalyst || role == RoleAuditor || role == RoleEnroll
}

// tokenPrefix marks Annexa secrets so that secret scanners can find leaked ones.
const tokenPrefix = "anx_"

func newSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// hashSecret is how secrets are stored. Secrets are 192 random bits, so a
// plain sha256 is enough: there is nothing to brute-force.
func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func randomID(prefix string) string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// newToken creates a token and returns its secret, which is not kept.
func (s *Server) newToken(ctx context.Context, t *store.Token) (string, *store.Token, error) {
	secret, err := newSecret()
	if err != nil {
		return "", nil, err
	}
	t.ID, t.CreatedAt = randomID("tok-"), s.now().UTC()
	if err := s.db.CreateToken(ctx, t, hashSecret(secret)); err != nil {
		return "", nil, err
	}
	return secret, t, nil
}

type principal struct {
	token *store.Token
	agent *store.Agent
}

type ctxKey struct{}

func principalFrom(ctx context.Context) *principal {
	p, _ := ctx.Value(ctxKey{}).(*principal)
	return p
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if v, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return ""
}

var (
	errUnauthenticated = errors.New("missing or unknown credential")
	errTokenExpired    = errors.New("token revoked or expired")
	errAgentRevoked    = errors.New("this agent was revoked")
)

// authenticate resolves the bearer credential: an API token (anx_…) or an
// agent credential (<agent-id>.<secret>).
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	cred := bearer(r)
	if cred == "" {
		return nil, errUnauthenticated
	}
	if strings.HasPrefix(cred, tokenPrefix) {
		t, err := s.db.TokenByHash(r.Context(), hashSecret(cred))
		if errors.Is(err, store.ErrNotFound) {
			return nil, errUnauthenticated
		}
		if err != nil {
			return nil, fmt.Errorf("authenticate: look up token: %w", err)
		}
		if t.Revoked || (!t.ExpiresAt.IsZero() && s.now().After(t.ExpiresAt)) {
			return nil, errTokenExpired
		}
		return &principal{token: t}, nil
	}
	id, secret, ok := strings.Cut(cred, ".")
	if !ok {
		return nil, errUnauthenticated
	}
	a, err := s.db.Agent(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: look up agent: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(a.CredHash), []byte(hashSecret(secret))) != 1 {
		return nil, errUnauthenticated
	}
	if a.Revoked() {
		// Everything a revoked agent could still ship was accepted before
		// the revocation (it ends at the last accepted seq): its
		// credential opens nothing any more.
		return nil, errAgentRevoked
	}
	return &principal{agent: a}, nil
}

// authFailure says whether err is the credential's fault.
func authFailure(err error) bool {
	return errors.Is(err, errUnauthenticated) || errors.Is(err, errTokenExpired) || errors.Is(err, errAgentRevoked)
}

// authError answers a failed authentication: 401 for a bad credential, the
// internal error as it is when the server could not tell.
func (s *Server) authError(err error) error {
	if !authFailure(err) {
		return err
	}
	if errors.Is(err, errAgentRevoked) {
		s.metrics.reject(string(apiv1.CodeRevoked))
		return clientError(http.StatusForbidden, apiv1.CodeRevoked, "%v: its records up to the revocation are in the log; nothing more is accepted", err)
	}
	s.metrics.reject("unauthenticated")
	return clientError(http.StatusUnauthorized, apiv1.CodeUnauthenticated, "%v", err)
}

// require admits API tokens whose role is in roles.
func (s *Server) require(roles []string, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.authenticate(r)
		if err != nil {
			return s.authError(err)
		}
		if p.token == nil || !slices.Contains(roles, p.token.Role) {
			s.metrics.reject("forbidden")
			return clientError(http.StatusForbidden, apiv1.CodeForbidden, "this credential may not do that (needs one of: %s)", strings.Join(roles, ", "))
		}
		ctx, err := tokenView(context.WithValue(r.Context(), ctxKey{}, p), p.token)
		if err != nil {
			return err
		}
		return h(w, r.WithContext(ctx))
	}
}

// agentOnly admits enrolled agents by their credential.
func (s *Server) agentOnly(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.authenticate(r)
		if err != nil {
			return s.authError(err)
		}
		if p.agent == nil {
			s.metrics.reject("forbidden")
			return clientError(http.StatusForbidden, apiv1.CodeForbidden, "only an enrolled agent's credential may submit evidence")
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
	}
}

// anyPrincipal admits any valid credential except enroll tokens.
func (s *Server) anyPrincipal(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.authenticate(r)
		if err != nil && !authFailure(err) {
			return err
		}
		if err != nil || (p.token != nil && p.token.Role == RoleEnroll) {
			return clientError(http.StatusUnauthorized, apiv1.CodeUnauthenticated, "a valid agent credential or API token is required")
		}
		ctx, err := tokenView(context.WithValue(r.Context(), ctxKey{}, p), p.token)
		if err != nil {
			return err
		}
		return h(w, r.WithContext(ctx))
	}
}
