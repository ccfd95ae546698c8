package agent

import (
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/annexa-dev/annexa/agent/outbox"
	"github.com/annexa-dev/annexa/evidence/checkpoint"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// A record is done with only when the answer proves it is in the log: a
// receipt naming its seq and digest, at an index a checkpoint signed by the
// pinned log key covers. Duplicates need the same proof.
func TestReceiptsProveWhatIsDone(t *testing.T) {
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
	items := []outbox.Item{{Seq: 7, Digest: "d7"}, {Seq: 8, Digest: "d8", Last: 12}, {Seq: 13, Digest: "d13"}}
	rc := func(seq uint64, idx int64, d string) apiv1.Receipt {
		return apiv1.Receipt{Seq: seq, Index: idx, Digest: d}
	}

	resp := &apiv1.IngestResponse{Accepted: 3, NextSeq: 14, Receipts: []apiv1.Receipt{rc(7, 40, "d7"), rc(8, 41, "d8"), rc(13, 42, "d13")}, Checkpoint: sign(s, 43)}
	through, err := a.receiptedThrough(items, resp)
	require.NoError(t, err)
	assert.Equal(t, uint64(13), through)

	// Duplicates only: proved the same way.
	resp = &apiv1.IngestResponse{Duplicates: 1, NextSeq: 14, Receipts: []apiv1.Receipt{rc(7, 40, "d7")}, Checkpoint: sign(s, 43)}
	through, err = a.receiptedThrough(items, resp)
	require.NoError(t, err)
	assert.Equal(t, uint64(7), through, "only what a receipt covers")

	// An unsigned or empty answer, even one claiming next_seq 14, proves
	// nothing: the probe's {"accepted":0,"duplicates":N,"next_seq":N+1}.
	through, err = a.receiptedThrough(items, &apiv1.IngestResponse{Duplicates: 3, NextSeq: 14})
	require.NoError(t, err)
	assert.Zero(t, through)
	_, err = a.receiptedThrough(items, &apiv1.IngestResponse{Duplicates: 1, NextSeq: 14, Receipts: []apiv1.Receipt{rc(7, 40, "d7")}})
	require.ErrorContains(t, err, "does not verify under the log key pinned at enrollment")

	// Another server's key (an impostor, or a restored server with new keys).
	other, _, _ := note.GenerateKey(rand.Reader, "annexa.test/log")
	os, _ := note.NewSigner(other)
	resp.Checkpoint = sign(os, 43)
	_, err = a.receiptedThrough(items, resp)
	require.ErrorContains(t, err, "does not verify under the log key pinned at enrollment")

	// A checkpoint that does not reach the index it claims.
	resp.Checkpoint = sign(s, 40)
	_, err = a.receiptedThrough(items, resp)
	require.ErrorContains(t, err, "does not cover log index 40")

	// A receipt for another record at that seq (a fork the server keeps)
	// does not finish this one.
	resp = &apiv1.IngestResponse{NextSeq: 8, Receipts: []apiv1.Receipt{rc(7, 40, "other")}, Checkpoint: sign(s, 43)}
	through, err = a.receiptedThrough(items, resp)
	require.NoError(t, err)
	assert.Zero(t, through)
}
