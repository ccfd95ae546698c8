package evidence

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"

	"github.com/annexa-dev/annexa/evidence/dsse"
)

// An attestation is a person's signed statement that a control is met:
// "Information security policy v3 approved by the board", with the sha256 of
// the document that shows it. Machines evidence a few Annex A controls; people
// evidence the rest, and their word is made as checkable as an agent's: an
// in-toto Statement v1 in a DSSE envelope, signed by a key generated on the
// person's machine, chained per person (seq, prev) and appended to the same
// transparency log.
//
// An attestation opens as a Record whose Predicate carries the chain fields
// (the person's id as AgentID, seq, prev) so that keys, chains, log
// boundaries and the offline verifier treat people and agents alike; its own
// fields are in Record.Attestation.
const (
	AttestationPredicateType = "https://annexa.dev/attestation/v1"
	// AttestationCollector is the collector name an attestation's Record
	// carries in its chain fields.
	AttestationCollector = "annexa.attestation"
	// StatementSubject is the subject name of an attestation without a
	// file: its digest is that of the statement text.
	StatementSubject = "statement"
	// PersonAssetKind prefixes the asset an attestation is about: the person
	// who vouches.
	PersonAssetKind = "person"
)

// Limits of an attestation's text fields.
const (
	MaxStatementLen   = 4096
	MaxAttestControls = 93
	// MaxAttestValidity bounds how long an attestation may claim to hold:
	// ISO/IEC 27001 reviews run yearly; three years is already generous.
	MaxAttestValidity = 3 * 366 * 24 * time.Hour
)

// Attestation is the predicate of an attestation statement.
type Attestation struct {
	PersonID string `json:"person_id"`
	Seq      uint64 `json:"seq"`
	Prev     string `json:"prev"`
	// Controls are the Annex A 2022 controls the statement evidences.
	Controls   []string  `json:"controls"`
	Statement  string    `json:"statement"`
	AttestedAt time.Time `json:"attested_at"`
	// ValidUntil is when the statement lapses: a policy is reviewed, a
	// training repeated. After it the controls' attestation is stale.
	ValidUntil time.Time `json:"valid_until"`
	// File describes the attested document; the subject carries its
	// sha256. Absent for a statement with no document.
	File *AttestedFile `json:"file,omitempty"`
}

// AttestedFile describes the document an attestation vouches for.
type AttestedFile struct {
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type,omitempty"`
}

// attestationStatement is the statement as signed.
type attestationStatement struct {
	Type          string      `json:"_type"`
	Subject       []Subject   `json:"subject"`
	PredicateType string      `json:"predicateType"`
	Predicate     Attestation `json:"predicate"`
}

// PersonAsset is the asset an attestation of person id is about.
func PersonAsset(id string) Asset { return Asset(PersonAssetKind + ":" + id) }

// Expired says whether the attestation has lapsed at t.
func (a *Attestation) Expired(t time.Time) bool { return !t.Before(a.ValidUntil) }

// SignAttestation builds and signs an attestation statement. fileDigest is
// the hex sha256 of the attested file (a.File set) or "" for a statement
// alone, whose subject digest is then that of the statement text.
func SignAttestation(priv ed25519.PrivateKey, a Attestation, fileDigest string) (*dsse.Envelope, error) {
	a.AttestedAt, a.ValidUntil = a.AttestedAt.UTC(), a.ValidUntil.UTC()
	st := attestationStatement{Type: StatementType, PredicateType: AttestationPredicateType, Predicate: a}
	switch {
	case a.File != nil:
		st.Subject = []Subject{{Name: a.File.Name, Digest: map[string]string{"sha256": fileDigest}}}
	case fileDigest != "":
		return nil, errors.New("attestation: a file digest without a file")
	default:
		st.Subject = []Subject{{Name: StatementSubject, Digest: map[string]string{"sha256": Digest([]byte(a.Statement))}}}
	}
	if err := st.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedRecord, err)
	}
	return signInToto(priv, st, "attestation")
}

// parseAttestation parses payload as an attestation statement.
func parseAttestation(payload []byte) (*Record, error) {
	var st attestationStatement
	if err := gojson.UnmarshalWithOption(payload, &st, strictFields); err != nil {
		return nil, err
	}
	if err := st.validate(); err != nil {
		return nil, err
	}
	a := st.Predicate
	return &Record{
		Statement: Statement{Type: st.Type, Subject: st.Subject, PredicateType: st.PredicateType, Predicate: Predicate{
			AgentID: a.PersonID, Seq: a.Seq, Prev: a.Prev, Collector: AttestationCollector, CollectedAt: a.AttestedAt, Results: []Result{},
		}},
		Attestation: &a,
		Payload:     payload,
		Digest:      Digest(payload),
	}, nil
}

func (st *attestationStatement) validate() error {
	if st.Type != StatementType {
		return fmt.Errorf("_type %q, want %q", st.Type, StatementType)
	}
	if st.PredicateType != AttestationPredicateType {
		return fmt.Errorf("predicateType %q, want %q", st.PredicateType, AttestationPredicateType)
	}
	if len(st.Subject) != 1 {
		return fmt.Errorf("%d subjects, want 1", len(st.Subject))
	}
	sub, a := st.Subject[0], &st.Predicate
	if !isHexDigest(sub.Digest["sha256"]) || len(sub.Digest) != 1 {
		return errors.New("the subject's digest must be exactly one hex sha256")
	}
	if a.PersonID == "" {
		return errors.New("attestation without person_id")
	}
	if a.Seq == 0 {
		return errors.New("seq 0: seqs start at 1")
	}
	if !isHexDigest(a.Prev) {
		return fmt.Errorf("prev %q is not a hex sha256", a.Prev)
	}
	if len(a.Controls) == 0 || len(a.Controls) > MaxAttestControls {
		return fmt.Errorf("%d controls: an attestation names 1 to %d", len(a.Controls), MaxAttestControls)
	}
	for _, c := range a.Controls {
		if !controlID(c) {
			return fmt.Errorf("control %q is not an Annex A control id (5.1 … 8.34)", c)
		}
	}
	if s := strings.TrimSpace(a.Statement); s == "" || len(a.Statement) > MaxStatementLen || !utf8.ValidString(a.Statement) {
		return fmt.Errorf("the statement must be 1 to %d bytes of UTF-8 text", MaxStatementLen)
	}
	if a.AttestedAt.IsZero() || !a.ValidUntil.After(a.AttestedAt) {
		return errors.New("valid_until must come after attested_at")
	}
	if a.ValidUntil.Sub(a.AttestedAt) > MaxAttestValidity {
		return fmt.Errorf("valid for %s: at most %s", a.ValidUntil.Sub(a.AttestedAt).Round(time.Hour), MaxAttestValidity)
	}
	if f := a.File; f != nil {
		if f.Name == "" || f.Name != sub.Name || len(f.Name) > 255 || strings.ContainsAny(f.Name, "/\\\x00") {
			return fmt.Errorf("file name %q: a base name, the subject's name", f.Name)
		}
		if f.Size < 0 {
			return errors.New("file size is negative")
		}
	} else if sub.Name != StatementSubject || sub.Digest["sha256"] != Digest([]byte(a.Statement)) {
		return fmt.Errorf("an attestation without a file has subject %q with the statement's digest", StatementSubject)
	}
	return nil
}

// controlID says whether s has the form of an Annex A 2022 control id:
// theme 5 to 8, a number. Whether the control exists is the catalog's
// business.
func controlID(s string) bool {
	th, n, ok := strings.Cut(s, ".")
	if !ok || len(th) != 1 || th[0] < '5' || th[0] > '8' || n == "" || len(n) > 2 || n[0] == '0' {
		return false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
