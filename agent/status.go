package agent

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	"github.com/annexa-dev/annexa/agent/config"
	"github.com/annexa-dev/annexa/agent/outbox"
)

// Status is what `annexa-agent status` shows.
type Status struct {
	Enrolled      bool                       `json:"enrolled"`
	AgentID       string                     `json:"agent_id,omitempty"`
	Server        string                     `json:"server,omitempty"`
	Receipt       *Receipt                   `json:"last_shipment,omitempty"`
	OutboxRecords int                        `json:"outbox_records"`
	OutboxBytes   int64                      `json:"outbox_bytes"`
	HeadSeq       uint64                     `json:"head_seq"`
	Collectors    map[string]CollectorStatus `json:"collectors"`
	// Settings says where each setting in force came from: agent.yaml,
	// managed preferences (a macOS configuration profile), a flag, or the
	// default.
	Settings map[string]string `json:"settings,omitempty"`
}

// ReadStatus reads the state directory without taking its lock, so it works
// beside a running daemon.
func ReadStatus(cfg *config.Config) (*Status, error) {
	st := &Status{Collectors: map[string]CollectorStatus{}}
	id, err := LoadIdentity(cfg.StateDir)
	if errors.Is(err, ErrNotEnrolled) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	st.Enrolled, st.AgentID, st.Server = true, id.AgentID, id.Server
	if cfg.Server != "" {
		st.Server = cfg.Server
	}
	if b, err := os.ReadFile(filepath.Join(cfg.StateDir, ReceiptFile)); err == nil {
		var r Receipt
		if json.Unmarshal(b, &r) == nil {
			st.Receipt = &r
		}
	}
	if b, err := os.ReadFile(filepath.Join(cfg.StateDir, StatusFile)); err == nil {
		_ = json.Unmarshal(b, &st.Collectors)
	}
	// A read-only look: opening the outbox does not write unless a tail is torn.
	if ob, err := outbox.Inspect(filepath.Join(cfg.StateDir, OutboxDir)); err == nil {
		st.OutboxRecords, st.OutboxBytes = ob.Depth()
		if h, ok := ob.Head(); ok {
			st.HeadSeq = h.Seq
		}
		ob.Close()
	}
	return st, nil
}
