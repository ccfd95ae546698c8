package server

import (
	"context"
	"net/url"
	"time"

	"github.com/annexa-dev/annexa/evidence/bundle"
)

// FailingTrend lets the external tests check the overview's trend.
func (s *Server) FailingTrend(ctx context.Context, at time.Time, days int, labels []string) (map[string][]int, error) {
	return s.failingTrend(ctx, at, days, labels, time.Minute)
}

// ExportScope lets the external tests read an export's scope as the API would.
func (s *Server) ExportScope(ctx context.Context, v url.Values) (bundle.Scope, error) {
	return s.exportScope(ctx, v)
}
