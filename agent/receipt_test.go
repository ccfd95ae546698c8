package agent

import (
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/annexa-dev/annexa/evidence/checkpoint"
	"github.com/annexa-dev/annexa/server/apiv1"
)

func TestReceiptMustVerifyUnderPinnedLogKey(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "annexa.test/log")
	require.NoError(t, err)
	v, _ := note.NewVerifier(vkey)
	s, _ := note.NewSigner(skey)
	a := &Agent{logKey: v}
	sign := func(signer note.Signer, size int64) string {
		b, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: "annexa.test/log", Size: size, Hash: tlog.RecordHash([]byte("x"))}, signer)
		require.NoError(t, err)
		return string(b)
	}
	resp := &apiv1.IngestResponse{Accepted: 1, Receipts: []apiv1.Receipt{{Seq: 7, Index: 41}}, Checkpoint: sign(s, 42)}
	require.NoError(t, a.checkReceipt(resp))

	// Another server's key (an impostor, or a restored server with new keys).
	other, _, _ := note.GenerateKey(rand.Reader, "annexa.test/log")
	os, _ := note.NewSigner(other)
	resp.Checkpoint = sign(os, 42)
	require.ErrorContains(t, a.checkReceipt(resp), "does not verify under the log key pinned at enrollment")

	// A checkpoint that does not reach the index it claims.
	resp.Checkpoint = sign(s, 41)
	require.ErrorContains(t, a.checkReceipt(resp), "does not cover log index 41")

	// Nothing new accepted (duplicates): nothing to check.
	require.NoError(t, a.checkReceipt(&apiv1.IngestResponse{Duplicates: 3}))
}
