package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// Agent is an enrolled agent and where its chain stands.
type Agent struct {
	ID           string            `json:"id"`
	Hostname     string            `json:"hostname"`
	Facts        map[string]string `json:"facts,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	EnrolledAt   time.Time         `json:"enrolled_at"`
	LastSeen     time.Time         `json:"last_seen,omitzero"`
	LastSeq      uint64            `json:"last_seq"`
	Link         string            `json:"link"`
	RevokedAt    time.Time         `json:"revoked_at,omitzero"`
	RevokedAfter uint64            `json:"revoked_after,omitempty"`
	Flag         string            `json:"flag,omitempty"`
	CredHash     string            `json:"-"`
}

// Revoked says whether the agent was revoked.
func (a *Agent) Revoked() bool { return !a.RevokedAt.IsZero() }

// Revocation is the agent's revocation as the key rule takes it.
func (a *Agent) Revocation() evidence.Revocation {
	return evidence.Revocation{Revoked: a.Revoked(), After: a.RevokedAfter}
}

// AgentKey is apiv1.AgentKey: the API shows it as the store keeps it.
type AgentKey = apiv1.AgentKey

const agentCols = `id, cred_hash, hostname, facts, labels, enrolled_at, last_seen, last_seq, link, revoked_at, revoked_after, flag`

func scanAgent(sc interface{ Scan(...any) error }) (*Agent, error) {
	var a Agent
	var facts, labels string
	var enrolled, seen, revoked int64
	var lastSeq, after int64
	if err := sc.Scan(&a.ID, &a.CredHash, &a.Hostname, &facts, &labels, &enrolled, &seen, &lastSeq, &a.Link, &revoked, &after, &a.Flag); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	a.EnrolledAt, a.LastSeen, a.RevokedAt = fromNanos(enrolled), fromNanos(seen), fromNanos(revoked)
	a.LastSeq, a.RevokedAfter = uint64(lastSeq), uint64(after)
	if err := json.Unmarshal([]byte(facts), &a.Facts); err != nil {
		return nil, fmt.Errorf("agent %s facts: %w", a.ID, err)
	}
	if err := json.Unmarshal([]byte(labels), &a.Labels); err != nil {
		return nil, fmt.Errorf("agent %s labels: %w", a.ID, err)
	}
	return &a, nil
}

// InsertAgent stores a newly enrolled agent with its first key.
func (t *Tx) InsertAgent(ctx context.Context, a *Agent, key AgentKey) error {
	facts, _ := json.Marshal(nonNil(a.Facts))
	labels, _ := json.Marshal(nonNil(a.Labels))
	if _, err := t.exec(ctx, `INSERT INTO agents (`+agentCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		a.ID, a.CredHash, a.Hostname, string(facts), string(labels), nanos(a.EnrolledAt), nanos(a.LastSeen),
		int64(a.LastSeq), a.Link, int64(0), int64(0), ""); err != nil {
		return fmt.Errorf("insert agent: %w", err)
	}
	return t.InsertAgentKey(ctx, key)
}

// LockAgent reads an agent and holds its row until the transaction ends, so
// one agent's batches are applied one at a time, across replicas too.
func (t *Tx) LockAgent(ctx context.Context, id string) (*Agent, error) {
	return scanAgent(t.queryRow(ctx, `SELECT `+agentCols+` FROM agents WHERE id = ?`+t.dialect.forUpdate(), id))
}

// Agent reads an agent.
func (s *DB) Agent(ctx context.Context, id string) (*Agent, error) {
	return scanAgent(s.queryRow(ctx, `SELECT `+agentCols+` FROM agents WHERE id = ?`, id))
}

// Agents lists agents ordered by id, after the id `after`, at most limit.
func (s *DB) Agents(ctx context.Context, after string, limit int) ([]Agent, error) {
	return s.AgentsNamed(ctx, after, "", limit)
}

// AgentsNamed is Agents of the agents whose hostname contains name (any
// case; "" for all). The database tests the name as it walks the id
// index, so a search reads no row it does not return.
func (s *DB) AgentsNamed(ctx context.Context, after, name string, limit int) ([]Agent, error) {
	q, args := `SELECT `+agentCols+` FROM agents WHERE id > ?`, []any{after}
	if name != "" {
		// LOWER on both sides: SQLite's LIKE ignores ASCII case and
		// PostgreSQL's does not; escaped so % and _ in a name are literal.
		q += ` AND LOWER(hostname) LIKE ? ESCAPE '\'`
		args = append(args, "%"+likeEscape(strings.ToLower(name))+"%")
	}
	rows, err := s.query(ctx, q+` ORDER BY id LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	return out, rows.Err()
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// AdvanceAgent records where the agent's chain now stands.
func (t *Tx) AdvanceAgent(ctx context.Context, id string, lastSeq uint64, link string, seen time.Time) error {
	_, err := t.exec(ctx, `UPDATE agents SET last_seq = ?, link = ?, last_seen = ? WHERE id = ?`, int64(lastSeq), link, nanos(seen), id)
	return err
}

// TouchAgent records that the agent was heard from.
func (s *DB) TouchAgent(ctx context.Context, id string, seen time.Time) error {
	return s.InTx(ctx, func(t *Tx) error {
		_, err := t.exec(ctx, `UPDATE agents SET last_seen = ? WHERE id = ?`, nanos(seen), id)
		return err
	})
}

// FlagAgent marks an agent for attention (a fork was seen). It commits on its
// own: the batch that showed the fork is rejected, the flag stays.
func (s *DB) FlagAgent(ctx context.Context, id, flag string) error {
	return s.InTx(ctx, func(t *Tx) error {
		_, err := t.exec(ctx, `UPDATE agents SET flag = ? WHERE id = ?`, flag, id)
		return err
	})
}

// RevokeAgent marks the agent revoked after its last accepted seq.
func (t *Tx) RevokeAgent(ctx context.Context, id string, at time.Time, after uint64) error {
	_, err := t.exec(ctx, `UPDATE agents SET revoked_at = ?, revoked_after = ? WHERE id = ?`, nanos(at), int64(after), id)
	return err
}

// InsertAgentKey adds a key.
func (t *Tx) InsertAgentKey(ctx context.Context, k AgentKey) error {
	_, err := t.exec(ctx, `INSERT INTO agent_keys (agent_id, from_seq, to_seq, keyid, public_key) VALUES (?,?,?,?,?)`,
		k.AgentID, int64(k.From), int64(k.To), k.KeyID, k.Public)
	return err
}

// EndAgentKeys closes the agent's open key at seq to.
func (t *Tx) EndAgentKeys(ctx context.Context, agentID string, to uint64) error {
	_, err := t.exec(ctx, `UPDATE agent_keys SET to_seq = ? WHERE agent_id = ? AND to_seq = 0`, int64(to), agentID)
	return err
}

// AgentKeys lists an agent's keys in seq order.
func (t *Tx) AgentKeys(ctx context.Context, agentID string) ([]AgentKey, error) {
	rows, err := t.query(ctx, `SELECT agent_id, from_seq, to_seq, keyid, public_key FROM agent_keys WHERE agent_id = ? ORDER BY from_seq`, agentID)
	if err != nil {
		return nil, err
	}
	return scanKeys(rows)
}

// AgentKeys lists an agent's keys in seq order.
func (s *DB) AgentKeys(ctx context.Context, agentID string) ([]AgentKey, error) {
	rows, err := s.query(ctx, `SELECT agent_id, from_seq, to_seq, keyid, public_key FROM agent_keys WHERE agent_id = ? ORDER BY from_seq`, agentID)
	if err != nil {
		return nil, err
	}
	return scanKeys(rows)
}

func scanKeys(rows *sql.Rows) ([]AgentKey, error) {
	defer rows.Close()
	var out []AgentKey
	for rows.Next() {
		var k AgentKey
		var from, to int64
		if err := rows.Scan(&k.AgentID, &from, &to, &k.KeyID, &k.Public); err != nil {
			return nil, err
		}
		k.From, k.To = uint64(from), uint64(to)
		out = append(out, k)
	}
	return out, rows.Err()
}

// CountAgents counts the enrolled agents, revoked ones included.
func (s *DB) CountAgents(ctx context.Context) (int, error) {
	var n int
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM agents`).Scan(&n)
	return n, err
}
