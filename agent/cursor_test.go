package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence/chain"
)

// A crash between preparing a cursor and committing it is settled at the
// next start against the chain's durable head: committed if its record was
// stored, dropped (the run is repeated) if not.
func TestCursorSettle(t *testing.T) {
	s := cursorStore{dir: filepath.Join(t.TempDir(), CursorDir)}
	cur, err := s.load("access_logs")
	require.NoError(t, err)
	require.Nil(t, cur)

	require.NoError(t, s.prepare("access_logs", 7, "d7", []byte(`{"offset":10}`)))
	require.NoError(t, s.commit("access_logs"))
	cur, err = s.load("access_logs")
	require.NoError(t, err)
	require.JSONEq(t, `{"offset":10}`, string(cur))

	// Crashed after the record was stored (head at seq 8 = this record).
	require.NoError(t, s.prepare("access_logs", 8, "d8", []byte(`{"offset":20}`)))
	notes, err := s.settle(chain.Head{Seq: 8, Digest: "d8"})
	require.NoError(t, err)
	require.Len(t, notes, 1)
	cur, _ = s.load("access_logs")
	require.JSONEq(t, `{"offset":20}`, string(cur))

	// Crashed before the record was stored: head is behind.
	require.NoError(t, s.prepare("access_logs", 9, "d9", []byte(`{"offset":30}`)))
	_, err = s.settle(chain.Head{Seq: 8, Digest: "d8"})
	require.NoError(t, err)
	cur, _ = s.load("access_logs")
	require.JSONEq(t, `{"offset":20}`, string(cur), "the run is repeated from the old cursor")

	// Same seq, different record (a torn append was cut and the seq reused).
	require.NoError(t, s.prepare("access_logs", 9, "d9", []byte(`{"offset":30}`)))
	_, err = s.settle(chain.Head{Seq: 9, Digest: "other"})
	require.NoError(t, err)
	cur, _ = s.load("access_logs")
	require.JSONEq(t, `{"offset":20}`, string(cur))
	_, err = os.Stat(s.path("access_logs", ".pending"))
	require.ErrorIs(t, err, os.ErrNotExist)

	// A damaged cursor file is an error the agent reports, not a panic.
	require.NoError(t, os.WriteFile(s.path("access_logs", ".json"), []byte("{"), 0o600))
	_, err = s.load("access_logs")
	require.ErrorContains(t, err, "cursor access_logs")
}
