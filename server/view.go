package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/annexa-dev/annexa/evidence/selector"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/store"
)

// A read token may be limited to a label selector (an external auditor
// who may see the finance team's machines only). The limit travels in the
// request's context as the token's view; every query function narrows to
// it: lists filter, a host or a log entry outside it is not found, and an
// export is refused (a bundle carries the whole log for its proofs).

type viewKey struct{}

// withView limits ctx's queries to what sel selects.
func withView(ctx context.Context, sel selector.Selector) context.Context {
	if sel.Empty() {
		return ctx
	}
	return context.WithValue(ctx, viewKey{}, &sel)
}

// viewFrom is ctx's view, nil when it sees everything.
func viewFrom(ctx context.Context) *selector.Selector {
	v, _ := ctx.Value(viewKey{}).(*selector.Selector)
	return v
}

// tokenView is the view of a token.
func tokenView(ctx context.Context, t *store.Token) (context.Context, error) {
	if t == nil || t.Selector == "" {
		return ctx, nil
	}
	sel, err := selector.Parse(t.Selector)
	if err != nil {
		return nil, fmt.Errorf("token %s selector %q: %w", t.ID, t.Selector, err)
	}
	return withView(ctx, sel), nil
}

// errOutOfView answers for what a limited token may not see: not found, so
// it learns nothing of what lies outside.
func errOutOfView(what string) error {
	return clientError(http.StatusNotFound, apiv1.CodeNotFound, "%s", what)
}

// agentVisible says whether ctx's view includes an agent.
func (s *Server) agentVisible(ctx context.Context, agentID string) (bool, error) {
	v := viewFrom(ctx)
	if v == nil {
		return true, nil
	}
	a, err := s.db.Agent(ctx, agentID)
	if errors.Is(err, store.ErrNotFound) {
		// A person's attestations are the organisation's, not a host's:
		// every view sees them, as it sees GET /v1/attestations.
		_, err := s.db.Person(ctx, agentID)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	if err != nil {
		return false, err
	}
	return v.Match(a.Labels), nil
}

// viewAgents are the agents ctx's view includes (nil: no view).
func (s *Server) viewAgents(ctx context.Context) (map[string]bool, error) {
	v := viewFrom(ctx)
	if v == nil {
		return nil, nil
	}
	out := map[string]bool{}
	err := s.eachAgent(ctx, func(a *store.Agent) error {
		if v.Match(a.Labels) {
			out[a.ID] = true
		}
		return nil
	})
	return out, err
}
