package evidence

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"filippo.io/edwards25519"

	"github.com/annexa-dev/annexa/evidence/dsse"
)

// Key events are statements by the server's enrollment authority about agent
// keys. They are entries of the transparency log like records, so "which key
// was valid for this record" is answered from the log itself.
const (
	KeyEventPayloadType = "application/vnd.annexa.key-event+json"
	KeyEventType        = "https://annexa.dev/key-event/v1"
)

// KeyEventKind says what happened to an agent's key.
type KeyEventKind string

// The key events.
const (
	Enroll KeyEventKind = "enroll" // agent has key from FromSeq (and may report on Assets)
	Rotate KeyEventKind = "rotate" // agent has a new key from FromSeq; the old one ends the seq before
	Revoke KeyEventKind = "revoke" // no record of the agent after AfterSeq is valid
	// Grant lets the agent report on Assets (cloud accounts, …) besides
	// its own host, from this point of the log on; Ungrant takes them back.
	Grant   KeyEventKind = "grant"
	Ungrant KeyEventKind = "ungrant"
	// Person registers a person's key (AgentID is the person's id) from
	// FromSeq: the key signs that person's attestations and nothing else.
	// A person is removed with Revoke, like an agent.
	Person KeyEventKind = "person"
)

// PersonInfo names the person a Person key event registers.
type PersonInfo struct {
	Name string `json:"name"`
	Role string `json:"role,omitempty"`
}

// KeyEvent is one key event.
type KeyEvent struct {
	Type      string            `json:"_type"`
	Kind      KeyEventKind      `json:"kind"`
	AgentID   string            `json:"agent_id"`
	KeyID     string            `json:"keyid,omitempty"`
	PublicKey []byte            `json:"public_key,omitempty"`
	FromSeq   uint64            `json:"from_seq,omitempty"`
	AfterSeq  uint64            `json:"after_seq,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	// Assets are the external assets an enrollment or grant lets the
	// agent report on, or an ungrant takes back.
	Assets []Asset           `json:"assets,omitempty"`
	Host   map[string]string `json:"host,omitempty"`
	// Person is who a Person event registers.
	Person *PersonInfo `json:"person,omitempty"`
	Time   time.Time   `json:"time"`
}

// Validate checks a key event's shape.
func (k *KeyEvent) Validate() error {
	if k.Type != KeyEventType {
		return fmt.Errorf("key event _type %q, want %q", k.Type, KeyEventType)
	}
	if k.AgentID == "" {
		return errors.New("key event without agent_id")
	}
	switch k.Kind {
	case Enroll, Rotate, Person:
		if err := CheckAgentKey(k.PublicKey); err != nil {
			return fmt.Errorf("%s event: %w", k.Kind, err)
		}
		if k.KeyID != dsse.KeyID(k.PublicKey) {
			return fmt.Errorf("%s event: keyid does not match the key", k.Kind)
		}
		if k.FromSeq == 0 {
			return fmt.Errorf("%s event without from_seq", k.Kind)
		}
		if (k.Kind == Person) != (k.Person != nil && k.Person.Name != "") {
			return fmt.Errorf("%s event: a person's name comes with a person event, and only with one", k.Kind)
		}
	case Revoke:
	case Grant, Ungrant:
		if len(k.Assets) == 0 {
			return fmt.Errorf("%s event without assets", k.Kind)
		}
	default:
		return fmt.Errorf("unknown key event kind %q", k.Kind)
	}
	for _, a := range k.Assets {
		if err := ValidExternalAsset(a); err != nil {
			return fmt.Errorf("%s event: %w", k.Kind, err)
		}
	}
	return nil
}

// SignKeyEvent signs a key event with the enrollment authority's key.
func SignKeyEvent(authority ed25519.PrivateKey, ev *KeyEvent) (*dsse.Envelope, error) {
	ev.Type = KeyEventType
	ev.Time = ev.Time.UTC()
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	return signByAuthority(authority, KeyEventPayloadType, ev)
}

// OpenKeyEvent verifies a key event under the enrollment authority's public
// key and parses it.
func OpenKeyEvent(env *dsse.Envelope, authority ed25519.PublicKey) (*KeyEvent, error) {
	if err := verifyByAuthority(env, authority, KeyEventPayloadType); err != nil {
		return nil, fmt.Errorf("key event: %w", err)
	}
	return ParseKeyEvent(env.Payload)
}

// signByAuthority signs a statement of the server's enrollment authority
// (a key event, a Statement of Applicability change) as payloadType.
func signByAuthority(authority ed25519.PrivateKey, payloadType string, v any) (*dsse.Envelope, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return dsse.Sign(authority, payloadType, b)
}

// verifyByAuthority checks such a statement's signature and payload type.
func verifyByAuthority(env *dsse.Envelope, authority ed25519.PublicKey, payloadType string) error {
	v := dsse.Verifier{Keys: []dsse.TrustedKey{{ID: dsse.KeyID(authority), Key: authority}}, PayloadTypes: []string{payloadType}}
	_, err := v.Verify(env)
	return err
}

// ParseKeyEvent parses a key event payload without checking its signature.
func ParseKeyEvent(payload []byte) (*KeyEvent, error) {
	var ev KeyEvent
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return nil, fmt.Errorf("key event: %w", err)
	}
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	return &ev, nil
}

// CheckAgentKey refuses an ed25519 public key no honest agent has: not 32
// bytes, a non-canonical encoding, or a point of small order (the all-zero
// key is one), for which a constant signature verifies for any message.
// Enrollment, rotation and the offline verifier all apply it.
func CheckAgentKey(pub []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return fmt.Errorf("public key is not a point of the curve: %w", err)
	}
	if !bytes.Equal(p.Bytes(), pub) {
		return errors.New("public key is not canonically encoded")
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return errors.New("public key is a point of small order: any signature would verify")
	}
	return nil
}
