package bundle

import (
	"fmt"
	"slices"
	"time"

	"github.com/annexa-dev/annexa/evidence/catalog"
)

// SoA is soa.json: the Statement of Applicability as it stood at the
// period's end, as the server's administrators set it. It is a claim, not
// evidence: the verifier checks that it lists every Annex A control once,
// and compares it with the summary it recomputed from the verified
// records, reporting where the two disagree.
type SoA struct {
	At time.Time `json:"at"`
	// Scope is the ISMS scope (clause 4.3) as a label selector over the
	// assets' agents, "" when none is set.
	Scope    string    `json:"scope,omitempty"`
	Controls []SoALine `json:"controls"`
}

// SoALine is one control's entry.
type SoALine struct {
	Control       string    `json:"control"`
	Assessed      bool      `json:"assessed"` // false: never set, applicable by default
	Applicable    bool      `json:"applicable"`
	Status        string    `json:"status,omitempty"`
	Owner         string    `json:"owner,omitempty"`
	Justification string    `json:"justification,omitempty"`
	UpdatedAt     time.Time `json:"updated_at,omitzero"`
	UpdatedBy     string    `json:"updated_by,omitempty"`
}

// SoAStatuses are the implementation statuses an entry may have.
var SoAStatuses = []string{"implemented", "partially", "planned", "not_implemented"}

// CheckSoA checks a Statement of Applicability: problems are what makes
// it malformed (not the catalog's controls, each once; an unknown status;
// an exclusion without a justification), contradictions what the verified
// evidence says against it (an implemented control failing, an excluded
// control evidenced, an applicable automated control with no evidence).
func CheckSoA(s *SoA, cat *catalog.Catalog, mapping *catalog.Mapping, sum *Summary) (problems, contradictions []string) {
	seen := map[string]bool{}
	for _, l := range s.Controls {
		if _, ok := cat.Control(l.Control); !ok {
			problems = append(problems, fmt.Sprintf("%q is not an Annex A 2022 control", l.Control))
			continue
		}
		if seen[l.Control] {
			problems = append(problems, fmt.Sprintf("%s is listed twice", l.Control))
		}
		seen[l.Control] = true
		if l.Status != "" && !slices.Contains(SoAStatuses, l.Status) {
			problems = append(problems, fmt.Sprintf("%s: status %q is not one of %v", l.Control, l.Status, SoAStatuses))
		}
		if l.Assessed && !l.Applicable && l.Justification == "" {
			problems = append(problems, fmt.Sprintf("%s is excluded without a justification", l.Control))
		}
	}
	for _, c := range cat.Controls() {
		if !seen[c.ID] {
			problems = append(problems, fmt.Sprintf("%s is missing: a Statement of Applicability lists every Annex A control", c.ID))
		}
	}
	evidence := map[string]ControlSummary{}
	for _, c := range sum.Controls {
		evidence[c.Control] = c
	}
	for _, l := range s.Controls {
		if !l.Assessed {
			continue // applicable by default: no one has claimed anything yet
		}
		ev, has := evidence[l.Control]
		assets := 0
		if has {
			assets = len(ev.Assets)
		}
		switch {
		case !l.Applicable && assets > 0:
			contradictions = append(contradictions, fmt.Sprintf("%s is excluded, yet %d assets report evidence for it in the period", l.Control, assets))
		case l.Applicable && l.Status == "implemented" && ev.Failing > 0:
			contradictions = append(contradictions, fmt.Sprintf("%s is implemented, yet %d of %d assets fail it at the period's end", l.Control, ev.Failing, assets))
		case l.Applicable && mapping != nil && len(mapping.Checks(l.Control)) > 0 && assets == 0:
			contradictions = append(contradictions, fmt.Sprintf("%s is applicable and has automated checks, yet the period holds no evidence for it", l.Control))
		}
	}
	return problems, contradictions
}
