package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/catalog"
	"github.com/annexa-dev/annexa/evidence/compliance"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/store"
)

// checkStatus is one result's contribution to its asset's status.
func checkStatus(st *apiv1.CheckState) string {
	return string(compliance.Of(st.Status, st.Stale))
}

// query is the filter every read endpoint understands.
type query struct {
	at       time.Time
	atGiven  bool
	filter   store.StateFilter
	statuses []string
	from, to time.Time
	limit    int
	// cursor is the page to continue from, as the previous page's Next
	// gave it: each list reads it its own way (decodeCursor).
	cursor string
	// labels are the ?label= filters as given; narrowed filters are the
	// ones beyond them (control, check, asset, agent, status).
	labels         []string
	labelsResolved bool
	narrowed       bool
	// scoped: ?in_scope=true; filter.Agents holds the scope's agents.
	scoped bool
}

// fleetWide says the fleet's incremental counts answer q: now, the whole
// fleet or one label's agents.
func (q *query) fleetWide() bool { return !q.atGiven && !q.narrowed && len(q.labels) <= 1 }

// The instants the server keeps: it stores times as int64 nanoseconds
// since 1970, which end in April 2262. Every instant a request names must
// lie between; one outside would wrap around (a 2300 date indexed as 1715,
// an export to 9999 that is silently empty).
var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC().Truncate(time.Second)
)

// inRange refuses an instant outside what the store can hold.
func inRange(t time.Time) error {
	if t.Before(minTime) || t.After(maxTime) {
		return fmt.Errorf("time %s is out of range: %s to %s", t.Format(time.RFC3339), minTime.Format(time.RFC3339), maxTime.Format(time.RFC3339))
	}
	return nil
}

func parseTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), inRange(t)
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-03-01T12:00:00Z) or a date (2026-03-01)", v)
}

// parseQuery reads ?control= ?check= ?asset= ?agent= ?label=k=v ?status=
// ?at= ?from= ?to= ?limit= ?cursor=. Controls are resolved through the
// catalog (2013 ids too) into their checks.
func (s *Server) parseQuery(ctx context.Context, v url.Values) (*query, error) {
	q, err := s.parseQueryLazy(ctx, v)
	if err != nil {
		return nil, err
	}
	return q, s.resolveLabels(ctx, q)
}

// resolveLabels turns ?label= into the agents that have them. It reads
// every agent, so the queries the fleet's counts answer skip it.
func (s *Server) resolveLabels(ctx context.Context, q *query) error {
	if len(q.labels) == 0 || q.labelsResolved {
		return nil
	}
	q.labelsResolved = true
	agents, err := s.agentsWithLabels(ctx, q.labels)
	if err != nil {
		return err
	}
	if len(agents) == 0 {
		q.filter.None = true // no agent has these labels
	}
	q.filter.Agents = append(q.filter.Agents, agents...)
	return nil
}

// parseQueryLazy is parseQuery without resolving labels into agents.
func (s *Server) parseQueryLazy(ctx context.Context, v url.Values) (*query, error) {
	q := &query{at: s.now().UTC(), limit: 100}
	var err error
	if a := v.Get("at"); a != "" {
		if q.at, err = parseTime(a); err != nil {
			return nil, err
		}
		q.atGiven = true
		q.filter.At = q.at
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.from}, {"to", &q.to}} {
		if a := v.Get(p.name); a != "" {
			if *p.dst, err = parseTime(a); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range v["control"] {
		ids, err := s.catalog.Resolve(c)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			checks := s.mapping.Checks(id)
			if len(checks) == 0 {
				q.filter.None = true // a control with no automated check
			}
			q.filter.Checks = append(q.filter.Checks, checks...)
		}
	}
	for _, c := range v["check"] {
		if !s.mapping.Has(c) && !evidence.IsPluginFailureCheck(c) {
			return nil, unknownCheckError(c, s.mapping.Nearest(c))
		}
	}
	q.filter.Checks = append(q.filter.Checks, v["check"]...)
	for _, a := range v["asset"] {
		if _, err := evidence.ParseAsset(a); err != nil {
			return nil, err
		}
	}
	for _, a := range v["agent"] {
		if !strings.HasPrefix(a, "agt-") {
			return nil, fmt.Errorf("agent %q: agent ids look like agt-…, not hostnames (annexa hosts lists both)", a)
		}
	}
	q.filter.Assets = v["asset"]
	q.filter.Agents = v["agent"]
	for _, st := range v["status"] {
		switch st {
		case "pass", "fail", "error", "not_applicable":
			q.statuses = append(q.statuses, st)
		default:
			return nil, fmt.Errorf("status %q: want pass, fail, error or not_applicable", st)
		}
	}
	q.labels = v["label"]
	if _, err := apiv1.ParseLabels(q.labels); err != nil {
		return nil, err
	}
	q.narrowed = len(v["control"])+len(v["check"])+len(v["asset"])+len(v["agent"])+len(v["status"]) > 0
	// The ISMS scope: its agents, resolved now (a scan of the agents; an
	// opt-in filter).
	scoped, err := inScope(v)
	if err != nil {
		return nil, err
	}
	if scoped {
		agents, err := s.scopeAgents(ctx)
		if err != nil {
			return nil, err
		}
		if len(agents) == 0 {
			q.filter.None = true
		}
		q.filter.Agents = append(q.filter.Agents, agents...)
		q.narrowed, q.scoped = true, true
	}
	// A token limited to a selector sees its agents only, whatever else
	// the request asks.
	visible, err := s.viewAgents(ctx)
	if err != nil {
		return nil, err
	}
	if visible != nil {
		var keep []string
		if len(q.filter.Agents) > 0 || q.filter.None {
			for _, a := range q.filter.Agents {
				if visible[a] {
					keep = append(keep, a)
				}
			}
		} else {
			for a := range visible {
				keep = append(keep, a)
			}
			sort.Strings(keep)
		}
		if len(keep) == 0 {
			q.filter.None = true
		}
		q.filter.Agents, q.narrowed, q.scoped = keep, true, true
	}
	if l := v.Get("limit"); l != "" {
		if q.limit, err = strconv.Atoi(l); err != nil || q.limit < 1 || q.limit > 10000 {
			return nil, errors.New("limit must be 1 to 10000")
		}
	}
	q.cursor = v.Get("cursor")
	if !q.from.IsZero() && !q.to.IsZero() && q.to.Before(q.from) {
		return nil, fmt.Errorf("to (%s) is before from (%s)", q.to.Format(time.RFC3339), q.from.Format(time.RFC3339))
	}
	return q, nil
}

func (s *Server) agentsWithLabels(ctx context.Context, labels []string) ([]string, error) {
	want, err := apiv1.ParseLabels(labels)
	if err != nil {
		return nil, err
	}
	var out []string
	err = s.eachAgent(ctx, func(a *store.Agent) error {
		for k, v := range want {
			if a.Labels[k] != v {
				return nil
			}
		}
		out = append(out, a.ID)
		return nil
	})
	return out, err
}

func (s *Server) eachAgent(ctx context.Context, fn func(*store.Agent) error) error {
	after := ""
	for {
		page, err := s.db.Agents(ctx, after, 1000)
		if err != nil {
			return err
		}
		for i := range page {
			if err := fn(&page[i]); err != nil {
				return err
			}
		}
		if len(page) < 1000 {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// states loads the state rows matching q, marking stale ones against q.at.
func (s *Server) states(ctx context.Context, q *query, fn func(*apiv1.CheckState) error) error {
	return s.db.States(ctx, q.filter, func(st *store.State) error {
		cs := &apiv1.CheckState{Asset: st.Asset, AgentID: st.AgentID, Check: st.Check, Controls: s.mapping.Controls(st.Check),
			Status: st.Status, Reason: st.Reason, CollectedAt: st.CollectedAt, Since: st.Since, LogIndex: st.LogIndex,
			Stale: st.CollectedAt.Add(s.mapping.Freshness(st.Check, s.cfg.Freshness)).Before(q.at)}
		return fn(cs)
	})
}

// errUnknownCheck is a check id the server's mapping does not hold.
var errUnknownCheck = errors.New("unknown check")

func unknownCheckError(check, nearest string) error {
	if nearest != "" {
		return fmt.Errorf("%w %q: did you mean %s?", errUnknownCheck, check, nearest)
	}
	return fmt.Errorf("%w %q: not in the server's mapping", errUnknownCheck, check)
}

// badQuery is a query parameter the server cannot use.
func badQuery(err error) error {
	if errors.Is(err, catalog.ErrUnknownControl) {
		return clientError(http.StatusBadRequest, apiv1.CodeUnknownControl, "%v", err)
	}
	if errors.Is(err, errUnknownCheck) {
		return clientError(http.StatusBadRequest, apiv1.CodeUnknownCheck, "%v", err)
	}
	return badRequest("%v", err)
}

// controlRollup computes per control and asset the worst status, from the
// state rows q selects (counts and a page of assets; a page's check results
// are read for that page alone).
func (s *Server) controlRollup(ctx context.Context, q *query) (*compliance.Rollup[struct{}], error) {
	roll := compliance.NewRollup[struct{}](false)
	filter := q.filter
	if q.atGiven {
		// Statuses and staleness are all a rollup reads: a past instant
		// may be answered from the state snapshots.
		filter.Freshness = func(check string) time.Duration { return s.mapping.Freshness(check, s.cfg.Freshness) }
		// The fleet's state, brought up to date now, knows which pairs
		// nothing reached since the snapshot.
		if err := s.withFleet(ctx, func(*fleetState) error { return nil }); err != nil {
			return nil, err
		}
		filter.Current = s.current
	}
	// Only the status counts: each row goes straight to the rollup (a
	// fleet's past instant is millions of rows), its check's controls and
	// freshness looked up when the check changes.
	var (
		check    string
		controls []string
		fresh    time.Duration
	)
	err := s.db.States(ctx, filter, func(st *store.State) error {
		if st.Check != check {
			check, controls, fresh = st.Check, s.mapping.Controls(st.Check), s.mapping.Freshness(st.Check, s.cfg.Freshness)
		}
		roll.Add(controls, st.Asset, compliance.Of(st.Status, st.CollectedAt.Add(fresh).Before(q.at)), struct{}{})
		return nil
	})
	return roll, err
}

// controlCounts counts each control's assets by status: from the fleet's
// incremental state when q asks about now for the whole fleet or one
// label (O(controls)), else by rolling up the state rows q selects.
func (s *Server) controlCounts(ctx context.Context, q *query) (map[string]compliance.Counts, error) {
	if q.fleetWide() {
		var out map[string]compliance.Counts
		label := ""
		if len(q.labels) == 1 {
			label = q.labels[0]
		}
		err := s.withFleet(ctx, func(f *fleetState) error {
			out = f.controlCounts(label)
			return nil
		})
		return out, err
	}
	if err := s.resolveLabels(ctx, q); err != nil {
		return nil, err
	}
	roll, err := s.controlRollup(ctx, q)
	if err != nil {
		return nil, err
	}
	out := map[string]compliance.Counts{}
	for _, c := range roll.Controls() {
		out[c] = roll.Counts(c)
	}
	return out, nil
}

func (s *Server) summary(c catalog.Control, n compliance.Counts) apiv1.ControlSummary {
	cs := apiv1.ControlSummary{ID: c.ID, Theme: c.Theme, Title: c.Title, Checks: s.mapping.Checks(c.ID)}
	cs.Automated = len(cs.Checks) > 0
	cs.Covered = n.Assets > 0
	cs.Assets, cs.Passing, cs.Failing, cs.Error, cs.Stale, cs.NotApplicable = n.Assets, n.Passing, n.Failing, n.Error, n.Stale, n.NotApplicable
	return cs
}

// queryControls is GET /v1/controls and the dashboard's overview: all 93
// controls with the fleet's state for each, now or ?at= a past instant.
func (s *Server) queryControls(ctx context.Context, v url.Values) (*apiv1.ControlsResponse, error) {
	q, err := s.parseQueryLazy(ctx, v)
	if err != nil {
		return nil, badQuery(err)
	}
	counts, err := s.controlCounts(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("controls: %w", err)
	}
	att, err := s.attestedCounts(ctx, q.at)
	if err != nil {
		return nil, fmt.Errorf("controls: %w", err)
	}
	resp := apiv1.ControlsResponse{At: q.at, Total: catalog.Total}
	for _, c := range s.catalog.Controls() {
		sum := s.summary(c, counts[c.ID])
		attestSummary(&sum, att[c.ID])
		if sum.Automated {
			resp.Automated++
		}
		if sum.Covered {
			resp.Covered++
		}
		resp.Controls = append(resp.Controls, sum)
	}
	return &resp, nil
}

// queryControl is GET /v1/controls/{id}: which assets pass or fail it, and
// why (their check results).
func (s *Server) queryControl(ctx context.Context, id string, v url.Values) (*apiv1.ControlDetail, error) {
	ids, err := s.catalog.Resolve(id)
	if err != nil {
		return nil, clientError(http.StatusNotFound, apiv1.CodeUnknownControl, "%s", err.Error())
	}
	if len(ids) != 1 {
		return nil, clientError(http.StatusBadRequest, apiv1.CodeAmbiguousControl, "%s", fmt.Sprintf("%s maps to several 2022 controls: %s", id, strings.Join(ids, ", ")))
	}
	c, _ := s.catalog.Control(ids[0])
	v = maps.Clone(v)
	narrowed := len(v["control"])+len(v["check"])+len(v["asset"])+len(v["agent"])+len(v["status"]) > 0
	v.Set("control", c.ID)
	if v.Get("limit") == "" {
		v.Set("limit", "1000")
	}
	q, err := s.parseQueryLazy(ctx, v)
	if err != nil {
		return nil, badQuery(err)
	}
	q.narrowed = narrowed || q.scoped // the control itself narrows nothing
	if !q.fleetWide() {
		if err := s.resolveLabels(ctx, q); err != nil {
			return nil, badQuery(err)
		}
	}
	// Assets come a page at a time, worst first, then by asset; the
	// counts are the whole fleet's.
	list := "control:" + c.ID
	key, err := decodeCursor(q.cursor, list, 2)
	if err != nil {
		return nil, err
	}
	afterRank, after := int64(-1), ""
	if key != nil {
		var ok1, ok2 bool
		afterRank, ok1 = keyInt(key, 0)
		after, ok2 = keyString(key, 1)
		if !ok1 || !ok2 {
			return nil, badRequest("cursor %q is not one this list gave", q.cursor)
		}
	}
	var page []assetRank
	d := apiv1.ControlDetail{At: q.at, AssetsDetail: []apiv1.AssetControl{}}
	if q.fleetWide() {
		// The fleet's state orders the assets and gives the counts; the
		// page's rows come from the state table.
		err := s.withFleet(ctx, func(f *fleetState) error {
			label := ""
			if len(q.labels) == 1 {
				label = q.labels[0]
			}
			d.ControlSummary = s.summary(c, f.controlCounts(label)[c.ID])
			page = f.controlPage(c.ID, label, afterRank, after, q.limit+1)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("control: %w", err)
		}
	} else {
		roll, err := s.controlRollup(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("control: %w", err)
		}
		d.ControlSummary = s.summary(c, roll.Counts(c.ID))
		for _, a := range roll.Page(c.ID, int(afterRank), after, q.limit+1) {
			page = append(page, assetRank{Asset: a.Asset, Rank: a.Status.Rank()})
		}
	}
	d.Attestations = []apiv1.Attestation{}
	all, err := s.attestView(ctx, q.at, true)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	var n attested
	for _, a := range newestPerPerson(all)[c.ID] {
		d.Attestations = append(d.Attestations, a)
		n.add(a.Status)
	}
	attestSummary(&d.ControlSummary, n)
	if len(page) > q.limit {
		page = page[:q.limit]
		last := page[len(page)-1]
		d.Next = cursor{List: list, Key: []any{last.Rank, last.Asset}}.encode()
	}
	if len(page) > 0 {
		byAsset := map[string]int{}
		for _, a := range page {
			byAsset[a.Asset] = len(d.AssetsDetail)
			d.AssetsDetail = append(d.AssetsDetail, apiv1.AssetControl{Asset: a.Asset, Status: string(rankStatus(a.Rank))})
		}
		pq := *q
		pq.filter.Assets = make([]string, 0, len(page))
		for _, a := range page {
			pq.filter.Assets = append(pq.filter.Assets, a.Asset)
		}
		err := s.states(ctx, &pq, func(cs *apiv1.CheckState) error {
			ac := &d.AssetsDetail[byAsset[cs.Asset]]
			ac.Checks = append(ac.Checks, *cs)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("control: %w", err)
		}
		hostnames := map[string]string{}
		for i := range d.AssetsDetail {
			ac := &d.AssetsDetail[i]
			if len(ac.Checks) > 0 {
				ac.AgentID = ac.Checks[0].AgentID
			}
			if ac.AgentID != "" {
				name, ok := hostnames[ac.AgentID]
				if !ok {
					a, err := s.db.Agent(ctx, ac.AgentID)
					if err != nil && !errors.Is(err, store.ErrNotFound) {
						return nil, fmt.Errorf("control: %w", err)
					}
					if a != nil {
						name = a.Hostname
					}
					hostnames[ac.AgentID] = name
				}
				ac.Hostname = name
			}
			sort.Slice(ac.Checks, func(i, j int) bool { return ac.Checks[i].Check < ac.Checks[j].Check })
		}
	}
	return &d, nil
}

var rankStatuses = [nRanks]compliance.Status{compliance.Failing, compliance.Error, compliance.Stale, compliance.Passing, compliance.NotApplicable}

func rankStatus(r int) compliance.Status { return rankStatuses[r] }

func (s *Server) host(a *store.Agent) apiv1.Host {
	return apiv1.Host{AgentID: a.ID, Hostname: a.Hostname, Labels: a.Labels, EnrolledAt: a.EnrolledAt, LastSeen: a.LastSeen,
		LastSeq: a.LastSeq, Revoked: a.Revoked(), Flag: a.Flag, Counts: map[string]int{},
		OS: hostOS(a.Facts), AgentVersion: a.Facts[apiv1.FactAgentVersion]}
}

// hostOS names a host's system from its facts: the platform and its
// version where known (debian 12, windows 11), else the OS.
func hostOS(f map[string]string) string {
	os := f["os"]
	if p := f["platform"]; p != "" {
		os = strings.TrimSpace(p + " " + f["platform_version"])
	}
	return os
}

// queryHosts is GET /v1/hosts: enrolled hosts with counts of their checks
// by status, in agent id order a page at a time (?cursor=, ?limit=), found
// by ?label=k=v, ?q= (part of the hostname), ?os= (os or platform),
// ?version= (agent version), ?seen_before= / ?seen_after= (last shipment)
// and ?failing=true (some check failing now). The filters are tested on
// each agent row as the list is walked, so a page costs the rows up to
// its last host, never a pass over the fleet.
func (s *Server) queryHosts(ctx context.Context, v url.Values) (*apiv1.Page[apiv1.Host], error) {
	q, err := s.parseQueryLazy(ctx, v)
	if err != nil {
		return nil, badQuery(err)
	}
	keep, err := s.hostFilter(ctx, q, v)
	if err != nil {
		return nil, badQuery(err)
	}
	// The name is searched by the database; the other filters here.
	name := strings.TrimSpace(v.Get("q"))
	page := apiv1.Page[apiv1.Host]{Items: []apiv1.Host{}}
	key, err := decodeCursor(q.cursor, "hosts", 1)
	if err != nil {
		return nil, err
	}
	after := ""
	if key != nil {
		var ok bool
		if after, ok = keyString(key, 0); !ok {
			return nil, badRequest("cursor %q is not one this list gave", q.cursor)
		}
	}
	// A filter that skips most rows reads them in large pages.
	batch := q.limit
	if keep != nil {
		batch = max(batch, 1000)
	}
	byID := map[string]int{}
	for len(page.Items) < q.limit {
		agents, err := s.db.AgentsNamed(ctx, after, name, batch)
		if err != nil {
			return nil, fmt.Errorf("hosts: %w", err)
		}
		for i := range agents {
			after = agents[i].ID
			if keep != nil && !keep(&agents[i]) {
				continue
			}
			byID[agents[i].ID] = len(page.Items)
			page.Items = append(page.Items, s.host(&agents[i]))
			if len(page.Items) == q.limit {
				page.Next = cursor{List: "hosts", Key: []any{agents[i].ID}}.encode()
				break
			}
		}
		if len(agents) < batch {
			break
		}
	}
	if len(byID) > 0 {
		q.filter.Agents = make([]string, 0, len(byID))
		for id := range byID {
			q.filter.Agents = append(q.filter.Agents, id)
		}
		err = s.states(ctx, q, func(cs *apiv1.CheckState) error {
			page.Items[byID[cs.AgentID]].Counts[checkStatus(cs)]++
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("hosts: %w", err)
		}
	}
	return &page, nil
}

// hostFilter is the test queryHosts applies to each agent row, nil when
// the request filters nothing.
func (s *Server) hostFilter(ctx context.Context, q *query, v url.Values) (func(*store.Agent) bool, error) {
	var tests []func(*store.Agent) bool
	if view := viewFrom(ctx); view != nil {
		tests = append(tests, func(a *store.Agent) bool { return view.Match(a.Labels) })
	}
	if scoped, _ := inScope(v); scoped {
		sel, err := s.scope(ctx)
		if err != nil {
			return nil, err
		}
		tests = append(tests, func(a *store.Agent) bool { return sel.Match(a.Labels) })
	}
	if len(q.labels) > 0 {
		want, _ := apiv1.ParseLabels(q.labels) // parsed by parseQueryLazy
		tests = append(tests, func(a *store.Agent) bool {
			for k, v := range want {
				if a.Labels[k] != v {
					return false
				}
			}
			return true
		})
	}
	if os := strings.ToLower(strings.TrimSpace(v.Get("os"))); os != "" {
		tests = append(tests, func(a *store.Agent) bool {
			return strings.EqualFold(a.Facts["os"], os) || strings.EqualFold(a.Facts["platform"], os)
		})
	}
	if ver := strings.TrimSpace(v.Get("version")); ver != "" {
		tests = append(tests, func(a *store.Agent) bool { return a.Facts[apiv1.FactAgentVersion] == ver })
	}
	for _, p := range []struct {
		name   string
		before bool
	}{{"seen_before", true}, {"seen_after", false}} {
		raw := v.Get(p.name)
		if raw == "" {
			continue
		}
		t, err := parseTime(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		before := p.before
		tests = append(tests, func(a *store.Agent) bool {
			if before {
				return a.LastSeen.Before(t) // never seen counts as before
			}
			return !a.LastSeen.Before(t)
		})
	}
	switch f := v.Get("failing"); f {
	case "":
	case "true", "1":
		var failing map[string]bool
		err := s.withFleet(ctx, func(fs *fleetState) error {
			failing = fs.failingAgents()
			return nil
		})
		if err != nil {
			return nil, err
		}
		tests = append(tests, func(a *store.Agent) bool { return failing[a.ID] })
	default:
		return nil, fmt.Errorf("failing %q: want true (hosts with a check failing now)", f)
	}
	if len(tests) == 0 {
		return nil, nil
	}
	return func(a *store.Agent) bool {
		for _, t := range tests {
			if !t(a) {
				return false
			}
		}
		return true
	}, nil
}

// queryHost is GET /v1/hosts/{id}.
func (s *Server) queryHost(ctx context.Context, id string, v url.Values) (*apiv1.HostDetail, error) {
	a, err := s.db.Agent(ctx, id)
	if err == nil && viewFrom(ctx) != nil && !viewFrom(ctx).Match(a.Labels) {
		err = store.ErrNotFound // outside the token's view: as if absent
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, clientError(http.StatusNotFound, apiv1.CodeNotFound, "%s", "no host with agent id "+id)
	}
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	q, err := s.parseQuery(ctx, v)
	if err != nil {
		return nil, badQuery(err)
	}
	q.filter.Agents = []string{a.ID}
	if q.atGiven {
		// A past instant reads each of the host's pairs by index: its
		// own asset and the external ones it may report on or holds
		// state for, not every agent's history.
		assets, err := s.agentAssets(ctx, a.ID)
		if err != nil {
			return nil, fmt.Errorf("host: %w", err)
		}
		q.filter.Assets = append(q.filter.Assets, assets...)
	}
	d := apiv1.HostDetail{Host: s.host(a), Facts: a.Facts, Results: []apiv1.CheckState{}}
	err = s.states(ctx, q, func(cs *apiv1.CheckState) error {
		d.Counts[checkStatus(cs)]++
		d.Results = append(d.Results, *cs)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	sort.Slice(d.Results, func(i, j int) bool {
		if d.Results[i].Asset != d.Results[j].Asset {
			return d.Results[i].Asset < d.Results[j].Asset
		}
		return d.Results[i].Check < d.Results[j].Check
	})
	return &d, nil
}

// agentAssets are the assets an agent reports on: its host, the external
// assets it is granted, and any it holds state for.
func (s *Server) agentAssets(ctx context.Context, agentID string) ([]string, error) {
	seen := map[string]bool{string(evidence.HostAsset(agentID)): true}
	grants, err := s.db.AgentGrants(ctx, agentID)
	if err != nil {
		return nil, err
	}
	for _, g := range grants {
		seen[string(g)] = true
	}
	err = s.db.States(ctx, store.StateFilter{Agents: []string{agentID}}, func(st *store.State) error {
		seen[st.Asset] = true
		return nil
	})
	return slices.Sorted(maps.Keys(seen)), err
}

// queryEvidence is GET /v1/evidence: every result in log order, filtered
// by control, check, status, asset, agent, label and collection time.
func (s *Server) queryEvidence(ctx context.Context, v url.Values) (*apiv1.Page[store.Result], error) {
	q, err := s.parseQuery(ctx, v)
	if err != nil {
		return nil, badQuery(err)
	}
	// The cursor is the log index the next page starts at.
	key, err := decodeCursor(q.cursor, "evidence", 1)
	if err != nil {
		return nil, err
	}
	f := store.ResultFilter{StateFilter: q.filter, Statuses: q.statuses, From: q.from, To: q.to, After: -1, Limit: q.limit + 1}
	f.At = time.Time{}
	if key != nil {
		start, ok := keyInt(key, 0)
		if !ok || start < 0 {
			return nil, badRequest("cursor %q is not one this list gave", q.cursor)
		}
		f.After = start - 1
	}
	rows, err := s.db.Results(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	page := apiv1.Page[store.Result]{Items: rows}
	if len(rows) > q.limit {
		// The cursor is a log index: a record's results never straddle pages.
		last := rows[q.limit].LogIndex
		cut := q.limit
		for cut > 0 && rows[cut-1].LogIndex == last {
			cut--
		}
		if cut == 0 {
			cut = q.limit
		}
		page.Items = rows[:cut]
		page.Next = cursor{List: "evidence", Key: []any{rows[cut].LogIndex}}.encode()
	}
	if page.Items == nil {
		page.Items = []store.Result{}
	}
	return &page, nil
}

// queryHistory is GET /v1/history: when each asset started or stopped
// failing each check (status transitions), filtered like /v1/evidence.
func (s *Server) queryHistory(ctx context.Context, v url.Values) (*apiv1.Page[store.Transition], error) {
	q, err := s.parseQuery(ctx, v)
	if err != nil {
		return nil, badQuery(err)
	}
	// Transitions are per asset: an agent filter means its host asset.
	// Under a scope or a token's view the agents are a limit, not a
	// choice: assets asked for outside them are dropped, not added.
	if q.scoped {
		allowed := map[string]bool{}
		for _, a := range q.filter.Agents {
			allowed["host:"+a] = true
		}
		var keep []string
		for _, a := range q.filter.Assets {
			if allowed[a] {
				keep = append(keep, a)
			}
		}
		if len(q.filter.Assets) == 0 {
			for a := range allowed {
				keep = append(keep, a)
			}
			sort.Strings(keep)
		}
		if len(keep) == 0 {
			q.filter.None = true
		}
		q.filter.Assets = keep
	} else {
		for _, a := range q.filter.Agents {
			q.filter.Assets = append(q.filter.Assets, "host:"+a)
		}
	}
	q.filter.Agents = nil
	// The cursor is the last transition's place in the list's order (time,
	// log index, asset, check): a key, not an offset, so transitions
	// indexed while a client pages neither repeat nor go missing.
	key, err := decodeCursor(q.cursor, "history", 4)
	if err != nil {
		return nil, err
	}
	var after *store.TransitionKey
	if key != nil {
		at, ok1 := keyInt(key, 0)
		idx, ok2 := keyInt(key, 1)
		asset, ok3 := keyString(key, 2)
		check, ok4 := keyString(key, 3)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, badRequest("cursor %q is not one this list gave", q.cursor)
		}
		after = &store.TransitionKey{At: at, LogIndex: idx, Asset: asset, Check: check}
	}
	trs, err := s.db.Transitions(ctx, q.filter, q.from, q.to, q.limit+1, after)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	page := apiv1.Page[store.Transition]{Items: trs}
	if len(trs) > q.limit {
		page.Items = trs[:q.limit]
		last := page.Items[q.limit-1]
		page.Next = cursor{List: "history", Key: []any{last.At.UnixNano(), last.LogIndex, last.Asset, last.Check}}.encode()
	}
	if page.Items == nil {
		page.Items = []store.Transition{}
	}
	return &page, nil
}

// handleAgentKeys is GET /v1/agents/{id}/keys.
func (s *Server) handleAgentKeys(w http.ResponseWriter, r *http.Request) error {
	if ok, err := s.agentVisible(r.Context(), r.PathValue("id")); err != nil {
		return err
	} else if !ok {
		return errOutOfView("no agent " + r.PathValue("id"))
	}
	keys, err := s.db.AgentKeys(r.Context(), r.PathValue("id"))
	if err != nil {
		return fmt.Errorf("agent keys: %w", err)
	}
	if len(keys) == 0 {
		return clientError(http.StatusNotFound, apiv1.CodeNotFound, "%s", "no agent "+r.PathValue("id"))
	}
	writeJSON(w, http.StatusOK, apiv1.Page[store.AgentKey]{Items: keys})
	return nil
}
