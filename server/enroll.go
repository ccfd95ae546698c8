package server

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/evidence/selector"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/store"
	"github.com/annexa-dev/annexa/server/webhook"
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
	if err := evidence.CheckAgentKey(req.PublicKey); err != nil {
		return badRequest("public_key: %v (a 32-byte ed25519 key, base64)", err)
	}
	if strings.TrimSpace(req.Hostname) == "" {
		return badRequest("hostname is required")
	}
	if err := checkHostFacts(req.Hostname, req.Facts); err != nil {
		return badRequest("%v", err)
	}
	resp, err := s.Enroll(r.Context(), req)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.metrics.reject("bad_enroll_token")
		return clientError(http.StatusUnauthorized, apiv1.CodeUnauthenticated, "unknown enrollment token")
	case errors.Is(err, store.ErrTokenRole):
		s.metrics.reject("bad_enroll_token")
		return clientError(http.StatusForbidden, apiv1.CodeTokenUnusable, "%v: enrolling an agent takes an enroll token (annexa token create --role enroll)", err)
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
			Labels: tok.Labels, Assets: tok.Assets, Host: hostFacts(req), Time: now}
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
		if err := tx.Grant(ctx, agentID, tok.Assets, now); err != nil {
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

// Bounds on what an enrolling agent says about itself: it goes into the
// log's enrollment statement and every bundle.
const (
	maxHostname  = 253 // a DNS name
	maxFacts     = 64
	maxFactBytes = 512
)

func checkHostFacts(hostname string, facts map[string]string) error {
	if len(hostname) > maxHostname {
		return fmt.Errorf("hostname: %d bytes, at most %d", len(hostname), maxHostname)
	}
	if len(facts) > maxFacts {
		return fmt.Errorf("facts: %d, at most %d", len(facts), maxFacts)
	}
	for k, v := range facts {
		if len(k)+len(v) > maxFactBytes {
			return fmt.Errorf("fact %.40q: over %d bytes", k, maxFactBytes)
		}
	}
	return nil
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
	after, purged, err := s.revokeAgent(r.Context(), id, r.URL.Query().Get("purge") == "true")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"agent_id": id, "revoked_after_seq": after, "purged_states": purged})
	return nil
}

// revokeAgent revokes an agent (the API's and the dashboard's way): its
// records after its last accepted seq are refused, the revocation is a key
// event in the log; with purge its state leaves the current view.
func (s *Server) revokeAgent(ctx context.Context, id string, purge bool) (after uint64, purged int64, err error) {
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		a, err := tx.LockAgent(ctx, id)
		if err != nil {
			return err
		}
		if purge {
			// A polluting agent's state leaves the current view; its log
			// entries stay, verifiable, and bundles still carry them.
			if purged, err = tx.PurgeState(ctx, id); err != nil {
				return err
			}
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
		hooks, err := tx.WebhooksTx(ctx)
		if err != nil {
			return err
		}
		if err := s.enqueue(ctx, tx, hooks, webhook.AgentRevoked, map[string]any{"agent_id": id, "hostname": a.Hostname, "revoked_after_seq": after}, now); err != nil {
			return err
		}
		_, err = s.checkpoint(ctx, tx, app)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return 0, 0, notFound("no agent %s", id)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("revoke agent %s: %w", id, err)
	}
	s.log.Info("agent revoked", "agent", id, "after_seq", after, "purged_states", purged)
	return after, purged, nil
}

func (s *Server) handleTokenCreate(w http.ResponseWriter, r *http.Request) error {
	var req apiv1.TokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	resp, err := s.createToken(r.Context(), principalFrom(r.Context()).token.ID, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

// createToken checks and creates a token (the API's and the dashboard's
// way); by is the id of the admin token asking.
func (s *Server) createToken(ctx context.Context, by string, req apiv1.TokenRequest) (*apiv1.TokenResponse, error) {
	if !ValidRole(req.Role) {
		return nil, badRequest("role must be enroll, admin, analyst or auditor")
	}
	if req.MaxUses < 0 {
		return nil, badRequest("max_uses must be ≥ 0 (0: unlimited)")
	}
	if req.Selector != "" {
		if req.Role != RoleAnalyst && req.Role != RoleAuditor {
			return nil, badRequest("a selector limits analyst and auditor tokens only (an admin sees everything; an enroll token reads nothing)")
		}
		sel, err := selector.Parse(req.Selector)
		if err != nil {
			return nil, badRequest("selector: %v", err)
		}
		if sel.Empty() {
			return nil, badRequest("selector %q selects everything: leave it out", req.Selector)
		}
		req.Selector = sel.String()
	}
	if req.Role != RoleEnroll {
		// Labels, uses and grants are what an enrollment hands an agent;
		// on an API token they would be shown and do nothing.
		switch {
		case len(req.Labels) > 0:
			return nil, badRequest("labels apply to enroll tokens only (they label the agents enrolled with it)")
		case req.MaxUses > 0:
			return nil, badRequest("max_uses applies to enroll tokens only")
		case len(req.Assets) > 0:
			return nil, badRequest("assets apply to enroll tokens only (they are granted to the agents enrolled with it)")
		}
	}
	for _, a := range req.Assets {
		if err := evidence.ValidExternalAsset(a); err != nil {
			return nil, badRequest("%v", err)
		}
	}
	if !req.Expires.IsZero() {
		if err := inRange(req.Expires); err != nil {
			return nil, badRequest("expires: %v", err)
		}
		if !req.Expires.After(s.now()) {
			return nil, badRequest("expires %s is not in the future: the token would be expired at creation", req.Expires.UTC().Format(time.RFC3339))
		}
	}
	if req.Name == "" {
		req.Name = req.Role
	}
	secret, tok, err := s.newToken(ctx, &store.Token{Role: req.Role, Name: req.Name, ExpiresAt: req.Expires.UTC(), MaxUses: req.MaxUses, Labels: req.Labels, Assets: req.Assets, Selector: req.Selector})
	if err != nil {
		return nil, fmt.Errorf("create %s token: %w", req.Role, err)
	}
	s.log.Info("token created", "id", tok.ID, "role", tok.Role, "by", by)
	return &apiv1.TokenResponse{ID: tok.ID, Role: tok.Role, Secret: secret}, nil
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

// handleGrant is POST /v1/agents/{id}/grant and /ungrant: which external
// assets (cloud accounts, …) the agent's records may be about. Each change
// is a key event in the log, so an offline verifier applies the same rule.
func (s *Server) handleGrant(kind evidence.KeyEventKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req apiv1.GrantRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		if len(req.Assets) == 0 {
			return badRequest("assets: name at least one asset, e.g. aws-account:123456789012")
		}
		for _, a := range req.Assets {
			if err := evidence.ValidExternalAsset(a); err != nil {
				return badRequest("%v", err)
			}
		}
		id, ctx := r.PathValue("id"), r.Context()
		err := s.db.InTx(ctx, func(tx *store.Tx) error {
			a, err := tx.LockAgent(ctx, id)
			if err != nil {
				return err
			}
			now := s.now().UTC()
			if kind == evidence.Grant {
				err = tx.Grant(ctx, a.ID, req.Assets, now)
			} else {
				err = tx.Ungrant(ctx, a.ID, req.Assets)
			}
			if err != nil {
				return err
			}
			app, err := tx.NewAppender(ctx)
			if err != nil {
				return err
			}
			if _, err := s.appendKeyEvent(app, &evidence.KeyEvent{Kind: kind, AgentID: a.ID, Assets: req.Assets, Time: now}, now); err != nil {
				return err
			}
			_, err = s.checkpoint(ctx, tx, app)
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			return notFound("no agent %s", id)
		}
		if err != nil {
			return fmt.Errorf("%s %v to agent %s: %w", kind, req.Assets, id, err)
		}
		grants, err := s.db.AgentGrants(ctx, id)
		if err != nil {
			return fmt.Errorf("grants of %s: %w", id, err)
		}
		s.log.Info("agent grants changed", "agent", id, "kind", kind, "assets", req.Assets, "by", principalFrom(ctx).token.ID)
		writeJSON(w, http.StatusOK, map[string]any{"agent_id": id, "assets": evidence.NonNil(grants)})
		return nil
	}
}

// handleGrants is GET /v1/agents/{id}/grants: the external assets an agent
// may report on. An agent reads its own; API tokens (not enroll) read any.
func (s *Server) handleGrants(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if p := principalFrom(r.Context()); p.agent != nil && p.agent.ID != id {
		return clientError(http.StatusForbidden, apiv1.CodeForbidden, "an agent reads its own grants only")
	}
	if _, err := s.db.Agent(r.Context(), id); errors.Is(err, store.ErrNotFound) {
		return notFound("no agent %s", id)
	} else if err != nil {
		return fmt.Errorf("agent %s: %w", id, err)
	}
	if ok, err := s.agentVisible(r.Context(), id); err != nil {
		return err
	} else if !ok {
		return errOutOfView("no agent " + id)
	}
	grants, err := s.db.AgentGrants(r.Context(), id)
	if err != nil {
		return fmt.Errorf("grants of %s: %w", id, err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"agent_id": id, "assets": evidence.NonNil(grants)})
	return nil
}
