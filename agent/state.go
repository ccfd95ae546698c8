// Package agent is the Annexa agent daemon: enrollment, the collection
// scheduler, signing and chaining records into the durable outbox, and
// shipping them to the server.
package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/annexa-dev/annexa/internal/atomicfile"
)

// Files in the state directory.
const (
	KeyFile      = "agent.key" // the private key, 0600; never leaves the host
	NextKeyFile  = "agent.key.next"
	IdentityFile = "agent.json" // who we are and where we ship
	CAFile       = "ca.crt"     // the CA given at enrollment
	ReceiptFile  = "receipt.json"
	StatusFile   = "status.json"
	OutboxDir    = "outbox"
	LockFile     = "agent.lock"
)

// Identity is what enrollment gave the agent.
type Identity struct {
	AgentID    string            `json:"agent_id"`
	Server     string            `json:"server"`
	Credential string            `json:"credential"`
	Genesis    string            `json:"genesis"`
	EnrolledAt time.Time         `json:"enrolled_at"`
	ServerKeys string            `json:"server_keys"`
	Labels     map[string]string `json:"labels,omitempty"`
	// Enrollment is the signed enrollment statement the chain starts from.
	Enrollment json.RawMessage `json:"enrollment"`
}

// ErrNotEnrolled is returned when the state directory holds no identity.
var ErrNotEnrolled = errors.New("this agent is not enrolled: run `annexa-agent enroll --server URL --token TOKEN` first")

// LoadIdentity reads the identity from dir.
func LoadIdentity(dir string) (*Identity, error) {
	b, err := os.ReadFile(filepath.Join(dir, IdentityFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotEnrolled
	}
	if err != nil {
		return nil, err
	}
	var id Identity
	if err := json.Unmarshal(b, &id); err != nil {
		return nil, fmt.Errorf("%s: %w", IdentityFile, err)
	}
	if id.AgentID == "" || id.Credential == "" || len(id.Genesis) != 64 {
		return nil, fmt.Errorf("%s is incomplete: enroll again", filepath.Join(dir, IdentityFile))
	}
	return &id, nil
}

func saveJSON(path string, v any, mode os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), mode)
}

// Receipt is the last answer the server gave to a shipment.
type Receipt struct {
	ShippedAt  time.Time `json:"shipped_at"`
	NextSeq    uint64    `json:"next_seq"`
	LastIndex  int64     `json:"last_index"`
	Checkpoint string    `json:"checkpoint"`
}

// CollectorStatus is the last run of one collector.
type CollectorStatus struct {
	At      time.Time         `json:"at"`
	Seq     uint64            `json:"seq"`
	Results map[string]string `json:"results"`
	Error   string            `json:"error,omitempty"`
}
