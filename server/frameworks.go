package server

import (
	"context"
	"fmt"
	"net/url"
	"sort"

	"github.com/annexa-dev/annexa/evidence/catalog"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// Other frameworks (the 2013 Annex A, NIST CSF, CIS Controls, an
// organisation's own policy) read through their mapping onto Annex A 2022:
// each requirement's state is its mapped controls' state, as /v1/controls
// gives it, under the same filters (?at=, ?label=, ?in_scope=).

func frameworkInfo(f *catalog.Framework) apiv1.Framework {
	return apiv1.Framework{Name: f.Name, Title: f.Title, Source: f.Source, Note: f.Note, Requirements: len(f.Requirements)}
}

// queryFrameworks is GET /v1/frameworks.
func (s *Server) queryFrameworks(context.Context, url.Values) ([]apiv1.Framework, error) {
	out := make([]apiv1.Framework, 0, len(s.frameworks))
	for _, f := range s.frameworks {
		out = append(out, frameworkInfo(f))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// queryFramework is GET /v1/frameworks/{name}.
func (s *Server) queryFramework(ctx context.Context, name string, v url.Values) (*apiv1.FrameworkState, error) {
	f, ok := s.frameworks[name]
	if !ok {
		return nil, notFound("no framework mapping %q (GET /v1/frameworks lists them; add your own with --frameworks DIR)", name)
	}
	controls, err := s.queryControls(ctx, v)
	if err != nil {
		return nil, err
	}
	byID := map[string]apiv1.ControlSummary{}
	for _, c := range controls.Controls {
		byID[c.ID] = c
	}
	resp := &apiv1.FrameworkState{Framework: frameworkInfo(f), At: controls.At, Counts: map[string]int{}, Requirements: make([]apiv1.RequirementState, 0, len(f.Requirements))}
	for _, r := range f.Requirements {
		rs := apiv1.RequirementState{ID: r.ID, Title: r.Title}
		var statuses []string
		for _, id := range r.Controls {
			c, ok := byID[id]
			if !ok {
				return nil, fmt.Errorf("framework %s: control %s is not in the catalog", name, id)
			}
			st := c.Status()
			statuses = append(statuses, st)
			rs.Controls = append(rs.Controls, apiv1.RequirementControl{ID: id, Title: c.Title, Status: st})
		}
		rs.Status = apiv1.RequirementStatus(statuses)
		resp.Counts[rs.Status]++
		resp.Requirements = append(resp.Requirements, rs)
	}
	return resp, nil
}
