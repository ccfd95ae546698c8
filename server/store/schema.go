package store

import (
	"context"
	"fmt"
	"strings"
)

// migrations are applied in order, once each; a released one is never
// edited, only followed by another. {blob} is the binary column type.
var migrations = []string{
	`
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);

-- API and enrollment tokens; only the sha256 of a secret is kept.
CREATE TABLE tokens (
	id TEXT PRIMARY KEY,
	hash TEXT NOT NULL UNIQUE,
	role TEXT NOT NULL,
	name TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	max_uses BIGINT NOT NULL,
	uses BIGINT NOT NULL,
	labels TEXT NOT NULL,
	revoked INTEGER NOT NULL
);

-- Enrolled agents and where each one's chain stands: last_seq and link, the
-- digest the next record's prev must equal.
CREATE TABLE agents (
	id TEXT PRIMARY KEY,
	cred_hash TEXT NOT NULL,
	hostname TEXT NOT NULL,
	facts TEXT NOT NULL,
	labels TEXT NOT NULL,
	enrolled_at BIGINT NOT NULL,
	last_seen BIGINT NOT NULL,
	last_seq BIGINT NOT NULL,
	link TEXT NOT NULL,
	revoked_at BIGINT NOT NULL,
	revoked_after BIGINT NOT NULL,
	flag TEXT NOT NULL
);

CREATE TABLE agent_keys (
	agent_id TEXT NOT NULL,
	from_seq BIGINT NOT NULL,
	to_seq BIGINT NOT NULL,
	keyid TEXT NOT NULL,
	public_key {blob} NOT NULL,
	PRIMARY KEY (agent_id, from_seq)
);

-- The transparency log: one row per leaf, the leaf being the envelope as
-- received, byte for byte.
CREATE TABLE log_entries (
	idx BIGINT PRIMARY KEY,
	kind TEXT NOT NULL,
	agent_id TEXT NOT NULL,
	seq BIGINT NOT NULL,
	digest TEXT NOT NULL,
	envelope {blob} NOT NULL,
	received_at BIGINT NOT NULL
);
CREATE INDEX log_entries_agent ON log_entries (agent_id, seq);

-- tlog's stored hashes (golang.org/x/mod/sumdb/tlog storage indexes).
CREATE TABLE log_hashes (idx BIGINT PRIMARY KEY, hash {blob} NOT NULL);

-- The one sequencer: appends lock this row.
CREATE TABLE log_head (id INTEGER PRIMARY KEY, size BIGINT NOT NULL);
INSERT INTO log_head (id, size) VALUES (1, 0);

CREATE TABLE checkpoints (size BIGINT PRIMARY KEY, note TEXT NOT NULL, created_at BIGINT NOT NULL);

-- Every result of every record, for evidence queries and point-in-time state.
CREATE TABLE results (
	log_idx BIGINT NOT NULL,
	pos INTEGER NOT NULL,
	agent_id TEXT NOT NULL,
	asset TEXT NOT NULL,
	check_id TEXT NOT NULL,
	status TEXT NOT NULL,
	reason TEXT NOT NULL,
	collected_at BIGINT NOT NULL,
	PRIMARY KEY (log_idx, pos)
);
CREATE INDEX results_asset_check ON results (asset, check_id, collected_at);
CREATE INDEX results_check_time ON results (check_id, collected_at);

-- The latest result per asset and check.
CREATE TABLE state (
	asset TEXT NOT NULL,
	check_id TEXT NOT NULL,
	agent_id TEXT NOT NULL,
	status TEXT NOT NULL,
	reason TEXT NOT NULL,
	collected_at BIGINT NOT NULL,
	log_idx BIGINT NOT NULL,
	since BIGINT NOT NULL,
	PRIMARY KEY (asset, check_id)
);
CREATE INDEX state_agent ON state (agent_id);

-- When each asset's status for each check changed.
CREATE TABLE transitions (
	asset TEXT NOT NULL,
	check_id TEXT NOT NULL,
	status TEXT NOT NULL,
	prev_status TEXT NOT NULL,
	at BIGINT NOT NULL,
	log_idx BIGINT NOT NULL
);
CREATE INDEX transitions_asset ON transitions (asset, check_id, at);
CREATE INDEX transitions_at ON transitions (at);
`,
	// 2: the state mirror's incremental refresh reads what changed after a
	// log index.
	`CREATE INDEX state_log_idx ON state (log_idx);`,
	// 3: the external assets an agent may report on (grants, from its
	// enrollment token or an admin), and the assets an enrollment token
	// grants.
	`
ALTER TABLE tokens ADD COLUMN assets TEXT NOT NULL DEFAULT '[]';
CREATE TABLE asset_grants (
	agent_id TEXT NOT NULL,
	asset TEXT NOT NULL,
	granted_at BIGINT NOT NULL,
	PRIMARY KEY (agent_id, asset)
);
CREATE INDEX asset_grants_asset ON asset_grants (asset);
`,
	// 4: the state rows of a check (a control's page, a check filter) are
	// read by index, now that no server keeps every row in memory.
	`CREATE INDEX state_check ON state (check_id, asset);`,
	// 5: envelopes are stored zstd-compressed; size is the envelope's own
	// length (a bundle announces it before streaming); -1 for rows stored
	// as received before.
	`ALTER TABLE log_entries ADD COLUMN size BIGINT NOT NULL DEFAULT -1;`,
	// 6: webhooks, their queue of deliveries with every attempt, and what
	// has been notified (the transitions' cursor is in meta; an agent's
	// last stale notice is on its row).
	`
CREATE TABLE webhooks (
	id TEXT PRIMARY KEY,
	url TEXT NOT NULL,
	secret TEXT NOT NULL,
	events TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	created_by TEXT NOT NULL
);
CREATE TABLE webhook_deliveries (
	id TEXT PRIMARY KEY,
	webhook_id TEXT NOT NULL,
	event TEXT NOT NULL,
	body TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_at BIGINT NOT NULL,
	lease_until BIGINT NOT NULL DEFAULT 0,
	delivered_at BIGINT NOT NULL DEFAULT 0,
	failed_at BIGINT NOT NULL DEFAULT 0,
	last_status INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, created_at);
CREATE TABLE webhook_attempts (
	delivery_id TEXT NOT NULL,
	attempt INTEGER NOT NULL,
	at BIGINT NOT NULL,
	status INTEGER NOT NULL,
	error TEXT NOT NULL,
	took_ms BIGINT NOT NULL,
	PRIMARY KEY (delivery_id, attempt)
);
CREATE INDEX transitions_log_idx ON transitions (log_idx);
ALTER TABLE agents ADD COLUMN stale_notified BIGINT NOT NULL DEFAULT 0;
`,
	// 7: the Statement of Applicability: per Annex A control, applicable
	// or excluded and why, its implementation status and owner; every
	// change kept with who made it and when.
	`
CREATE TABLE soa (
	control_id TEXT PRIMARY KEY,
	applicable INTEGER NOT NULL,
	status TEXT NOT NULL,
	owner TEXT NOT NULL,
	justification TEXT NOT NULL,
	updated_at BIGINT NOT NULL,
	updated_by TEXT NOT NULL
);
CREATE TABLE soa_changes (
	at BIGINT NOT NULL,
	control_id TEXT NOT NULL,
	changed_by TEXT NOT NULL,
	change TEXT NOT NULL
);
CREATE INDEX soa_changes_at ON soa_changes (at);
`,
	// 8: read tokens limited to a label selector (an external auditor's).
	`ALTER TABLE tokens ADD COLUMN selector TEXT NOT NULL DEFAULT '';`,
	// 9: people who attest, their attestations (an index of the log's
	// entries: the signed envelopes are there) and the documents uploaded
	// for them, by sha256.
	`
CREATE TABLE persons (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	role TEXT NOT NULL,
	keyid TEXT NOT NULL UNIQUE,
	public_key {blob} NOT NULL,
	created_at BIGINT NOT NULL,
	created_by TEXT NOT NULL,
	last_seq BIGINT NOT NULL,
	link TEXT NOT NULL,
	revoked_at BIGINT NOT NULL,
	revoked_after BIGINT NOT NULL
);
CREATE TABLE attestations (
	log_index BIGINT PRIMARY KEY,
	person_id TEXT NOT NULL,
	seq BIGINT NOT NULL,
	digest TEXT NOT NULL,
	controls TEXT NOT NULL,
	statement TEXT NOT NULL,
	subject_sha256 TEXT NOT NULL,
	file_name TEXT NOT NULL,
	file_size BIGINT NOT NULL,
	media_type TEXT NOT NULL,
	attested_at BIGINT NOT NULL,
	valid_until BIGINT NOT NULL,
	received_at BIGINT NOT NULL,
	reminded INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX attestations_valid ON attestations (valid_until);
CREATE INDEX attestations_subject ON attestations (subject_sha256);
CREATE TABLE attested_files (
	sha256 TEXT PRIMARY KEY,
	size BIGINT NOT NULL,
	data {blob} NOT NULL,
	uploaded_at BIGINT NOT NULL
);
`,
	// 10: point-in-time state at scale. Periodic snapshots of the state
	// table (one blob per check), the status changes that arrived after a
	// snapshot newer than them (late: an outbox replayed, a record in
	// flight), and the pairs no snapshot can answer for (results that went
	// back in time, an asset another agent reported, state purged).
	`
CREATE TABLE state_snapshots (
	taken_at BIGINT PRIMARY KEY,
	log_size BIGINT NOT NULL,
	pairs BIGINT NOT NULL,
	bytes BIGINT NOT NULL
);
CREATE TABLE state_snapshot_checks (
	taken_at BIGINT NOT NULL,
	check_id TEXT NOT NULL,
	data {blob} NOT NULL,
	PRIMARY KEY (taken_at, check_id)
);
CREATE TABLE late_transitions (
	asset TEXT NOT NULL,
	check_id TEXT NOT NULL,
	status TEXT NOT NULL,
	prev_status TEXT NOT NULL,
	at BIGINT NOT NULL,
	log_idx BIGINT NOT NULL
);
CREATE INDEX late_transitions_at ON late_transitions (at);
CREATE INDEX late_transitions_new ON late_transitions (log_idx) WHERE prev_status = '';
CREATE TABLE exact_pairs (
	asset TEXT NOT NULL,
	check_id TEXT NOT NULL,
	PRIMARY KEY (asset, check_id)
);
INSERT INTO exact_pairs (asset, check_id)
SELECT DISTINCT asset, check_id FROM (
	SELECT asset, check_id, agent_id, collected_at,
		LAG(agent_id) OVER w AS prev_agent, LAG(collected_at) OVER w AS prev_collected
	FROM results WINDOW w AS (PARTITION BY asset, check_id ORDER BY log_idx, pos)
) x WHERE prev_collected > collected_at OR prev_agent <> agent_id
UNION SELECT DISTINCT asset, check_id FROM results WHERE agent_id IN (SELECT id FROM agents WHERE revoked_at > 0);
`,
	// 11: records stored as deltas from an earlier record of the same
	// agent and collector (envelope.go): the reference each next record
	// is made against.
	`
CREATE TABLE envelope_refs (
	agent_id TEXT NOT NULL,
	ref_key TEXT NOT NULL,
	idx BIGINT NOT NULL,
	PRIMARY KEY (agent_id, ref_key)
);
`,
}

func (s *DB) migrate(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if s.dialect == Postgres {
		// Replicas starting together must not migrate twice.
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(727274)`); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		defer func() { _, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(727274)`) }()
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var have int
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this server knows (%d): upgrade the server", have, len(migrations))
	}
	blob := "BLOB"
	if s.dialect == Postgres {
		blob = "BYTEA"
	}
	for v := have + 1; v <= len(migrations); v++ {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, stmt := range strings.Split(migrations[v-1], ";\n") {
			stmt = strings.TrimSpace(strings.ReplaceAll(stmt, "{blob}", blob))
			if stmt == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("migration %d: %w\n%s", v, err, stmt)
			}
		}
		if _, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO schema_migrations (version) VALUES (?)`), v); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
	}
	return nil
}
