package bundle

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/catalog"
	"github.com/annexa-dev/annexa/evidence/compliance"
	"github.com/annexa-dev/annexa/evidence/selector"
)

// Scope is what a bundle covers. Filters narrow the summary and the OSCAL
// report, never the proof: evidence.jsonl always holds the whole period.
type Scope struct {
	From     time.Time         `json:"from"`
	To       time.Time         `json:"to"`
	Controls []string          `json:"controls,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// Selector narrows to the assets whose agents' labels match it (the
	// ISMS scope: "env=prod,team!=lab"), like Labels.
	Selector string `json:"selector,omitempty"`
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
	// An attestation's: who vouches, until when, for which document (its
	// sha256 names files/<sha256> in the bundle when it was uploaded).
	Person     string    `json:"person,omitempty"`
	Role       string    `json:"role,omitempty"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
	File       string    `json:"file,omitempty"`
	FileSHA256 string    `json:"file_sha256,omitempty"`
}

// AttestationCheck is the check name an attestation stands under in a
// summary: a person is an asset of the controls they attest, passing while
// the attestation holds and stale once it has lapsed.
const AttestationCheck = "attestation"

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
	// attested is the newest attestation per (person asset, control).
	attested map[[2]string]CheckRef
	persons  map[string]*evidence.PersonInfo
}

// NewBuilder starts a summary for scope under mapping.
func NewBuilder(scope Scope, mapping *catalog.Mapping) *Builder {
	return &Builder{scope: scope, mapping: mapping, labels: map[string]map[string]string{}, latest: map[[2]string]CheckRef{}, owner: map[string]string{},
		attested: map[[2]string]CheckRef{}, persons: map[string]*evidence.PersonInfo{}}
}

// Person records who a person id is (from its registration key event).
func (b *Builder) Person(id string, p *evidence.PersonInfo) { b.persons[id] = p }

// Enrolled records an agent's labels (from its enrollment key event).
func (b *Builder) Enrolled(agentID string, labels map[string]string) { b.labels[agentID] = labels }

// Add takes a verified record at a log index.
func (b *Builder) Add(index int64, rec *evidence.Record) {
	asset := string(rec.Asset())
	if a := rec.Attestation; a != nil {
		ref := CheckRef{Check: AttestationCheck, Status: string(evidence.Pass), Reason: a.Statement, CollectedAt: a.AttestedAt.UTC(),
			LogIndex: index, Digest: rec.Digest, ValidUntil: a.ValidUntil.UTC(), FileSHA256: rec.Subject[0].Digest["sha256"]}
		if a.File != nil {
			ref.File = a.File.Name
		} else {
			ref.FileSHA256 = ""
		}
		for _, ctl := range a.Controls {
			b.attested[[2]string{asset, ctl}] = ref
		}
		return
	}
	b.owner[asset] = rec.Predicate.AgentID
	// Records come in log order, and state advances in log order: a later
	// record replaces an earlier one whatever collected_at it claims.
	for _, r := range rec.Predicate.Results {
		k := [2]string{asset, r.Check}
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
	if b.scope.Selector == "" {
		return true
	}
	sel, err := selector.Parse(b.scope.Selector)
	// A selector that does not parse selects nothing; the verifier reports
	// it (CheckScope).
	return err == nil && sel.Match(labels)
}

// CheckScope says whether a bundle's scope can be applied.
func CheckScope(s Scope) error {
	if _, err := selector.Parse(s.Selector); err != nil {
		return fmt.Errorf("scope selector %q: %w", s.Selector, err)
	}
	return nil
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
	// Attestations are about the organisation, not a host: the scope's
	// labels do not narrow them. One lapsed by the period's end is stale.
	for k, ref := range b.attested {
		if len(want) > 0 && !want[k[1]] {
			continue
		}
		ref.Stale = !b.scope.To.Before(ref.ValidUntil)
		if p := b.persons[strings.TrimPrefix(k[0], evidence.PersonAssetKind+":")]; p != nil {
			ref.Person, ref.Role = p.Name, p.Role
		}
		roll.Add([]string{k[1]}, k[0], compliance.Of(ref.Status, ref.Stale), ref)
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
