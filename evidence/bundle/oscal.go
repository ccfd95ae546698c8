package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/evidence"
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

// NS is the namespace of Annexa's own OSCAL properties. NIST's extension
// guidance: a property that is not defined by OSCAL itself carries its
// owner's namespace, so a tool never mistakes it for one that is.
const NS = "https://annexa.dev/ns/oscal"

func prop(name, value string) oscalProp { return oscalProp{Name: name, NS: NS, Value: value} }

// OSCAL renders the summary as an OSCAL 1.2.2 assessment-results document:
// an observation per check result (citing log index and record digest), a
// finding per control and asset, an inventory item for every asset an
// observation names, and the assessment plan it followed as a back-matter
// resource that import-ap points at.
func OSCAL(s *Summary, createdAt time.Time, origin string) ([]byte, error) {
	var obs []oscalObservation
	var finds []oscalFinding
	seen := map[string]bool{}
	var controlIDs []map[string]string
	var items []oscalInventoryItem
	itemSeen := map[string]bool{}
	var parties []oscalParty
	for _, c := range s.Controls {
		controlIDs = append(controlIDs, map[string]string{"control-id": "a." + c.Control})
		for _, a := range c.Assets {
			if strings.HasPrefix(a.Asset, evidence.PersonAssetKind+":") {
				// A person's attestation: an observation by a party,
				// not a test of an inventory item.
				o, f, p := attestationOSCAL(c.Control, a)
				if !itemSeen[a.Asset] {
					itemSeen[a.Asset] = true
					parties = append(parties, p)
				}
				for _, x := range o {
					if !seen[x.UUID] {
						seen[x.UUID] = true
						obs = append(obs, x)
					}
				}
				finds = append(finds, f)
				continue
			}
			if !itemSeen[a.Asset] {
				itemSeen[a.Asset] = true
				kind, _, _ := strings.Cut(a.Asset, ":")
				items = append(items, oscalInventoryItem{UUID: uuid5ish("asset", a.Asset),
					Description: fmt.Sprintf("%s, an asset whose evidence Annexa collected (%s)", a.Asset, kind),
					Props:       []oscalProp{prop("asset", a.Asset), prop("asset-kind", kind)}})
			}
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
					Props:            []oscalProp{prop("check", r.Check), prop("result", r.Status), prop("log-index", fmt.Sprint(r.LogIndex)), prop("record-sha256", r.Digest), prop("stale", fmt.Sprint(r.Stale))},
					Subjects:         []oscalSubject{{SubjectUUID: uuid5ish("asset", a.Asset), Type: "inventory-item", Title: a.Asset}},
					RelevantEvidence: []oscalEvidenceRef{{Href: fmt.Sprintf("evidence.jsonl#index-%d", r.LogIndex), Description: "DSSE envelope signed by the agent, log index " + fmt.Sprint(r.LogIndex) + ", sha256 " + r.Digest}},
					Collected:        r.CollectedAt.Format(time.RFC3339Nano),
				})
			}
			target := oscalTarget{Type: "objective-id", TargetID: "a." + c.Control, Status: oscalStatus{State: "not-satisfied", Reason: "fail"}}
			switch a.Status {
			case "passing":
				target.Status = oscalStatus{State: "satisfied", Reason: "pass"}
			case "not_applicable":
				// Not applicable is no evidence the control is met: it is
				// never reported satisfied. OSCAL says so with the
				// implementation status.
				target.Status = oscalStatus{State: "not-satisfied", Reason: "other",
					Remarks: "Not applicable to this asset: every check mapped to the control reported not_applicable. Not assessed as satisfied."}
				target.ImplementationStatus = &oscalImplementationStatus{State: "not-applicable"}
			case "error", "stale":
				target.Status.Reason = "other"
			}
			finds = append(finds, oscalFinding{
				UUID: uuid5ish("finding", c.Control, a.Asset), Title: "Annex A " + c.Control + " on " + a.Asset,
				Description:         fmt.Sprintf("%s is %s for ISO/IEC 27001:2022 Annex A control %s", a.Asset, a.Status, c.Control),
				Props:               []oscalProp{prop("asset-status", a.Status)},
				Target:              target,
				RelatedObservations: rel,
			})
		}
	}
	planUUID := uuid5ish("assessment-plan", origin, s.Scope.Freshness)
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
	if len(items) > 0 {
		result["local-definitions"] = map[string]any{"inventory-items": items}
	}
	if len(obs) > 0 {
		result["observations"] = obs
	}
	if len(finds) > 0 {
		result["findings"] = finds
	}
	metadata := map[string]any{
		"title":         "ISO/IEC 27001:2022 Annex A automated assessment results",
		"last-modified": createdAt.UTC().Format(time.RFC3339Nano),
		"version":       "1",
		"oscal-version": "1.2.2",
	}
	if len(parties) > 0 {
		metadata["parties"] = parties
	}
	doc := map[string]any{"assessment-results": map[string]any{
		"uuid":      uuid5ish("assessment-results", origin, s.Scope.From.String(), s.Scope.To.String()),
		"metadata":  metadata,
		"import-ap": map[string]any{"href": "#" + planUUID},
		"results":   []any{result},
		"back-matter": map[string]any{"resources": []any{map[string]any{
			"uuid":  planUUID,
			"title": "Annexa automated assessment plan",
			"description": "The plan these results follow. Each in-scope asset's Annexa agent runs the checks that mapping.yaml " +
				"(in this bundle) maps to ISO/IEC 27001:2022 Annex A controls, signs each run's results as a DSSE envelope and " +
				"ships it to a server that appends it to the transparency log " + origin + ". For each control and asset, the " +
				"newest result of every mapped check within its freshness window (default " + s.Scope.Freshness + ", or the " +
				"check's own in mapping.yaml) decides: all pass is satisfied; any fail, error or stale result is not. " +
				"Period " + s.Scope.From.Format(time.RFC3339) + " to " + s.Scope.To.Format(time.RFC3339) + ". " +
				"Every observation cites its record's log index and SHA-256; evidence.jsonl and proof.json let anyone verify them.",
			"props":  []oscalProp{prop("method", "automated-test"), prop("freshness", s.Scope.Freshness), prop("transparency-log", origin)},
			"rlinks": []any{map[string]any{"href": "mapping.yaml", "media-type": "application/yaml"}},
		}}},
	}}
	return json.MarshalIndent(doc, "", "  ")
}

// attestationOSCAL renders a person's attestations of a control: an
// observation per attestation (method EXAMINE, the person as its origin, its
// expiry), the finding, and the person as a party.
func attestationOSCAL(control string, a AssetStatus) ([]oscalObservation, oscalFinding, oscalParty) {
	party := oscalParty{UUID: uuid5ish("party", a.Asset), Type: "person", Props: []oscalProp{prop("person", a.Asset)}}
	var obs []oscalObservation
	var rel []oscalRelatedObservation
	for _, r := range a.Checks {
		if r.Person != "" {
			party.Name = r.Person
		}
		if r.Role != "" {
			party.Props = append(party.Props[:1], prop("role", r.Role))
		}
		id := uuid5ish("attestation", a.Asset, fmt.Sprint(r.LogIndex))
		rel = append(rel, oscalRelatedObservation{id})
		ev := []oscalEvidenceRef{{Href: fmt.Sprintf("evidence.jsonl#index-%d", r.LogIndex),
			Description: "DSSE envelope signed by " + a.Asset + ", log index " + fmt.Sprint(r.LogIndex) + ", sha256 " + r.Digest}}
		if r.FileSHA256 != "" {
			ev = append(ev, oscalEvidenceRef{Href: "files/" + r.FileSHA256, Description: "the attested document " + r.File + ", sha256 " + r.FileSHA256})
		}
		obs = append(obs, oscalObservation{
			UUID: id, Title: "Attestation of " + control, Description: r.Reason, Methods: []string{"EXAMINE"},
			Props:            []oscalProp{prop("check", r.Check), prop("log-index", fmt.Sprint(r.LogIndex)), prop("record-sha256", r.Digest), prop("stale", fmt.Sprint(r.Stale))},
			Origins:          []oscalOrigin{{Actors: []oscalActor{{Type: "party", ActorUUID: party.UUID}}}},
			RelevantEvidence: ev,
			Collected:        r.CollectedAt.Format(time.RFC3339Nano),
			Expires:          r.ValidUntil.Format(time.RFC3339Nano),
		})
	}
	target := oscalTarget{Type: "objective-id", TargetID: "a." + control, Status: oscalStatus{State: "satisfied", Reason: "pass"}}
	if a.Status != "passing" {
		target.Status = oscalStatus{State: "not-satisfied", Reason: "other", Remarks: "The attestation has lapsed."}
	}
	f := oscalFinding{
		UUID: uuid5ish("finding", control, a.Asset), Title: "Annex A " + control + " attested by " + a.Asset,
		Description:         fmt.Sprintf("%s (%s) attests ISO/IEC 27001:2022 Annex A control %s: %s", party.Name, a.Asset, control, a.Status),
		Props:               []oscalProp{prop("asset-status", a.Status)},
		Target:              target,
		RelatedObservations: rel,
	}
	return obs, f, party
}

// The OSCAL assessment-results fields Annexa fills, named as the schema
// names them (reference/oscal_complete_schema-1.2.2.json).
type oscalProp struct {
	Name  string `json:"name"`
	NS    string `json:"ns,omitempty"`
	Value string `json:"value"`
}
type oscalInventoryItem struct {
	UUID        string      `json:"uuid"`
	Description string      `json:"description"`
	Props       []oscalProp `json:"props"`
}
type oscalImplementationStatus struct {
	State string `json:"state"`
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
	Origins          []oscalOrigin      `json:"origins,omitempty"`
	Subjects         []oscalSubject     `json:"subjects,omitempty"`
	RelevantEvidence []oscalEvidenceRef `json:"relevant-evidence"`
	Collected        string             `json:"collected"`
	Expires          string             `json:"expires,omitempty"`
}
type oscalOrigin struct {
	Actors []oscalActor `json:"actors"`
}
type oscalActor struct {
	Type      string `json:"type"`
	ActorUUID string `json:"actor-uuid"`
}
type oscalParty struct {
	UUID  string      `json:"uuid"`
	Type  string      `json:"type"`
	Name  string      `json:"name,omitempty"`
	Props []oscalProp `json:"props"`
}
type oscalStatus struct {
	State   string `json:"state"`
	Reason  string `json:"reason"`
	Remarks string `json:"remarks,omitempty"`
}
type oscalTarget struct {
	Type                 string                     `json:"type"`
	TargetID             string                     `json:"target-id"`
	Status               oscalStatus                `json:"status"`
	ImplementationStatus *oscalImplementationStatus `json:"implementation-status,omitempty"`
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
