package server

import (
	"context"
	"time"
)

// FailingTrend lets the external tests check the overview's trend.
func (s *Server) FailingTrend(ctx context.Context, at time.Time, days int, labels []string) (map[string][]int, error) {
	return s.failingTrend(ctx, at, days, labels, time.Minute)
}
