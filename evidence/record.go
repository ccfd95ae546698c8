package evidence

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/annexa-dev/annexa/evidence/dsse"
)

// Wire constants of the record format.
const (
	StatementType = "https://in-toto.io/Statement/v1"
	PayloadType   = "application/vnd.in-toto+json"
	PredicateType = "https://annexa.dev/evidence/record/v1"

	// Collector names of the records an agent writes about itself rather than
	// about a check.
	GapCollector      = "annexa.gap"
	RotationCollector = "annexa.key-rotation"
)

// MaxRecordSize bounds one record's payload. A collector that produces more
// must summarise: no single host fact is worth a megabyte of evidence.
const MaxRecordSize = 1 << 20

// Statement is an in-toto Statement v1 whose predicate is an Annexa record.
type Statement struct {
	Type          string    `json:"_type"`
	Subject       []Subject `json:"subject"`
	PredicateType string    `json:"predicateType"`
	Predicate     Predicate `json:"predicate"`
}

// Subject names the asset, with the sha256 of the record's results (the
// observations and outcomes), so the statement binds the evidence to what it
// is about.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Predicate is Annexa's evidence predicate.
type Predicate struct {
	AgentID          string    `json:"agent_id"`
	Seq              uint64    `json:"seq"`
	Prev             string    `json:"prev"`
	Collector        string    `json:"collector"`
	CollectorVersion string    `json:"collector_version"`
	CollectedAt      time.Time `json:"collected_at"`
	Results          []Result  `json:"results"`
	// Gap is set on the record an agent writes when it had to drop unshipped
	// records; it stands in the chain at Gap.From and covers through Gap.To.
	Gap *Gap `json:"gap,omitempty"`
	// Rotation is set on the record, signed with the old key, that announces
	// the agent's next key, valid from the following seq.
	Rotation *Rotation `json:"rotation,omitempty"`
}

// Gap explains a range of seqs the agent dropped. The gap record takes seq
// From; the record after the range links to LastDigest, the digest of the
// dropped record To, so the chain stays checkable across the hole.
type Gap struct {
	From       uint64 `json:"from"`
	To         uint64 `json:"to"`
	LastDigest string `json:"last_digest"`
	Reason     string `json:"reason"`
}

// Rotation announces a new agent key.
type Rotation struct {
	NewKeyID  string `json:"new_keyid"`
	NewPublic []byte `json:"new_public_key"`
}

// Record is an opened record: the statement, the exact payload bytes it was
// parsed from, and their digest.
type Record struct {
	Statement
	Payload []byte
	Digest  string
	// Attestation is set when the record is a person's attestation rather
	// than an agent's evidence: Statement then holds its chain fields.
	Attestation *Attestation
}

// Digest is the hex sha256 of a record's payload bytes; it is what prev links
// to and what logs and bundles cite.
func Digest(payload []byte) string {
	sum := sha256.Sum256(payload)
	return hex.EncodeToString(sum[:])
}

// ResultsDigest is the subject digest: sha256 over the canonical JSON of the
// results as the statement carries them.
func ResultsDigest(results []Result) (string, error) {
	b, err := json.Marshal(results)
	if err != nil {
		return "", err
	}
	return Digest(b), nil
}

// Errors callers may test for with errors.Is.
var (
	ErrMalformedRecord = errors.New("malformed record")
	ErrWrongKeyID      = errors.New("keyid does not name the agent's key")
)

// NewStatement builds a statement about asset from pred, computing the
// subject digest.
func NewStatement(asset Asset, pred Predicate) (*Statement, error) {
	if _, err := ParseAsset(string(asset)); err != nil {
		return nil, err
	}
	for i := range pred.Results {
		if err := pred.Results[i].Validate(); err != nil {
			return nil, err
		}
	}
	if pred.Results == nil {
		pred.Results = []Result{}
	}
	d, err := ResultsDigest(pred.Results)
	if err != nil {
		return nil, err
	}
	pred.CollectedAt = pred.CollectedAt.UTC()
	return &Statement{
		Type:          StatementType,
		Subject:       []Subject{{Name: string(asset), Digest: map[string]string{"sha256": d}}},
		PredicateType: PredicateType,
		Predicate:     pred,
	}, nil
}

// SignStatement serialises st and signs it. The returned envelope's Payload
// is the exact byte string that was signed.
func SignStatement(priv ed25519.PrivateKey, st *Statement) (*dsse.Envelope, error) {
	return signInToto(priv, st, "record")
}

// signInToto serialises an in-toto statement (a record's, an attestation's)
// and signs it as the in-toto payload type, within the size a record may
// have.
func signInToto(priv ed25519.PrivateKey, st any, what string) (*dsse.Envelope, error) {
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", what, err)
	}
	if len(payload) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, at most %d", ErrMalformedRecord, what, len(payload), MaxRecordSize)
	}
	return dsse.Sign(priv, PayloadType, payload)
}

// ParseRecord parses a payload as an Annexa record without checking any
// signature. It checks the shape a verifier relies on: statement and
// predicate types, one subject whose digest matches the results, an agent id,
// seq ≥ 1 and a well-formed prev. The record's strings share payload's
// memory: payload must not be changed afterwards.
func ParseRecord(payload []byte) (*Record, error) {
	if len(payload) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformedRecord, len(payload), MaxRecordSize)
	}
	var ps parsedStatement
	if err := gojson.UnmarshalWithOption(payload, &ps, strictFields, noCopyStrings); err != nil {
		// Not an agent's record: a person's attestation, or malformed.
		// Attestations are rare, so the common case pays one decode.
		if rec, aerr := parseAttestation(payload); aerr == nil {
			return rec, nil
		} else if ps.PredicateType == AttestationPredicateType || bytes.Contains(payload, []byte(AttestationPredicateType)) {
			return nil, fmt.Errorf("%w: attestation: %v", ErrMalformedRecord, aerr)
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformedRecord, err)
	}
	st := ps.Statement
	st.Predicate = ps.Predicate.Predicate
	st.Predicate.Results = ps.Predicate.Results.list
	if err := st.validate(ps.Predicate.Results.digest); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedRecord, err)
	}
	return &Record{Statement: st, Payload: payload, Digest: Digest(payload)}, nil
}

// Records are decoded with goccy/go-json, a drop-in for encoding/json at
// about twice its speed: parsing was a third of the cost of verifying a
// bundle. The server and the verifier both parse through here, so they read
// every record alike; a differential fuzz test holds it to encoding/json's
// reading of the same bytes.
//
// parsedStatement decodes a Statement while keeping the digest of the
// results exactly as they appear in the payload (the outer "predicate" and
// "results" fields shadow the embedded ones). A record written by Annexa
// carries its results as json.Marshal wrote them, so that digest is the
// subject digest and the results need not be marshalled again to check it:
// that re-marshal was half the cost of parsing a record.
type parsedStatement struct {
	Statement
	Predicate parsedPredicate `json:"predicate"`
}

type parsedPredicate struct {
	Predicate
	Results capturedResults `json:"results"`
}

type capturedResults struct {
	list   []Result
	digest string // hex sha256 of the raw JSON of the results
}

func (c *capturedResults) UnmarshalJSON(b []byte) error {
	c.digest = Digest(b)
	return gojson.UnmarshalWithOption(b, &c.list, strictFields, noCopyStrings)
}

// strictFields is DisallowUnknownFields for goccy/go-json's Unmarshal, which
// offers it only on its (slower, streaming) Decoder: bit 4 of its option
// flags. The differential fuzz test's unknown-field seed keeps it honest.
func strictFields(o *gojson.DecodeOption) { o.Flags |= 1 << 4 }

// noCopyStrings lets decoded strings share the payload's bytes instead of
// copying each: a Record keeps its payload for as long as its strings.
var noCopyStrings = gojson.DecodeNoCopyString()

// validate checks the statement; rawDigest is the digest of the results as
// they were in the payload ("" if unknown).
func (st *Statement) validate(rawDigest string) error {
	if st.Type != StatementType {
		return fmt.Errorf("_type %q, want %q", st.Type, StatementType)
	}
	if st.PredicateType != PredicateType {
		return fmt.Errorf("predicateType %q, want %q", st.PredicateType, PredicateType)
	}
	if len(st.Subject) != 1 {
		return fmt.Errorf("%d subjects, want 1", len(st.Subject))
	}
	if _, err := ParseAsset(st.Subject[0].Name); err != nil {
		return err
	}
	p := &st.Predicate
	if p.AgentID == "" {
		return errors.New("predicate without agent_id")
	}
	if p.Seq == 0 {
		return errors.New("seq 0: seqs start at 1")
	}
	if !isHexDigest(p.Prev) {
		return fmt.Errorf("prev %q is not a hex sha256", p.Prev)
	}
	if p.Collector == "" {
		return errors.New("predicate without collector")
	}
	for i := range p.Results {
		if err := p.Results[i].Validate(); err != nil {
			return err
		}
	}
	// The subject digest must be that of the results as json.Marshal writes
	// them. When the payload carries them in exactly that form, the digest
	// of their raw bytes is it; otherwise they are marshalled to find out.
	if got := st.Subject[0].Digest["sha256"]; got != rawDigest {
		want, err := ResultsDigest(p.Results)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("subject digest %q does not match the results (%s)", got, want)
		}
	}
	if g := p.Gap; g != nil {
		if g.From != p.Seq || g.To < g.From {
			return fmt.Errorf("gap %d-%d does not start at the record's seq %d", g.From, g.To, p.Seq)
		}
		if g.To == math.MaxUint64 {
			return fmt.Errorf("gap %d-%d ends at the largest seq: no record could follow it", g.From, g.To)
		}
		if !isHexDigest(g.LastDigest) {
			return fmt.Errorf("gap last_digest %q is not a hex sha256", g.LastDigest)
		}
	}
	if r := p.Rotation; r != nil {
		if err := CheckAgentKey(r.NewPublic); err != nil {
			return fmt.Errorf("rotation: %w", err)
		}
		if r.NewKeyID != dsse.KeyID(r.NewPublic) {
			return errors.New("rotation new_keyid does not match its key")
		}
	}
	return nil
}

// Asset is the record's subject; for an attestation, the person who vouches
// (its subject is the attested document).
func (r *Record) Asset() Asset {
	if r.Attestation != nil {
		return PersonAsset(r.Attestation.PersonID)
	}
	return Asset(r.Subject[0].Name)
}

// Next returns the seq and prev digest the record after r must carry: after
// a gap record, the record after the hole links to the last dropped digest.
func (r *Record) Next() (seq uint64, prev string) {
	if g := r.Predicate.Gap; g != nil {
		return g.To + 1, g.LastDigest
	}
	return r.Predicate.Seq + 1, r.Digest
}

// Open verifies env under pub and parses its record. The signature is checked
// over the envelope's exact payload bytes; the payload type must be the
// in-toto type; a keyid, if present, must name pub.
func Open(env *dsse.Envelope, pub ed25519.PublicKey) (*Record, error) {
	if err := VerifyRecord(env, pub); err != nil {
		return nil, err
	}
	return ParseRecord(env.Payload)
}

// VerifyRecord is Open without the parse, for callers that parsed the
// payload already (to learn its seq, and so its key).
func VerifyRecord(env *dsse.Envelope, pub ed25519.PublicKey) error {
	k, err := dsse.Prepare(pub)
	if err != nil {
		return err
	}
	return VerifyRecordWith(env, k)
}

// VerifyRecordWith is VerifyRecord with a key decoded once for many records.
func VerifyRecordWith(env *dsse.Envelope, k *dsse.PreparedKey) error {
	if len(env.Signatures) != 1 {
		return fmt.Errorf("%w: %d signatures, an agent record has exactly 1", dsse.ErrMalformed, len(env.Signatures))
	}
	if id := env.Signatures[0].KeyID; id != "" && id != k.ID() {
		return fmt.Errorf("%w: %s", ErrWrongKeyID, id)
	}
	if env.PayloadType == "" {
		return fmt.Errorf("%w: %w", dsse.ErrPayloadType, dsse.ErrEmptyPayloadTy)
	}
	return k.VerifySingle(env, PayloadType)
}

func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
