package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

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
func (s *Server) newToken(ctx context.Context, role, name string, expires time.Time, maxUses int64, labels map[string]string) (string, *store.Token, error) {
	secret, err := newSecret()
	if err != nil {
		return "", nil, err
	}
	t := &store.Token{ID: randomID("tok-"), Role: role, Name: name, CreatedAt: s.now().UTC(), ExpiresAt: expires, MaxUses: maxUses, Labels: labels}
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

var errUnauthenticated = errors.New("missing or unknown credential")

// authenticate resolves the bearer credential: an API token (anx_…) or an
// agent credential (<agent-id>.<secret>).
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	cred := bearer(r)
	if cred == "" {
		return nil, errUnauthenticated
	}
	if strings.HasPrefix(cred, tokenPrefix) {
		t, err := s.db.TokenByHash(r.Context(), hashSecret(cred))
		if err != nil {
			return nil, errUnauthenticated
		}
		if t.Revoked || (!t.ExpiresAt.IsZero() && s.now().After(t.ExpiresAt)) {
			return nil, errors.New("token revoked or expired")
		}
		return &principal{token: t}, nil
	}
	id, secret, ok := strings.Cut(cred, ".")
	if !ok {
		return nil, errUnauthenticated
	}
	a, err := s.db.Agent(r.Context(), id)
	if err != nil {
		return nil, errUnauthenticated
	}
	if subtle.ConstantTimeCompare([]byte(a.CredHash), []byte(hashSecret(secret))) != 1 {
		return nil, errUnauthenticated
	}
	return &principal{agent: a}, nil
}

// require admits API tokens whose role is in roles.
func (s *Server) require(roles []string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil {
			s.metrics.reject("unauthenticated")
			writeError(w, http.StatusUnauthorized, "unauthenticated", err.Error())
			return
		}
		if p.token == nil || !slices.Contains(roles, p.token.Role) {
			s.metrics.reject("forbidden")
			writeError(w, http.StatusForbidden, "forbidden", "this credential may not do that (needs one of: "+strings.Join(roles, ", ")+")")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
	}
}

// agentOnly admits enrolled agents by their credential.
func (s *Server) agentOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil {
			s.metrics.reject("unauthenticated")
			writeError(w, http.StatusUnauthorized, "unauthenticated", err.Error())
			return
		}
		if p.agent == nil {
			s.metrics.reject("forbidden")
			writeError(w, http.StatusForbidden, "forbidden", "only an enrolled agent's credential may submit evidence")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
	}
}

// anyPrincipal admits any valid credential except enroll tokens.
func (s *Server) anyPrincipal(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil || (p.token != nil && p.token.Role == RoleEnroll) {
			writeError(w, http.StatusUnauthorized, "unauthenticated", "a valid agent credential or API token is required")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
	}
}
