package evidence

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/annexa-dev/annexa/evidence/dsse"
)

// A Statement of Applicability change is a log entry too: who changed which
// control's line, when, and the line as it then stood, signed by the
// server's enrollment authority (the key that vouches for the log's
// administrative facts). A server cannot later rewrite the SoA's history
// without forking the log its checkpoints commit to, and a bundle's soa.json
// must agree with the changes the period's entries hold.
const (
	SoAChangePayloadType = "application/vnd.annexa.soa-change+json"
	SoAChangeType        = "https://annexa.dev/soa-change/v1"
)

// SoAChange is one change of a control's line.
type SoAChange struct {
	Type    string    `json:"_type"`
	Control string    `json:"control"`
	By      string    `json:"by"`
	Time    time.Time `json:"time"`
	// The line after the change.
	Applicable    bool   `json:"applicable"`
	Status        string `json:"status,omitempty"`
	Owner         string `json:"owner,omitempty"`
	Justification string `json:"justification,omitempty"`
	// Changes are the fields it changed, [before, after].
	Changes map[string][2]string `json:"changes"`
}

// SignSoAChange signs a change with the enrollment authority's key.
func SignSoAChange(authority ed25519.PrivateKey, c *SoAChange) (*dsse.Envelope, error) {
	c.Type, c.Time = SoAChangeType, c.Time.UTC()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return signByAuthority(authority, SoAChangePayloadType, c)
}

// OpenSoAChange verifies a change under the authority's key and parses it.
func OpenSoAChange(env *dsse.Envelope, authority ed25519.PublicKey) (*SoAChange, error) {
	if err := verifyByAuthority(env, authority, SoAChangePayloadType); err != nil {
		return nil, fmt.Errorf("soa change: %w", err)
	}
	var c SoAChange
	dec := json.NewDecoder(bytes.NewReader(env.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("soa change: %w", err)
	}
	return &c, c.validate()
}

func (c *SoAChange) validate() error {
	switch {
	case c.Type != SoAChangeType:
		return fmt.Errorf("soa change _type %q, want %q", c.Type, SoAChangeType)
	case !controlID(c.Control):
		return fmt.Errorf("soa change of %q, not an Annex A control id", c.Control)
	case c.By == "":
		return errors.New("soa change without who made it")
	case len(c.Changes) == 0:
		return errors.New("soa change that changes nothing")
	}
	return nil
}
