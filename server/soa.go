package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/bundle"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/store"
)

// The Statement of Applicability (ISO/IEC 27001 clause 6.1.3 d): every
// Annex A control, applicable or excluded with a justification, its
// implementation status and owner as an admin sets them, beside the
// evidence the fleet holds for it, and flagged where the two disagree.

// querySoA is GET /v1/soa and the dashboard's SoA pages, now or ?at= an
// instant (the evidence as of then; the entries as they stand).
func (s *Server) querySoA(ctx context.Context, v url.Values) (*apiv1.SoAResponse, error) {
	controls, err := s.queryControls(ctx, v)
	if err != nil {
		return nil, err
	}
	entries, err := s.db.SoA(ctx)
	if err != nil {
		return nil, fmt.Errorf("soa: %w", err)
	}
	resp := &apiv1.SoAResponse{At: controls.At, Controls: make([]apiv1.SoAControl, 0, len(controls.Controls))}
	for _, c := range controls.Controls {
		line := apiv1.SoAControl{ID: c.ID, Theme: c.Theme, Title: c.Title, Applicable: true,
			Evidence: apiv1.SoAEvidence{Automated: c.Automated, Checks: c.Checks, Assets: c.Assets, Passing: c.Passing,
				Failing: c.Failing, Error: c.Error, Stale: c.Stale, NotApplicable: c.NotApplicable, AttestedCounts: c.AttestedCounts}}
		if e, ok := entries[c.ID]; ok {
			line.Assessed, line.Applicable, line.Status, line.Owner, line.Justification = true, e.Applicable, e.Status, e.Owner, e.Justification
			line.UpdatedAt, line.UpdatedBy = e.UpdatedAt, e.UpdatedBy
		}
		line.Flags = soaFlags(line)
		if line.Applicable {
			resp.Applicable++
			if line.Status == "implemented" {
				resp.Implemented++
			}
		} else {
			resp.Excluded++
		}
		if len(line.Flags) > 0 {
			resp.Flagged++
		}
		resp.Controls = append(resp.Controls, line)
	}
	return resp, nil
}

// soaFlags are the questions an auditor would ask of a line.
func soaFlags(c apiv1.SoAControl) []string {
	var f []string
	ev := c.Evidence
	if !c.Applicable {
		if ev.Assets > 0 {
			f = append(f, fmt.Sprintf("excluded, yet %d assets report evidence for it", ev.Assets))
		}
		if n := ev.Attested + ev.AttestedStale; n > 0 {
			f = append(f, fmt.Sprintf("excluded, yet %d people attest it", n))
		}
		return f
	}
	if !c.Assessed {
		f = append(f, "not assessed: applicable by default, no status, owner or justification")
	} else if c.Status == "" {
		f = append(f, "no implementation status")
	}
	switch {
	case ev.Attested > 0:
		// People vouch for it; the automated state, if any, below.
	case ev.AttestedStale > 0 && (!ev.Automated || ev.Assets == 0):
		f = append(f, fmt.Sprintf("stale: the attestation of %d people has lapsed, and nothing else evidences it", ev.AttestedStale))
	case !ev.Automated:
		f = append(f, "no evidence: no automated check covers it, and it has no attestation")
	case ev.Assets == 0:
		f = append(f, "no evidence: no asset has reported on its checks ("+strings.Join(ev.Checks, ", ")+")")
	}
	if ev.AttestedExpiring > 0 {
		f = append(f, fmt.Sprintf("the attestation of %d people lapses within 30 days", ev.AttestedExpiring))
	}
	if ev.Failing > 0 {
		f = append(f, fmt.Sprintf("failing on %d of %d assets", ev.Failing, ev.Assets))
	}
	if ev.Error > 0 {
		f = append(f, fmt.Sprintf("evidence in error on %d assets", ev.Error))
	}
	if ev.Stale > 0 {
		f = append(f, fmt.Sprintf("evidence stale on %d assets", ev.Stale))
	}
	return f
}

// updateSoA is PUT /v1/soa/{id}'s and the dashboard's edit: the fields
// given replace the entry's, checked together.
func (s *Server) updateSoA(ctx context.Context, id string, req apiv1.SoARequest, by string) (*apiv1.SoAControl, error) {
	ids, err := s.catalog.Resolve(id)
	if err != nil {
		return nil, clientError(http.StatusNotFound, apiv1.CodeUnknownControl, "%s", err.Error())
	}
	if len(ids) != 1 {
		return nil, clientError(http.StatusBadRequest, apiv1.CodeAmbiguousControl, "%s maps to several 2022 controls: %s; set each", id, strings.Join(ids, ", "))
	}
	if req.Status != nil && *req.Status != "" && !slices.Contains(apiv1.SoAStatuses, *req.Status) {
		return nil, badRequest("status %q: want %s", *req.Status, strings.Join(apiv1.SoAStatuses, ", "))
	}
	for name, p := range map[string]*string{"owner": req.Owner, "justification": req.Justification} {
		if p != nil && len(*p) > 2000 {
			return nil, badRequest("%s: at most 2000 characters", name)
		}
	}
	_, err = s.db.UpdateSoA(ctx, ids[0], store.SoAEntry{Applicable: true}, func(e *store.SoAEntry) error {
		if req.Applicable != nil {
			e.Applicable = *req.Applicable
		}
		if req.Status != nil {
			e.Status = *req.Status
		}
		if req.Owner != nil {
			e.Owner = strings.TrimSpace(*req.Owner)
		}
		if req.Justification != nil {
			e.Justification = strings.TrimSpace(*req.Justification)
		}
		if !e.Applicable {
			if e.Justification == "" {
				return badRequest("excluding %s needs a justification: the certification body asks why", ids[0])
			}
			e.Status = "" // an excluded control is not implemented or planned
		}
		return nil
	}, by, s.now().UTC(), func(tx *store.Tx, e store.SoAEntry, diff map[string][2]string) error {
		return s.logSoAChange(ctx, tx, e, diff)
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("statement of applicability changed", "control", ids[0], "by", by)
	all, err := s.querySoA(ctx, url.Values{})
	if err != nil {
		return nil, err
	}
	for i := range all.Controls {
		if all.Controls[i].ID == ids[0] {
			return &all.Controls[i], nil
		}
	}
	return nil, fmt.Errorf("soa: %s missing after its update", ids[0])
}

func (s *Server) handleSoAUpdate(w http.ResponseWriter, r *http.Request) error {
	var req apiv1.SoARequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	line, err := s.updateSoA(r.Context(), r.PathValue("id"), req, principalFrom(r.Context()).token.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, line)
	return nil
}

// querySoAHistory is GET /v1/soa/history[?control=]: who changed what, when.
func (s *Server) querySoAHistory(ctx context.Context, v url.Values) (*apiv1.Page[apiv1.SoAChange], error) {
	control := ""
	if c := v.Get("control"); c != "" {
		ids, err := s.catalog.Resolve(c)
		if err != nil {
			return nil, badQuery(err)
		}
		if len(ids) != 1 {
			return nil, clientError(http.StatusBadRequest, apiv1.CodeAmbiguousControl, "%s maps to several 2022 controls: %s", c, strings.Join(ids, ", "))
		}
		control = ids[0]
	}
	limit := 200
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 10000 {
			return nil, badRequest("limit must be 1 to 10000")
		}
		limit = n
	}
	cs, err := s.db.SoAChanges(ctx, control, limit)
	if err != nil {
		return nil, fmt.Errorf("soa history: %w", err)
	}
	page := &apiv1.Page[apiv1.SoAChange]{Items: []apiv1.SoAChange{}}
	for _, c := range cs {
		page.Items = append(page.Items, apiv1.SoAChange(c))
	}
	return page, nil
}

// soaAt is the Statement of Applicability as it stood at t: today's
// entries with every change made after t undone, newest first.
func (s *Server) soaAt(ctx context.Context, t time.Time) (*bundle.SoA, error) {
	entries, err := s.db.SoA(ctx)
	if err != nil {
		return nil, err
	}
	changes, err := s.db.SoAChanges(ctx, "", math.MaxInt32)
	if err != nil {
		return nil, err
	}
	// Changes are newest first: undo those after t; the newest at or
	// before t says when and by whom the entry was last set.
	last := map[string]store.SoAChange{}
	for _, c := range changes {
		if !c.At.After(t) {
			if _, ok := last[c.Control]; !ok {
				last[c.Control] = c
			}
			continue
		}
		e, ok := entries[c.Control]
		if !ok {
			e = store.SoAEntry{Control: c.Control, Applicable: true}
		}
		for field, v := range c.Changes {
			switch field {
			case "applicable":
				e.Applicable = v[0] != "excluded"
			case "status":
				e.Status = v[0]
			case "owner":
				e.Owner = v[0]
			case "justification":
				e.Justification = v[0]
			}
		}
		entries[c.Control] = e
	}
	sel, err := s.scope(ctx)
	if err != nil {
		return nil, err
	}
	out := &bundle.SoA{At: t.UTC(), Scope: sel.String()}
	for _, c := range s.catalog.Controls() {
		line := bundle.SoALine{Control: c.ID, Applicable: true}
		if ch, ok := last[c.ID]; ok {
			e := entries[c.ID]
			line = bundle.SoALine{Control: c.ID, Assessed: true, Applicable: e.Applicable, Status: e.Status, Owner: e.Owner,
				Justification: e.Justification, UpdatedAt: ch.At, UpdatedBy: ch.By}
		}
		out.Controls = append(out.Controls, line)
	}
	return out, nil
}

// logSoAChange appends a change to the transparency log, signed by the
// enrollment authority, in the change's transaction.
func (s *Server) logSoAChange(ctx context.Context, tx *store.Tx, e store.SoAEntry, diff map[string][2]string) error {
	env, err := evidence.SignSoAChange(s.keys.Enroll, &evidence.SoAChange{Control: e.Control, By: e.UpdatedBy, Time: e.UpdatedAt,
		Applicable: e.Applicable, Status: e.Status, Owner: e.Owner, Justification: e.Justification, Changes: diff})
	if err != nil {
		return err
	}
	raw, err := json.Marshal(env)
	if err != nil {
		return err
	}
	app, err := tx.NewAppender(ctx)
	if err != nil {
		return err
	}
	if _, err := app.Append(&store.LogEntry{Kind: store.KindSoAChange, Digest: evidence.Digest(env.Payload), Envelope: raw, ReceivedAt: s.now().UTC()}); err != nil {
		return err
	}
	_, err = s.checkpoint(ctx, tx, app)
	return err
}
