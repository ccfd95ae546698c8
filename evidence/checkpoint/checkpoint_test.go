package checkpoint

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestSignOpenRoundTrip(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/log")
	require.NoError(t, err)
	s, err := note.NewSigner(skey)
	require.NoError(t, err)
	v, err := note.NewVerifier(vkey)
	require.NoError(t, err)
	c := Checkpoint{Origin: "example.com/log", Size: 42, Hash: tlog.RecordHash([]byte("x"))}
	msg, err := Sign(c, s)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(msg), "example.com/log\n42\n"))
	got, err := Open(msg, v)
	require.NoError(t, err)
	require.Equal(t, c, got)

	// Another key with the same name does not verify.
	skey2, _, _ := note.GenerateKey(rand.Reader, "example.com/log")
	s2, _ := note.NewSigner(skey2)
	msg2, err := Sign(c, s2)
	require.NoError(t, err)
	_, err = Open(msg2, v)
	require.Error(t, err)

	// An edited size does not verify.
	_, err = Open([]byte(strings.Replace(string(msg), "\n42\n", "\n43\n", 1)), v)
	require.Error(t, err)

	// The raw keys come out of the note encodings.
	priv, err := PrivateKey(skey)
	require.NoError(t, err)
	name, pub, err := PublicKey(vkey)
	require.NoError(t, err)
	require.Equal(t, "example.com/log", name)
	require.Equal(t, pub, priv.Public())
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{
		"", "origin\n", "origin\n1\n", "origin\n-1\nAAAA\n", "origin\nx\nAAAA\n",
		"origin\n1\nnotbase64!\n", "origin\n1\nAAAA\n", "\n1\n" + strings.Repeat("A", 43) + "=\n",
		"origin\n01\n" + strings.Repeat("A", 43) + "=\n",
	} {
		_, err := Parse(in)
		require.ErrorIs(t, err, ErrFormat, "%q", in)
	}
	c, err := Parse("o\n7\n" + strings.Repeat("A", 43) + "=\next line\n")
	require.NoError(t, err)
	require.Equal(t, int64(7), c.Size)
}

func FuzzParse(f *testing.F) {
	f.Add("o\n7\n" + strings.Repeat("A", 43) + "=\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err == nil {
			// What parses formats back to a prefix of the input.
			require.True(t, strings.HasPrefix(s, c.Text()))
		}
	})
}
