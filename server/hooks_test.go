package server

import (
	"context"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/server/store"
)

// AppendRawForTest appends env to the log as principal's record at seq,
// with a checkpoint, bypassing every check ingest makes: what a
// compromised server could do, for the offline verifier to catch.
func (s *Server) AppendRawForTest(ctx context.Context, principal string, seq uint64, env []byte) (int64, error) {
	e, err := dsse.Parse(env)
	if err != nil {
		return 0, err
	}
	var idx int64
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		app, err := tx.NewAppender(ctx)
		if err != nil {
			return err
		}
		if idx, err = app.Append(&store.LogEntry{Kind: store.KindRecord, AgentID: principal, Seq: seq, Digest: evidence.Digest(e.Payload), Envelope: env, ReceivedAt: s.now().UTC()}); err != nil {
			return err
		}
		_, err = s.checkpoint(ctx, tx, app)
		return err
	})
	return idx, err
}
