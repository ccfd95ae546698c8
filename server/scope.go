package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/annexa-dev/annexa/evidence/selector"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/store"
)

// The ISMS scope (ISO/IEC 27001 clause 4.3) as a label selector over the
// agents' labels ("env=prod,team!=lab"), kept by the server. Controls,
// hosts, the SoA and bundles are asked for "in scope" with ?in_scope=true;
// every bundle's soa.json names it.

const metaScope = "isms_scope"

// scope is the ISMS scope in force (the empty selector when none is set).
func (s *Server) scope(ctx context.Context) (selector.Selector, error) {
	raw, err := s.db.Meta(ctx, metaScope)
	if errors.Is(err, store.ErrNotFound) {
		return selector.Selector{}, nil
	}
	if err != nil {
		return selector.Selector{}, err
	}
	return selector.Parse(raw)
}

// inScope says whether the request asks for the ISMS scope only.
func inScope(v url.Values) (bool, error) {
	switch v.Get("in_scope") {
	case "":
		return false, nil
	case "true", "1":
		return true, nil
	}
	return false, fmt.Errorf("in_scope %q: want true", v.Get("in_scope"))
}

// scopeAgents are the agents the ISMS scope selects.
func (s *Server) scopeAgents(ctx context.Context) ([]string, error) {
	sel, err := s.scope(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	err = s.eachAgent(ctx, func(a *store.Agent) error {
		if sel.Match(a.Labels) {
			out = append(out, a.ID)
		}
		return nil
	})
	return out, err
}

func (s *Server) queryScope(ctx context.Context, _ url.Values) (*apiv1.Scope, error) {
	sel, err := s.scope(ctx)
	if err != nil {
		return nil, err
	}
	if sel.Empty() {
		// Every agent is in scope: a count, not a read of each (the
		// dashboard's overview shows it on every render).
		n, err := s.db.CountAgents(ctx)
		if err != nil {
			return nil, err
		}
		return &apiv1.Scope{Selector: sel.String(), Agents: n}, nil
	}
	agents, err := s.scopeAgents(ctx)
	if err != nil {
		return nil, err
	}
	return &apiv1.Scope{Selector: sel.String(), Agents: len(agents)}, nil
}

func (s *Server) handleScopeSet(w http.ResponseWriter, r *http.Request) error {
	var req apiv1.Scope
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	sel, err := selector.Parse(req.Selector)
	if err != nil {
		return badRequest("%v", err)
	}
	err = s.db.InTx(r.Context(), func(tx *store.Tx) error {
		if _, err := tx.LockMeta(r.Context(), metaScope, ""); err != nil {
			return err
		}
		return tx.SetMeta(r.Context(), metaScope, sel.String())
	})
	if err != nil {
		return fmt.Errorf("set scope: %w", err)
	}
	s.log.Info("ISMS scope set", "selector", sel.String(), "by", principalFrom(r.Context()).token.ID)
	resp, err := s.queryScope(r.Context(), nil)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
