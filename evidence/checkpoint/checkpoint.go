// Package checkpoint reads and writes transparency log checkpoints in the
// C2SP tlog-checkpoint format: a signed note whose text is
//
//	<origin>\n<tree size>\n<base64 root hash>\n
//
// (tlog.FormatTree writes the Go sumdb header instead, which is not this.)
package checkpoint

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a log's size and root hash under an origin.
type Checkpoint struct {
	Origin string
	Size   int64
	Hash   tlog.Hash
}

// Text is the note text of the checkpoint.
func (c Checkpoint) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Hash[:]))
}

// Sign returns the signed note of c.
func Sign(c Checkpoint, s note.Signer) ([]byte, error) {
	if c.Origin != s.Name() {
		return nil, fmt.Errorf("checkpoint origin %q differs from the signing key's name %q", c.Origin, s.Name())
	}
	return note.Sign(&note.Note{Text: c.Text()}, s)
}

// ErrFormat is wrapped by every error about a checkpoint's text.
var ErrFormat = errors.New("malformed checkpoint")

// Open verifies a signed checkpoint under v and parses it. The origin must
// be the key's name, so one log's key cannot vouch for another log.
func Open(msg []byte, v note.Verifier) (Checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	c, err := Parse(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("%w: origin %q is not the log key's name %q", ErrFormat, c.Origin, v.Name())
	}
	return c, nil
}

// Parse parses checkpoint text (no signature check). Extension lines after
// the root hash are allowed by C2SP and ignored.
func Parse(text string) (Checkpoint, error) {
	lines := strings.SplitAfter(text, "\n")
	if len(lines) < 3 || !strings.HasSuffix(text, "\n") {
		return Checkpoint{}, fmt.Errorf("%w: want origin, size and root hash lines", ErrFormat)
	}
	origin := strings.TrimSuffix(lines[0], "\n")
	if origin == "" {
		return Checkpoint{}, fmt.Errorf("%w: empty origin", ErrFormat)
	}
	size, err := strconv.ParseInt(strings.TrimSuffix(lines[1], "\n"), 10, 64)
	if err != nil || size < 0 || strings.HasPrefix(lines[1], "+") || (len(lines[1]) > 2 && lines[1][0] == '0') {
		return Checkpoint{}, fmt.Errorf("%w: size %q", ErrFormat, strings.TrimSuffix(lines[1], "\n"))
	}
	h, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(lines[2], "\n"))
	if err != nil || len(h) != len(tlog.Hash{}) {
		return Checkpoint{}, fmt.Errorf("%w: root hash %q", ErrFormat, strings.TrimSuffix(lines[2], "\n"))
	}
	c := Checkpoint{Origin: origin, Size: size}
	copy(c.Hash[:], h)
	return c, nil
}

// PrivateKey extracts the ed25519 key from a note signer key
// ("PRIVATE+KEY+name+hash+base64"), so one key file can sign both notes and
// DSSE envelopes.
func PrivateKey(skey string) (ed25519.PrivateKey, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return nil, errors.New("not a note private key")
	}
	b, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(b) != 1+ed25519.SeedSize || b[0] != 1 {
		return nil, errors.New("note private key: not an ed25519 key")
	}
	return ed25519.NewKeyFromSeed(b[1:]), nil
}

// PublicKey extracts the ed25519 key from a note verifier key
// ("name+hash+base64"), the form auditors pin.
func PublicKey(vkey string) (name string, pub ed25519.PublicKey, err error) {
	if _, err := note.NewVerifier(vkey); err != nil {
		return "", nil, err
	}
	parts := strings.SplitN(vkey, "+", 3)
	b, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(b) != 1+ed25519.PublicKeySize || b[0] != 1 {
		return "", nil, errors.New("note verifier key: not an ed25519 key")
	}
	return parts[0], ed25519.PublicKey(b[1:]), nil
}
