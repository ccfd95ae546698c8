package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

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
	var obs []oscalObservation
	var finds []oscalFinding
	seen := map[string]bool{}
	var controlIDs []map[string]string
	for _, c := range s.Controls {
		controlIDs = append(controlIDs, map[string]string{"control-id": "a." + c.Control})
		for _, a := range c.Assets {
			var rel []oscalRelatedObservation
			for _, r := range a.Checks {
				id := uuid5ish("observation", a.Asset, r.Check, fmt.Sprint(r.LogIndex))
				rel = append(rel, oscalRelatedObservation{id})
				if seen[id] {
					continue
				}
				seen[id] = true
				obs = append(obs, oscalObservation{
					UUID: id, Title: r.Check, Description: r.Reason, Methods: []string{"TEST"},
					Props:            []oscalProp{{"check", r.Check}, {"result", r.Status}, {"log-index", fmt.Sprint(r.LogIndex)}, {"record-sha256", r.Digest}, {"stale", fmt.Sprint(r.Stale)}},
					Subjects:         []oscalSubject{{SubjectUUID: uuid5ish("asset", a.Asset), Type: "inventory-item", Title: a.Asset}},
					RelevantEvidence: []oscalEvidenceRef{{Href: fmt.Sprintf("evidence.jsonl#index-%d", r.LogIndex), Description: "DSSE envelope signed by the agent, log index " + fmt.Sprint(r.LogIndex) + ", sha256 " + r.Digest}},
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
			finds = append(finds, oscalFinding{
				UUID: uuid5ish("finding", c.Control, a.Asset), Title: "Annex A " + c.Control + " on " + a.Asset,
				Description:         fmt.Sprintf("%s is %s for ISO/IEC 27001:2022 Annex A control %s", a.Asset, a.Status, c.Control),
				Props:               []oscalProp{{"asset-status", a.Status}},
				Target:              oscalTarget{Type: "objective-id", TargetID: "a." + c.Control, Status: oscalStatus{State: state, Reason: reason}},
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

// The OSCAL assessment-results fields Annexa fills, named as the schema
// names them (reference/oscal_complete_schema-1.2.2.json).
type oscalProp struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}
type oscalEvidenceRef struct {
	Href        string `json:"href"`
	Description string `json:"description"`
}
type oscalSubject struct {
	SubjectUUID string `json:"subject-uuid"`
	Type        string `json:"type"`
	Title       string `json:"title"`
}
type oscalObservation struct {
	UUID             string             `json:"uuid"`
	Title            string             `json:"title"`
	Description      string             `json:"description"`
	Props            []oscalProp        `json:"props"`
	Methods          []string           `json:"methods"`
	Subjects         []oscalSubject     `json:"subjects"`
	RelevantEvidence []oscalEvidenceRef `json:"relevant-evidence"`
	Collected        string             `json:"collected"`
}
type oscalStatus struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
}
type oscalTarget struct {
	Type     string      `json:"type"`
	TargetID string      `json:"target-id"`
	Status   oscalStatus `json:"status"`
}
type oscalRelatedObservation struct {
	ObservationUUID string `json:"observation-uuid"`
}
type oscalFinding struct {
	UUID                string                    `json:"uuid"`
	Title               string                    `json:"title"`
	Description         string                    `json:"description"`
	Props               []oscalProp               `json:"props"`
	Target              oscalTarget               `json:"target"`
	RelatedObservations []oscalRelatedObservation `json:"related-observations"`
}
