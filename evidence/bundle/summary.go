package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/catalog"
	"github.com/annexa-dev/annexa/evidence/compliance"
)

// Scope is what a bundle covers. Filters narrow the summary and the OSCAL
// report, never the proof: evidence.jsonl always holds the whole period.
type Scope struct {
	From     time.Time         `json:"from"`
	To       time.Time         `json:"to"`
	Controls []string          `json:"controls,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// Freshness is the default window; mapping.yaml may set one per check.
	Freshness string `json:"freshness"`
}

// CheckRef is one check result the summary was decided from, cited by log
// index and record digest.
type CheckRef struct {
	Check       string    `json:"check"`
	Status      string    `json:"status"`
	Reason      string    `json:"reason"`
	CollectedAt time.Time `json:"collected_at"`
	Stale       bool      `json:"stale,omitempty"`
	LogIndex    int64     `json:"log_index"`
	Digest      string    `json:"digest"`
}

// AssetStatus is an asset's status for a control at the period's end.
type AssetStatus struct {
	Asset  string     `json:"asset"`
	Status string     `json:"status"`
	Checks []CheckRef `json:"checks"`
}

// ControlSummary is one control's state across the assets in scope.
type ControlSummary struct {
	Control string        `json:"control"`
	Passing int           `json:"passing"`
	Failing int           `json:"failing"`
	Error   int           `json:"error"`
	Stale   int           `json:"stale"`
	Assets  []AssetStatus `json:"assets"`
}

// Summary is summary.json.
type Summary struct {
	Scope    Scope            `json:"scope"`
	Controls []ControlSummary `json:"controls"`
}

// Builder gathers the latest result per asset and check from verified
// records, in log order, and makes the summary and the OSCAL report. The
// server's export and the auditor's verifier run the same builder over the
// same records, so an edited summary shows as a difference.
type Builder struct {
	scope   Scope
	mapping *catalog.Mapping
	labels  map[string]map[string]string // agent → labels, from enrollments
	latest  map[[2]string]CheckRef       // (asset, check) → newest result
	owner   map[string]string            // asset → agent
}

// NewBuilder starts a summary for scope under mapping.
func NewBuilder(scope Scope, mapping *catalog.Mapping) *Builder {
	return &Builder{scope: scope, mapping: mapping, labels: map[string]map[string]string{}, latest: map[[2]string]CheckRef{}, owner: map[string]string{}}
}

// Enrolled records an agent's labels (from its enrollment key event).
func (b *Builder) Enrolled(agentID string, labels map[string]string) { b.labels[agentID] = labels }

// Add takes a verified record at a log index.
func (b *Builder) Add(index int64, rec *evidence.Record) {
	asset := string(rec.Asset())
	b.owner[asset] = rec.Predicate.AgentID
	for _, r := range rec.Predicate.Results {
		k := [2]string{asset, r.Check}
		if old, ok := b.latest[k]; ok && rec.Predicate.CollectedAt.Before(old.CollectedAt) {
			continue
		}
		b.latest[k] = CheckRef{Check: r.Check, Status: string(r.Status), Reason: r.Reason, CollectedAt: rec.Predicate.CollectedAt.UTC(), LogIndex: index, Digest: rec.Digest}
	}
}

func (b *Builder) inScope(asset string) bool {
	labels := b.labels[b.owner[asset]]
	for k, v := range b.scope.Labels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Summary computes summary.json's content.
func (b *Builder) Summary() (*Summary, error) {
	fresh, err := time.ParseDuration(b.scope.Freshness)
	if err != nil {
		return nil, fmt.Errorf("scope freshness: %w", err)
	}
	want := map[string]bool{}
	for _, c := range b.scope.Controls {
		want[c] = true
	}
	roll := compliance.NewRollup[CheckRef](true)
	for k, ref := range b.latest {
		asset := k[0]
		if !b.inScope(asset) {
			continue
		}
		ref.Stale = ref.CollectedAt.Add(b.mapping.Freshness(ref.Check, fresh)).Before(b.scope.To)
		var controls []string
		for _, ctl := range b.mapping.Controls(ref.Check) {
			if len(want) == 0 || want[ctl] {
				controls = append(controls, ctl)
			}
		}
		roll.Add(controls, asset, compliance.Of(ref.Status, ref.Stale), ref)
	}
	s := &Summary{Scope: b.scope, Controls: []ControlSummary{}}
	for _, id := range roll.Controls() {
		n := roll.Counts(id)
		cs := ControlSummary{Control: id, Passing: n.Passing, Failing: n.Failing, Error: n.Error, Stale: n.Stale, Assets: []AssetStatus{}}
		for _, a := range roll.Assets(id) {
			sort.Slice(a.Checks, func(i, j int) bool { return a.Checks[i].Check < a.Checks[j].Check })
			cs.Assets = append(cs.Assets, AssetStatus{Asset: a.Asset, Status: string(a.Status), Checks: a.Checks})
		}
		// summary.json lists assets by id, as every bundle before did.
		sort.Slice(cs.Assets, func(i, j int) bool { return cs.Assets[i].Asset < cs.Assets[j].Asset })
		s.Controls = append(s.Controls, cs)
	}
	return s, nil
}

// uuid5ish derives a stable RFC 4122 (version 5 layout) UUID from parts, so
// the same records always give the same OSCAL document.
func uuid5ish(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	b := h.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// OSCAL renders the summary as an OSCAL 1.2.2 assessment-results document:
// an observation per check result (citing log index and record digest), a
// finding per control and asset.
func OSCAL(s *Summary, createdAt time.Time, origin string) ([]byte, error) {
	type prop struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	type evidenceRef struct {
		Href        string `json:"href"`
		Description string `json:"description"`
	}
	type subject struct {
		SubjectUUID string `json:"subject-uuid"`
		Type        string `json:"type"`
		Title       string `json:"title"`
	}
	type observation struct {
		UUID             string        `json:"uuid"`
		Title            string        `json:"title"`
		Description      string        `json:"description"`
		Props            []prop        `json:"props"`
		Methods          []string      `json:"methods"`
		Subjects         []subject     `json:"subjects"`
		RelevantEvidence []evidenceRef `json:"relevant-evidence"`
		Collected        string        `json:"collected"`
	}
	type status struct {
		State  string `json:"state"`
		Reason string `json:"reason"`
	}
	type target struct {
		Type     string `json:"type"`
		TargetID string `json:"target-id"`
		Status   status `json:"status"`
	}
	type relObs struct {
		ObservationUUID string `json:"observation-uuid"`
	}
	type finding struct {
		UUID                string   `json:"uuid"`
		Title               string   `json:"title"`
		Description         string   `json:"description"`
		Props               []prop   `json:"props"`
		Target              target   `json:"target"`
		RelatedObservations []relObs `json:"related-observations"`
	}
	var obs []observation
	var finds []finding
	seen := map[string]bool{}
	var controlIDs []map[string]string
	for _, c := range s.Controls {
		controlIDs = append(controlIDs, map[string]string{"control-id": "a." + c.Control})
		for _, a := range c.Assets {
			var rel []relObs
			for _, r := range a.Checks {
				id := uuid5ish("observation", a.Asset, r.Check, fmt.Sprint(r.LogIndex))
				rel = append(rel, relObs{id})
				if seen[id] {
					continue
				}
				seen[id] = true
				obs = append(obs, observation{
					UUID: id, Title: r.Check, Description: r.Reason, Methods: []string{"TEST"},
					Props:            []prop{{"check", r.Check}, {"result", r.Status}, {"log-index", fmt.Sprint(r.LogIndex)}, {"record-sha256", r.Digest}, {"stale", fmt.Sprint(r.Stale)}},
					Subjects:         []subject{{SubjectUUID: uuid5ish("asset", a.Asset), Type: "inventory-item", Title: a.Asset}},
					RelevantEvidence: []evidenceRef{{Href: fmt.Sprintf("evidence.jsonl#index-%d", r.LogIndex), Description: "DSSE envelope signed by the agent, log index " + fmt.Sprint(r.LogIndex) + ", sha256 " + r.Digest}},
					Collected:        r.CollectedAt.Format(time.RFC3339Nano),
				})
			}
			state, reason := "not-satisfied", "fail"
			switch a.Status {
			case "passing":
				state, reason = "satisfied", "pass"
			case "not_applicable":
				state, reason = "satisfied", "other"
			case "error", "stale":
				reason = "other"
			}
			finds = append(finds, finding{
				UUID: uuid5ish("finding", c.Control, a.Asset), Title: "Annex A " + c.Control + " on " + a.Asset,
				Description:         fmt.Sprintf("%s is %s for ISO/IEC 27001:2022 Annex A control %s", a.Asset, a.Status, c.Control),
				Props:               []prop{{"asset-status", a.Status}},
				Target:              target{Type: "objective-id", TargetID: "a." + c.Control, Status: status{State: state, Reason: reason}},
				RelatedObservations: rel,
			})
		}
	}
	result := map[string]any{
		"uuid":        uuid5ish("result", origin, s.Scope.From.String(), s.Scope.To.String()),
		"title":       "Automated evidence, " + s.Scope.From.Format(time.RFC3339) + " to " + s.Scope.To.Format(time.RFC3339),
		"description": "Results of Annexa's automated checks, from signed agent records in the transparency log " + origin + ".",
		"start":       s.Scope.From.Format(time.RFC3339Nano),
		"end":         s.Scope.To.Format(time.RFC3339Nano),
		"reviewed-controls": map[string]any{"control-selections": []any{func() map[string]any {
			if len(controlIDs) == 0 {
				return map[string]any{"include-all": map[string]any{}}
			}
			return map[string]any{"include-controls": controlIDs}
		}()}},
	}
	if len(obs) > 0 {
		result["observations"] = obs
	}
	if len(finds) > 0 {
		result["findings"] = finds
	}
	doc := map[string]any{"assessment-results": map[string]any{
		"uuid": uuid5ish("assessment-results", origin, s.Scope.From.String(), s.Scope.To.String()),
		"metadata": map[string]any{
			"title":         "ISO/IEC 27001:2022 Annex A automated assessment results",
			"last-modified": createdAt.UTC().Format(time.RFC3339Nano),
			"version":       "1",
			"oscal-version": "1.2.2",
		},
		"import-ap": map[string]any{"href": "urn:annexa:assessment-plan:automated-evidence"},
		"results":   []any{result},
	}}
	return json.MarshalIndent(doc, "", "  ")
}
