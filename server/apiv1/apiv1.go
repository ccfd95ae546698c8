// Package apiv1 holds the request and response types of the server's /v1
// HTTP API, shared by the server, the agent and the annexa CLI.
package apiv1

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/bundle"
)

// EnrollRequest is POST /v1/enroll.
type EnrollRequest struct {
	Token     string            `json:"token"`
	PublicKey []byte            `json:"public_key"`
	Hostname  string            `json:"hostname"`
	Facts     map[string]string `json:"facts,omitempty"`
}

// FactAgentVersion is the enrollment fact carrying the agent's version.
const FactAgentVersion = "agent_version"

// EnrollResponse carries the agent's identity and the signed enrollment
// statement, whose digest is the prev of the agent's first record.
type EnrollResponse struct {
	AgentID    string            `json:"agent_id"`
	Credential string            `json:"credential"`
	Enrollment json.RawMessage   `json:"enrollment"`
	Genesis    string            `json:"genesis"`
	LogIndex   int64             `json:"log_index"`
	Checkpoint string            `json:"checkpoint"`
	ServerKeys string            `json:"server_keys"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// IngestRequest is POST /v1/evidence: one agent's envelopes in seq order,
// each exactly as the agent signed and stored it.
type IngestRequest struct {
	Envelopes []json.RawMessage `json:"envelopes"`
}

// Receipt says where an accepted record sits in the log.
type Receipt struct {
	Seq    uint64 `json:"seq"`
	Index  int64  `json:"index"`
	Digest string `json:"digest"`
}

// IngestResponse answers an ingest. It is sent with every status: on an
// error the records before the failing one may still have been accepted,
// and NextSeq is where the agent resumes. Everything below NextSeq is
// durably in the log.
type IngestResponse struct {
	Accepted   int       `json:"accepted"`
	Duplicates int       `json:"duplicates"`
	NextSeq    uint64    `json:"next_seq"`
	Receipts   []Receipt `json:"receipts,omitempty"`
	Checkpoint string    `json:"checkpoint,omitempty"`
	Error      *Error    `json:"error,omitempty"`
}

// Code is a stable, machine-readable error code. Server and clients use
// these constants; the message beside a code is for people and may change.
type Code string

// The error codes the API answers with.
const (
	// Any endpoint.
	CodeMalformed       Code = "malformed"       // the request is not what the endpoint takes
	CodeUnauthenticated Code = "unauthenticated" // no credential, or an unknown one
	CodeForbidden       Code = "forbidden"       // a credential whose role may not do this
	CodeNotFound        Code = "not_found"
	CodeTooLarge        Code = "too_large"
	CodeOverloaded      Code = "overloaded" // 503 with Retry-After: come back later
	CodeNotReady        Code = "not_ready"
	CodeInternal        Code = "internal" // logged on the server under the request id in the message

	// Queries.
	CodeUnknownControl   Code = "unknown_control"
	CodeAmbiguousControl Code = "ambiguous_control"

	// Enrollment.
	CodeTokenUnusable Code = "token_unusable" // expired, used up or revoked

	// Ingest: why a record was refused.
	CodeSeqGap         Code = "seq_gap" // ExpectedSeq says where to resume
	CodeFork           Code = "fork"
	CodeBrokenLink     Code = "broken_link"
	CodeRevoked        Code = "revoked"
	CodeWrongAgent     Code = "wrong_agent"
	CodeUnknownKey     Code = "unknown_key"
	CodeBadSignature   Code = "bad_signature"
	CodeWrongKeyID     Code = "wrong_keyid"
	CodeBadPayloadType Code = "bad_payload_type"
	CodeNotGranted     Code = "asset_not_granted" // a record about an asset that is neither the agent's host nor granted to it
	CodeBadTime        Code = "bad_time"          // collected_at in the future, or implausibly old
	CodeTooMany        Code = "too_many_checks"   // more results in a record, or check states for an agent, than the server keeps
	CodeUnknownCheck   Code = "unknown_check"     // a check the server's mapping does not know

	// Attestations.
	CodeUnknownPerson Code = "unknown_person" // an attestation by no registered person
	CodeNotAttested   Code = "not_attested"   // a document upload no attestation cites
)

// Error is the body of every 4xx/5xx answer (inside IngestResponse for
// ingest).
type Error struct {
	Code        Code   `json:"code"`
	Message     string `json:"message"`
	Index       *int   `json:"index,omitempty"`
	Seq         uint64 `json:"seq,omitempty"`
	ExpectedSeq uint64 `json:"expected_seq,omitempty"`
}

// ErrorBody wraps Error for non-ingest endpoints.
type ErrorBody struct {
	Error Error `json:"error"`
}

// TokenRequest is POST /v1/tokens.
type TokenRequest struct {
	Role    string            `json:"role"`
	Name    string            `json:"name"`
	Expires time.Time         `json:"expires,omitzero"`
	MaxUses int64             `json:"max_uses,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	// Assets (enroll tokens only) are external assets the enrolled agents
	// may report on, e.g. aws-account:123456789012 for the AWS plugin.
	Assets []evidence.Asset `json:"assets,omitempty"`
	// Selector (analyst and auditor tokens) limits what the token sees to
	// the hosts whose agents' labels match it ("team=finance").
	Selector string `json:"selector,omitempty"`
}

// Checks is GET /v1/checks: the check ids records may carry (the server's
// mapping; a plugin that failed before describing itself is reported as
// "<plugin>.plugin").
type Checks struct {
	Checks []string `json:"checks"`
}

// GrantRequest is POST /v1/agents/{id}/grant and /ungrant.
type GrantRequest struct {
	Assets []evidence.Asset `json:"assets"`
}

// TokenResponse carries the new secret, shown this once.
type TokenResponse struct {
	ID     string `json:"id"`
	Role   string `json:"role"`
	Secret string `json:"secret"`
}

// Page is a page of a list; Next is the cursor of the following page, empty
// on the last.
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// InclusionProof proves a leaf is in the tree of a size.
type InclusionProof struct {
	Index    int64    `json:"index"`
	TreeSize int64    `json:"tree_size"`
	LeafHash string   `json:"leaf_hash"`
	Hashes   []string `json:"hashes"`
}

// ConsistencyProof proves a tree of size From is a prefix of one of size To.
type ConsistencyProof struct {
	From   int64    `json:"from"`
	To     int64    `json:"to"`
	Hashes []string `json:"hashes"`
}

// CheckState is an asset's latest result for a check.
type CheckState struct {
	Asset       string    `json:"asset"`
	AgentID     string    `json:"agent_id"`
	Check       string    `json:"check"`
	Controls    []string  `json:"controls,omitempty"`
	Status      string    `json:"status"`
	Reason      string    `json:"reason"`
	CollectedAt time.Time `json:"collected_at"`
	Since       time.Time `json:"since"`
	Stale       bool      `json:"stale"`
	LogIndex    int64     `json:"log_index"`
}

// ControlSummary is the fleet's state for one Annex A control. Each asset
// with evidence for the control counts once, under its worst current status:
// failing, then error, then stale, then passing.
type ControlSummary struct {
	ID     string   `json:"id"`
	Theme  string   `json:"theme"`
	Title  string   `json:"title"`
	Checks []string `json:"checks,omitempty"`
	// Automated: some check is mapped to the control. Covered: some asset
	// has a result for it.
	Automated     bool `json:"automated"`
	Covered       bool `json:"covered"`
	Assets        int  `json:"assets"`
	Passing       int  `json:"passing"`
	Failing       int  `json:"failing"`
	Error         int  `json:"error"`
	Stale         int  `json:"stale"`
	NotApplicable int  `json:"not_applicable"`
	AttestedCounts
}

// AttestedCounts are people's attestations of a control in force: Attested
// people vouch for it now (AttestedExpiring of them lapse within 30 days);
// AttestedStale people's newest attestation has lapsed.
type AttestedCounts struct {
	Attested         int `json:"attested,omitempty"`
	AttestedExpiring int `json:"attested_expiring,omitempty"`
	AttestedStale    int `json:"attested_stale,omitempty"`
}

// ControlsResponse is GET /v1/controls.
type ControlsResponse struct {
	At        time.Time        `json:"at"`
	Automated int              `json:"automated"`
	Covered   int              `json:"covered"`
	Total     int              `json:"total"`
	Controls  []ControlSummary `json:"controls"`
}

// AssetControl is one asset's status for a control, with the check results
// it was rolled up from.
type AssetControl struct {
	Asset    string       `json:"asset"`
	AgentID  string       `json:"agent_id"`
	Hostname string       `json:"hostname,omitempty"` // the reporting agent's host
	Status   string       `json:"status"`
	Checks   []CheckState `json:"checks"`
}

// ControlDetail is GET /v1/controls/{id}.
type ControlDetail struct {
	ControlSummary
	At time.Time `json:"at"`
	// AssetsDetail is one page of the control's assets, in asset order
	// (?limit=, default 1000); Next continues it (?cursor=).
	AssetsDetail []AssetControl `json:"assets_detail"`
	Next         string         `json:"next,omitempty"`
	// Attestations are the people's attestations of the control in force
	// at At (each person's newest), valid, expiring or expired.
	Attestations []Attestation `json:"attestations"`
}

// Host is an enrolled agent's host with a count of its checks by status.
type Host struct {
	AgentID    string            `json:"agent_id"`
	Hostname   string            `json:"hostname"`
	Labels     map[string]string `json:"labels,omitempty"`
	EnrolledAt time.Time         `json:"enrolled_at"`
	LastSeen   time.Time         `json:"last_seen,omitzero"`
	LastSeq    uint64            `json:"last_seq"`
	Revoked    bool              `json:"revoked"`
	Flag       string            `json:"flag,omitempty"`
	// OS and AgentVersion are from the host's enrollment facts.
	OS           string         `json:"os,omitempty"`
	AgentVersion string         `json:"agent_version,omitempty"`
	Counts       map[string]int `json:"counts"`
}

// HostDetail is GET /v1/hosts/{id}: the host and the latest result of every
// check on every asset its agent reports.
type HostDetail struct {
	Host
	Facts   map[string]string `json:"facts,omitempty"`
	Results []CheckState      `json:"results"`
}

// Result is one check result of one record, as the server indexes it.
type Result struct {
	LogIndex    int64     `json:"log_index"`
	Pos         int       `json:"pos"`
	AgentID     string    `json:"agent_id"`
	Asset       string    `json:"asset"`
	Check       string    `json:"check"`
	Status      string    `json:"status"`
	Reason      string    `json:"reason"`
	CollectedAt time.Time `json:"collected_at"`
}

// Transition is a change of an asset's status for a check.
type Transition struct {
	Asset    string    `json:"asset"`
	Check    string    `json:"check"`
	Status   string    `json:"status"`
	Previous string    `json:"previous,omitempty"`
	At       time.Time `json:"at"`
	LogIndex int64     `json:"log_index"`
}

// Token is an API or enrollment token. The secret itself is never stored.
type Token struct {
	ID        string            `json:"id"`
	Role      string            `json:"role"`
	Name      string            `json:"name"`
	CreatedAt time.Time         `json:"created_at"`
	ExpiresAt time.Time         `json:"expires_at,omitzero"`
	MaxUses   int64             `json:"max_uses,omitempty"`
	Uses      int64             `json:"uses"`
	Labels    map[string]string `json:"labels,omitempty"`
	Revoked   bool              `json:"revoked"`
	// Assets are the external assets an enrollment token grants the agents
	// it enrols.
	Assets []evidence.Asset `json:"assets,omitempty"`
	// Selector limits a read token to the hosts it selects.
	Selector string `json:"selector,omitempty"`
}

// AgentKey is one of an agent's keys and the seqs it is valid for (To 0:
// still valid).
type AgentKey struct {
	AgentID string `json:"agent_id"`
	evidence.KeySpan
	KeyID  string `json:"keyid"`
	Public []byte `json:"public_key"`
}

// ParseLabels reads labels given as key=value (the ?label= query parameter
// and the CLI's --label flag). The key must not be empty; a key given twice
// is an error, since the two values cannot both hold.
func ParseLabels(in []string) (map[string]string, error) {
	out := make(map[string]string, len(in))
	for _, l := range in {
		k, v, ok := strings.Cut(l, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("label %q: want key=value", l)
		}
		if old, dup := out[k]; dup && old != v {
			return nil, fmt.Errorf("label %s given twice (%q and %q)", k, old, v)
		}
		out[k] = v
	}
	return out, nil
}

// WebhookRequest is POST /v1/webhooks: where to send which events (none:
// all), and optionally the signing secret (else the server makes one).
type WebhookRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events,omitempty"`
	Secret string   `json:"secret,omitempty"`
}

// Webhook is a subscription as listed; its secret is shown once, at creation.
type Webhook struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// WebhookResponse answers a creation, with the secret deliveries are signed with.
type WebhookResponse struct {
	Webhook
	Secret string `json:"secret"`
}

// WebhookTest is how a test delivery went.
type WebhookTest struct {
	DeliveryID string `json:"delivery_id"`
	Delivered  bool   `json:"delivered"`
	Status     int    `json:"status,omitempty"`
	Error      string `json:"error,omitempty"`
	TookMS     int64  `json:"took_ms"`
}

// WebhookDelivery is one event queued for a webhook and its attempts.
type WebhookDelivery struct {
	ID          string           `json:"id"`
	Event       string           `json:"event"`
	CreatedAt   time.Time        `json:"created_at"`
	Attempts    int              `json:"attempts"`
	NextAt      time.Time        `json:"next_at,omitzero"`
	DeliveredAt time.Time        `json:"delivered_at,omitzero"`
	FailedAt    time.Time        `json:"failed_at,omitzero"`
	LastStatus  int              `json:"last_status,omitempty"`
	LastError   string           `json:"last_error,omitempty"`
	Log         []WebhookAttempt `json:"log"`
}

// WebhookAttempt is one try of a delivery.
type WebhookAttempt struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Status  int       `json:"status,omitempty"`
	Error   string    `json:"error,omitempty"`
	TookMS  int64     `json:"took_ms"`
}

// SoAStatuses are the implementation statuses a Statement of Applicability
// records for an applicable control: the ones the bundle verifier accepts.
var SoAStatuses = bundle.SoAStatuses

// SoARequest is PUT /v1/soa/{control}: the fields given replace the
// entry's, the others stay.
type SoARequest struct {
	Applicable    *bool   `json:"applicable,omitempty"`
	Status        *string `json:"status,omitempty"`
	Owner         *string `json:"owner,omitempty"`
	Justification *string `json:"justification,omitempty"`
}

// SoAEvidence is what backs a control: its automated checks and the
// fleet's state for them.
type SoAEvidence struct {
	Automated     bool     `json:"automated"`
	Checks        []string `json:"checks,omitempty"`
	Assets        int      `json:"assets"`
	Passing       int      `json:"passing"`
	Failing       int      `json:"failing"`
	Error         int      `json:"error"`
	Stale         int      `json:"stale"`
	NotApplicable int      `json:"not_applicable"`
	AttestedCounts
}

// SoAControl is one control's line of the Statement of Applicability.
type SoAControl struct {
	ID    string `json:"id"`
	Theme string `json:"theme"`
	Title string `json:"title"`
	// Assessed: an admin has set this line; an unassessed control counts
	// as applicable with no status, and is flagged.
	Assessed      bool        `json:"assessed"`
	Applicable    bool        `json:"applicable"`
	Status        string      `json:"status,omitempty"`
	Owner         string      `json:"owner,omitempty"`
	Justification string      `json:"justification,omitempty"`
	UpdatedAt     time.Time   `json:"updated_at,omitzero"`
	UpdatedBy     string      `json:"updated_by,omitempty"`
	Evidence      SoAEvidence `json:"evidence"`
	// Flags are what an auditor would ask about: applicable without
	// evidence, failing or stale evidence, excluded with evidence, no status.
	Flags []string `json:"flags,omitempty"`
}

// SoAResponse is GET /v1/soa: all 93 controls.
type SoAResponse struct {
	At          time.Time    `json:"at"`
	Applicable  int          `json:"applicable"`
	Excluded    int          `json:"excluded"`
	Implemented int          `json:"implemented"`
	Flagged     int          `json:"flagged"`
	Controls    []SoAControl `json:"controls"`
}

// SoAChange is one edit of the Statement of Applicability: each field it
// changed, [before, after].
type SoAChange struct {
	At      time.Time            `json:"at"`
	Control string               `json:"control"`
	By      string               `json:"by"`
	Changes map[string][2]string `json:"changes"`
}

// Scope is the ISMS scope: GET and PUT /v1/scope. Agents is how many
// enrolled agents it selects (in answers only).
type Scope struct {
	Selector string `json:"selector"`
	Agents   int    `json:"agents,omitempty"`
}

// PersonRequest is POST /v1/persons: an admin registers a person's public
// key (made on their own machine by annexa person init) with a name and role.
type PersonRequest struct {
	Name      string `json:"name"`
	Role      string `json:"role,omitempty"`
	PublicKey []byte `json:"public_key"`
}

// Person is someone registered to attest, and where their chain stands.
type Person struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role,omitempty"`
	KeyID     string    `json:"keyid"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	// NextSeq and Prev are what the person's next attestation carries.
	NextSeq      uint64 `json:"next_seq"`
	Prev         string `json:"prev"`
	Revoked      bool   `json:"revoked,omitempty"`
	RevokedAfter uint64 `json:"revoked_after,omitempty"`
	// LogIndex is the registration's place in the log (in answers to
	// POST /v1/persons).
	LogIndex int64 `json:"log_index,omitempty"`
}

// AttestResponse is POST /v1/attestations: where the log holds the
// attestation, with the checkpoint that covers it.
type AttestResponse struct {
	Receipt
	PersonID   string `json:"person_id"`
	Duplicate  bool   `json:"duplicate,omitempty"`
	Checkpoint string `json:"checkpoint"`
	// FileWanted: the attested document may be uploaded (PUT
	// /v1/attestations/files/{sha256}) and is not stored yet; FileStored:
	// the server holds it already. Neither: it is larger than the server
	// keeps (its digest is attested all the same).
	FileWanted bool `json:"file_wanted,omitempty"`
	FileStored bool `json:"file_stored,omitempty"`
}

// AttestationEntry is an accepted attestation as the server indexes it
// (the signed envelope is the log entry at LogIndex).
type AttestationEntry struct {
	LogIndex   int64     `json:"log_index"`
	PersonID   string    `json:"person_id"`
	Seq        uint64    `json:"seq"`
	Digest     string    `json:"digest"`
	Controls   []string  `json:"controls"`
	Statement  string    `json:"statement"`
	SHA256     string    `json:"sha256"`
	FileName   string    `json:"file_name,omitempty"`
	FileSize   int64     `json:"file_size,omitempty"`
	MediaType  string    `json:"media_type,omitempty"`
	AttestedAt time.Time `json:"attested_at"`
	ValidUntil time.Time `json:"valid_until"`
	ReceivedAt time.Time `json:"received_at"`
}

// Attestation is an accepted attestation: GET /v1/attestations.
type Attestation struct {
	AttestationEntry
	Person     string `json:"person"`
	Role       string `json:"role,omitempty"`
	FileStored bool   `json:"file_stored,omitempty"`
	// Status is "valid", "expiring" (within the reminder window) or
	// "expired", at the answer's instant. Superseded: a later attestation
	// by the same person covers all its controls.
	Status     string `json:"status"`
	Superseded bool   `json:"superseded,omitempty"`
}

// AttestationsResponse is GET /v1/attestations.
type AttestationsResponse struct {
	At           time.Time     `json:"at"`
	Attestations []Attestation `json:"attestations"`
}

// Framework describes a framework mapping: GET /v1/frameworks.
type Framework struct {
	Name         string `json:"name"`
	Title        string `json:"title"`
	Source       string `json:"source"`
	Note         string `json:"note,omitempty"`
	Requirements int    `json:"requirements"`
}

// FrameworkState is GET /v1/frameworks/{name}: the fleet's state per
// requirement of another framework, through its mapping onto Annex A.
type FrameworkState struct {
	Framework
	At           time.Time          `json:"at"`
	Counts       map[string]int     `json:"counts"` // requirements by status
	Requirements []RequirementState `json:"requirements"`
}

// RequirementState is one requirement: its worst mapped control's status,
// and each control's.
type RequirementState struct {
	ID       string               `json:"id"`
	Title    string               `json:"title"`
	Status   string               `json:"status"`
	Controls []RequirementControl `json:"controls"`
}

// RequirementControl is a mapped control and its status.
type RequirementControl struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Status string `json:"status"`
}

// Status is a control's one-word state: its worst status present, or why
// it has none. Attestations count beside the assets: a lapsed one makes
// the control stale until renewed.
func (c ControlSummary) Status() string {
	switch {
	case !c.Automated && c.Attested+c.AttestedStale == 0:
		return "not_automated"
	case !c.Covered:
		return "not_covered"
	case c.Failing > 0:
		return "failing"
	case c.Error > 0:
		return "error"
	case c.Stale > 0, c.AttestedStale > 0 && c.Attested == 0:
		return "stale"
	case c.Passing > 0, c.Attested > 0:
		return "passing"
	}
	return "not_applicable"
}

// RequirementStatus rolls a requirement's controls' statuses up: the worst
// of failing, error and stale; passing when every control passes; partial
// when some pass and others have no evidence; not_covered when none has.
func RequirementStatus(controls []string) string {
	has := map[string]bool{}
	for _, s := range controls {
		has[s] = true
	}
	for _, s := range []string{"failing", "error", "stale"} {
		if has[s] {
			return s
		}
	}
	switch {
	case has["passing"] && (has["not_covered"] || has["not_automated"]):
		return "partial"
	case has["passing"]:
		return "passing"
	case has["not_applicable"]:
		return "not_applicable"
	}
	return "not_covered"
}
