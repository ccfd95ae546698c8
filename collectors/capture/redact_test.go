package capture

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Password hashes never leave the machine; what the checks read (an empty
// field, a locked one) stays.
func TestRedactShadow(t *testing.T) {
	in := "root:$y$j9T$abc$def:19700:0:99999:7:::\nalice::19700:0:99999:7:::\nbob:!$6$salt$hash:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\nnobody:!:19700::::::\n"
	out, what := redact("/etc/shadow", []byte(in))
	require.Equal(t, "root:$redacted$:19700:0:99999:7:::\nalice::19700:0:99999:7:::\nbob:!$redacted$:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\nnobody:!:19700::::::\n", string(out))
	require.Contains(t, what, "2 password hashes")
	same, what := redact("/etc/passwd", []byte(in))
	require.Equal(t, in, string(same))
	require.Empty(t, what)
}
