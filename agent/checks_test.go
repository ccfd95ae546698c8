package agent

import (
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/annexa-dev/annexa/evidence"
)

// Results for checks the server does not take are left out of the record
// (a refused record would stall the chain); a plugin's failure report
// stays; before the server has answered once, nothing is left out.
func TestKeepOnlyChecksTheServerTakes(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rs := []evidence.Result{{Check: "ssh.root_login"}, {Check: "custom.thing"}, {Check: "backups.plugin"}}
	var c serverChecks
	assert.Equal(t, rs, c.keep("x", rs, log), "nothing known yet: nothing left out")
	c.known = set([]string{"ssh.root_login"})
	assert.Equal(t, []evidence.Result{{Check: "ssh.root_login"}, {Check: "backups.plugin"}}, c.keep("x", rs, log))
	assert.Len(t, rs, 3, "the caller's results are not changed")
	assert.True(t, evidence.IsPluginFailureCheck("aws-iam_2.plugin"))
	assert.False(t, evidence.IsPluginFailureCheck("Evil Name.plugin"))
	assert.False(t, evidence.IsPluginFailureCheck(".plugin"))
}
