package server_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/servertest"
)

// Many agents shipping at once share commits (group commit), and each
// agent's answer is its own: the one that skips a seq is refused, every
// other is accepted with a checkpoint that covers its records.
func TestGroupCommitKeepsEachAnswerItsOwn(t *testing.T) {
	s := servertest.New(t, server.Config{})
	const n = 24
	var agents []*servertest.Agent
	for i := range n {
		agents = append(agents, s.Enrol("", fmt.Sprintf("g%02d", i)))
	}
	for round := range 5 {
		var wg sync.WaitGroup
		resps := make([]*apiv1.IngestResponse, n)
		errs := make([]error, n)
		for i, a := range agents {
			env := a.Record(t0, map[string]evidence.Status{"disk_encryption.system_volume": evidence.Pass})
			if i == 7 && round == 2 {
				a.Record(t0, map[string]evidence.Status{"disk_encryption.system_volume": evidence.Fail}) // written, never sent
				env = a.Record(t0, map[string]evidence.Status{"disk_encryption.system_volume": evidence.Pass})
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				resps[i], errs[i] = a.Ship(env)
			}()
		}
		wg.Wait()
		for i := range agents {
			if i == 7 && round >= 2 {
				var ce *client.Error
				require.ErrorAs(t, errs[i], &ce, "agent %d round %d", i, round)
				require.Contains(t, ce.Error(), "seq_gap")
				continue
			}
			require.NoError(t, errs[i], "agent %d round %d", i, round)
			require.Equal(t, 1, resps[i].Accepted)
			require.NotEmpty(t, resps[i].Checkpoint, "a signed checkpoint covers the receipt")
		}
	}
	// Every accepted record is in the log, in one verifiable tree.
	resp, body := get(t, s, s.Admin, "/v1/log/checkpoint")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	lines := strings.Split(string(body), "\n")
	require.Equal(t, fmt.Sprint(n+n*5-3), lines[1], "24 enrolments and every accepted record, nothing else")
	mresp, err := http.Get(s.URL + "/metrics")
	require.NoError(t, err)
	mb, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	require.Contains(t, string(mb), "annexa_ingest_group_batches_count", "the group sizes are exported")
}
