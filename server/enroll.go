package server

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/store"
)

// handleEnroll is POST /v1/enroll: an agent presents an enrollment token and
// its public key (the private key never leaves the host) and receives its
// id, a credential, and the signed enrollment statement its chain starts from.
func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) error {
	var req apiv1.EnrollRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Token == "" {
		req.Token = bearer(r)
	}
	if len(req.PublicKey) != ed25519.PublicKeySize {
		return badRequest("public_key must be a 32-byte ed25519 key (base64)")
	}
	if strings.TrimSpace(req.Hostname) == "" {
		return badRequest("hostname is required")
	}
	resp, err := s.Enroll(r.Context(), req)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.metrics.reject("bad_enroll_token")
		return clientError(http.StatusUnauthorized, apiv1.CodeUnauthenticated, "unknown enrollment token")
	case errors.Is(err, store.ErrTokenExpired), errors.Is(err, store.ErrTokenUsedUp), errors.Is(err, store.ErrTokenRevoked):
		s.metrics.reject("bad_enroll_token")
		return clientError(http.StatusForbidden, apiv1.CodeTokenUnusable, "%v", err)
	case err != nil:
		return fmt.Errorf("enroll %s: %w", req.Hostname, err)
	}
	s.log.Info("agent enrolled", "agent", resp.AgentID, "hostname", req.Hostname)
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

// Enroll registers an agent: one use of the token, the agent's row and
// first key, and the enrollment statement appended to the log, in one
// transaction.
func (s *Server) Enroll(ctx context.Context, req apiv1.EnrollRequest) (*apiv1.EnrollResponse, error) {
	secret, err := newSecret()
	if err != nil {
		return nil, err
	}
	agentID := randomID("agt-")
	pub := ed25519.PublicKey(req.PublicKey)
	var resp *apiv1.EnrollResponse
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		now := s.now().UTC()
		tok, err := tx.UseToken(ctx, hashSecret(req.Token), RoleEnroll, now)
		if err != nil {
			return err
		}
		ev := &evidence.KeyEvent{Kind: evidence.Enroll, AgentID: agentID, KeyID: dsse.KeyID(pub), PublicKey: pub, FromSeq: 1,
			Labels: tok.Labels, Host: hostFacts(req), Time: now}
		app, err := tx.NewAppender(ctx)
		if err != nil {
			return err
		}
		entry, err := s.appendKeyEvent(app, ev, now)
		if err != nil {
			return err
		}
		a := &store.Agent{ID: agentID, CredHash: hashSecret(secret), Hostname: req.Hostname, Facts: req.Facts, Labels: tok.Labels,
			EnrolledAt: now, LastSeen: now, Link: entry.Digest}
		if err := tx.InsertAgent(ctx, a, store.AgentKey{AgentID: agentID, KeySpan: evidence.KeySpan{From: 1}, KeyID: dsse.KeyID(pub), Public: pub}); err != nil {
			return err
		}
		note, err := s.checkpoint(ctx, tx, app)
		if err != nil {
			return err
		}
		resp = &apiv1.EnrollResponse{AgentID: agentID, Credential: agentID + "." + secret, Enrollment: json.RawMessage(entry.Envelope),
			Genesis: entry.Digest, LogIndex: entry.Index, Checkpoint: string(note), ServerKeys: s.keys.ServerPub(), Labels: tok.Labels}
		return nil
	})
	return resp, err
}

func hostFacts(req apiv1.EnrollRequest) map[string]string {
	f := map[string]string{"hostname": req.Hostname}
	for k, v := range req.Facts {
		f[k] = v
	}
	return f
}

// handleAgentRevoke is POST /v1/agents/{id}/revoke: records after the
// agent's last accepted seq are refused from now on; earlier ones stay
// verifiable, and the log says from where.
func (s *Server) handleAgentRevoke(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ctx := r.Context()
	var after uint64
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		a, err := tx.LockAgent(ctx, id)
		if err != nil {
			return err
		}
		if a.Revoked() {
			after = a.RevokedAfter
			return nil
		}
		now := s.now().UTC()
		after = a.LastSeq
		if err := tx.RevokeAgent(ctx, id, now, after); err != nil {
			return err
		}
		app, err := tx.NewAppender(ctx)
		if err != nil {
			return err
		}
		if _, err := s.appendKeyEvent(app, &evidence.KeyEvent{Kind: evidence.Revoke, AgentID: id, AfterSeq: after, Time: now}, now); err != nil {
			return err
		}
		_, err = s.checkpoint(ctx, tx, app)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no agent %s", id)
	}
	if err != nil {
		return fmt.Errorf("revoke agent %s: %w", id, err)
	}
	s.log.Info("agent revoked", "agent", id, "after_seq", after)
	writeJSON(w, http.StatusOK, map[string]any{"agent_id": id, "revoked_after_seq": after})
	return nil
}

func (s *Server) handleTokenCreate(w http.ResponseWriter, r *http.Request) error {
	var req apiv1.TokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if !ValidRole(req.Role) {
		return badRequest("role must be enroll, admin, analyst or auditor")
	}
	if req.MaxUses < 0 {
		return badRequest("max_uses must be ≥ 0 (0: unlimited)")
	}
	if req.Name == "" {
		req.Name = req.Role
	}
	secret, tok, err := s.newToken(r.Context(), req.Role, req.Name, req.Expires.UTC(), req.MaxUses, req.Labels)
	if err != nil {
		return fmt.Errorf("create %s token: %w", req.Role, err)
	}
	s.log.Info("token created", "id", tok.ID, "role", tok.Role, "by", principalFrom(r.Context()).token.ID)
	writeJSON(w, http.StatusCreated, apiv1.TokenResponse{ID: tok.ID, Role: tok.Role, Secret: secret})
	return nil
}

func (s *Server) handleTokenList(w http.ResponseWriter, r *http.Request) error {
	toks, err := s.db.Tokens(r.Context())
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	writeJSON(w, http.StatusOK, apiv1.Page[store.Token]{Items: toks})
	return nil
}

func (s *Server) handleTokenRevoke(w http.ResponseWriter, r *http.Request) error {
	err := s.db.RevokeToken(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no token %s", r.PathValue("id"))
	}
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", r.PathValue("id"), err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"revoked": r.PathValue("id")})
	return nil
}
