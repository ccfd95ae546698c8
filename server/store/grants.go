package store

import (
	"context"
	"time"

	"github.com/annexa-dev/annexa/evidence"
)

// Grants lists the external assets an agent may report on.
func (t *Tx) Grants(ctx context.Context, agentID string) (map[evidence.Asset]bool, error) {
	rows, err := t.query(ctx, `SELECT asset FROM asset_grants WHERE agent_id = ?`, agentID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[evidence.Asset]bool{}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		out[evidence.Asset(a)] = true
	}
	return out, rows.Err()
}

// Grant lets an agent report on assets; granting one it holds is a no-op.
func (t *Tx) Grant(ctx context.Context, agentID string, assets []evidence.Asset, at time.Time) error {
	for _, a := range assets {
		if _, err := t.exec(ctx, `INSERT INTO asset_grants (agent_id, asset, granted_at) VALUES (?,?,?) ON CONFLICT (agent_id, asset) DO NOTHING`,
			agentID, string(a), nanos(at)); err != nil {
			return err
		}
	}
	return nil
}

// Ungrant takes assets back from an agent.
func (t *Tx) Ungrant(ctx context.Context, agentID string, assets []evidence.Asset) error {
	for _, a := range assets {
		if _, err := t.exec(ctx, `DELETE FROM asset_grants WHERE agent_id = ? AND asset = ?`, agentID, string(a)); err != nil {
			return err
		}
	}
	return nil
}

// AgentGrants lists an agent's grants outside a transaction.
func (s *DB) AgentGrants(ctx context.Context, agentID string) ([]evidence.Asset, error) {
	rows, err := s.query(ctx, `SELECT asset FROM asset_grants WHERE agent_id = ? ORDER BY asset`, agentID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []evidence.Asset
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		out = append(out, evidence.Asset(a))
	}
	return out, rows.Err()
}
