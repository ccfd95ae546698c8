package dsse

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"
)

// The prepared verifier agrees with crypto/ed25519 on valid signatures, on
// every single-bit flip of them, on non-canonical S and on garbage.
func TestPreparedMatchesStdlib(t *testing.T) {
	for range 50 {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		msg := make([]byte, 1+len(pub)*3)
		_, _ = rand.Read(msg)
		sig := ed25519.Sign(priv, msg)
		k, err := Prepare(pub)
		require.NoError(t, err)
		require.True(t, k.VerifyMessage(msg, sig))
		for bit := 0; bit < len(sig)*8; bit += 7 {
			bad := append([]byte(nil), sig...)
			bad[bit/8] ^= 1 << (bit % 8)
			require.Equal(t, ed25519.Verify(pub, msg, bad), k.VerifyMessage(msg, bad), "bit %d", bit)
		}
		require.False(t, k.VerifyMessage(append(msg, 0), sig))
		require.False(t, k.VerifyMessage(msg, sig[:63]))
	}
	// S + L (non-canonical) is refused by both.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := []byte("m")
	sig := ed25519.Sign(priv, msg)
	l := []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	nc := append([]byte(nil), sig...)
	carry := 0
	for i := 0; i < 32; i++ {
		s := int(nc[32+i]) + int(l[i]) + carry
		nc[32+i], carry = byte(s), s>>8
	}
	k, _ := Prepare(pub)
	require.Equal(t, ed25519.Verify(pub, msg, nc), k.VerifyMessage(msg, nc))
	require.False(t, k.VerifyMessage(msg, nc))

	_, err := Prepare(make([]byte, 31))
	require.ErrorIs(t, err, ErrBadPublicKey)
}

func FuzzPreparedMatchesStdlib(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	f.Add([]byte(pub), []byte("msg"), ed25519.Sign(priv, []byte("msg")))
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if len(pub) != ed25519.PublicKeySize {
			return
		}
		k, err := Prepare(pub)
		want := ed25519.Verify(pub, msg, sig)
		if err != nil {
			if want {
				t.Fatal("stdlib verified under a key Prepare refused")
			}
			return
		}
		if got := k.VerifyMessage(msg, sig); got != want {
			t.Fatalf("prepared %v, stdlib %v", got, want)
		}
	})
}

func BenchmarkPreparedVerify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 64)
	sig := ed25519.Sign(priv, msg)
	k, _ := Prepare(pub)
	for b.Loop() {
		if !k.VerifyMessage(msg, sig) {
			b.Fatal("bad")
		}
	}
}

// Hashing PAE piecewise signs over exactly PAE's bytes.
func TestVerifyPAEPiecewise(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	for _, p := range [][]byte{nil, []byte("x"), make([]byte, 5000)} {
		env, err := Sign(priv, "application/vnd.in-toto+json", p)
		require.NoError(t, err)
		k, _ := Prepare(priv.Public().(ed25519.PublicKey))
		require.NoError(t, k.VerifySingle(env, "application/vnd.in-toto+json"))
		require.True(t, k.VerifyMessage(PAE(env.PayloadType, env.Payload), env.Signatures[0].Sig))
		env.Payload = append(env.Payload, 0)
		require.ErrorIs(t, k.VerifySingle(env, "application/vnd.in-toto+json"), ErrNoSignature)
	}
}
