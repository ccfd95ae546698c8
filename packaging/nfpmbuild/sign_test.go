package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// needTools skips without gpg and rpm, unless ANNEXA_TEST_SIGNING=required
// (make test), where their absence fails.
func needTools(t *testing.T) {
	for _, tool := range []string{"gpg", "rpm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("ANNEXA_TEST_SIGNING") == "required" {
				t.Fatalf("%s is not installed", tool)
			}
			t.Skipf("%s not installed: signed packages are checked with gpg and rpm", tool)
		}
	}
}

// throwawayKey makes an OpenPGP signing key in a private keyring and
// returns the secret key's file, the public key's file and the keyring.
func throwawayKey(t *testing.T) (secret, public, home string) {
	home = t.TempDir()
	gpg := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--batch", "--homedir", home, "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "gpg %v: %s", args, stderr.String())
		return out
	}
	gpg("--quick-gen-key", "Annexa Test Signing <signing@annexa.invalid>", "rsa2048", "sign", "never")
	secret, public = filepath.Join(home, "secret.asc"), filepath.Join(home, "public.asc")
	require.NoError(t, os.WriteFile(secret, gpg("--armor", "--export-secret-keys"), 0o600))
	require.NoError(t, os.WriteFile(public, gpg("--armor", "--export"), 0o644))
	return secret, public, home
}

// arMembers reads an ar archive (a .deb) into its members, in order.
func arMembers(t *testing.T, b []byte) ([]string, map[string][]byte) {
	require.True(t, bytes.HasPrefix(b, []byte("!<arch>\n")), "not an ar archive")
	b = b[8:]
	var names []string
	members := map[string][]byte{}
	for len(b) >= 60 {
		name := strings.TrimRight(strings.TrimSpace(string(b[0:16])), "/")
		size, err := strconv.Atoi(strings.TrimSpace(string(b[48:58])))
		require.NoError(t, err)
		data := b[60 : 60+size]
		names = append(names, name)
		members[name] = data
		b = b[60+size:]
		if size%2 == 1 && len(b) > 0 {
			b = b[1:]
		}
	}
	return names, members
}

func TestSignedPackagesVerify(t *testing.T) {
	needTools(t)
	secret, public, home := throwawayKey(t)
	bin := t.TempDir()
	for _, b := range []string{"annexa-agent", "annexa-plugin-host", "annexa-plugin-exec"} {
		require.NoError(t, os.WriteFile(filepath.Join(bin, b), []byte("#!/bin/sh\necho "+b+"\n"), 0o755))
	}
	out := t.TempDir()
	t.Chdir("../..") // nfpm reads the config's paths from the repository root
	require.NoError(t, build("packaging/nfpm/agent.yaml", "amd64", "1.2.3", bin, out, []string{"deb", "rpm"}, signing{key: secret}))
	debs, _ := filepath.Glob(filepath.Join(out, "*.deb"))
	rpms, _ := filepath.Glob(filepath.Join(out, "*.rpm"))
	require.Len(t, debs, 1)
	require.Len(t, rpms, 1)

	// The .deb: a debsign origin signature over debian-binary, control and
	// data, as nfpm writes it; gpg checks it against the public key.
	deb, err := os.ReadFile(debs[0])
	require.NoError(t, err)
	names, members := arMembers(t, deb)
	require.Contains(t, names, "_gpgorigin")
	var signed []byte
	for _, n := range names {
		if n != "_gpgorigin" {
			signed = append(signed, members[n]...)
		}
	}
	verify := func(data []byte) (string, error) {
		dir := t.TempDir()
		sig, content := filepath.Join(dir, "sig"), filepath.Join(dir, "content")
		require.NoError(t, os.WriteFile(sig, members["_gpgorigin"], 0o644))
		require.NoError(t, os.WriteFile(content, data, 0o644))
		keyring := filepath.Join(dir, "keyring.gpg")
		imp := exec.Command("gpg", "--batch", "--homedir", dir, "--no-default-keyring", "--keyring", keyring, "--import", public)
		if b, err := imp.CombinedOutput(); err != nil {
			return string(b), err
		}
		b, err := exec.Command("gpg", "--batch", "--homedir", dir, "--no-default-keyring", "--keyring", keyring, "--verify", sig, content).CombinedOutput()
		return string(b), err
	}
	msg, err := verify(signed)
	require.NoError(t, err, msg)
	assert.Contains(t, msg, "Good signature")
	// A package altered after signing does not verify.
	tampered := bytes.Clone(signed)
	tampered[len(tampered)-1] ^= 0xff
	msg, err = verify(tampered)
	require.Error(t, err, "a tampered .deb must fail: %s", msg)

	// The .rpm: rpm -K against a throwaway rpm database holding only the key.
	db := t.TempDir()
	b, err := exec.Command("rpm", "--dbpath", db, "--import", public).CombinedOutput()
	require.NoError(t, err, string(b))
	b, err = exec.Command("rpm", "--dbpath", db, "-K", rpms[0]).CombinedOutput()
	require.NoError(t, err, string(b))
	assert.Contains(t, string(b), "signatures OK")
	// Without the key, rpm -K says the signature's key is missing.
	b, _ = exec.Command("rpm", "--dbpath", t.TempDir(), "-K", rpms[0]).CombinedOutput()
	assert.NotContains(t, string(b), "signatures OK", string(b))

	// Unsigned when no key is given.
	plain := t.TempDir()
	require.NoError(t, build("packaging/nfpm/agent.yaml", "amd64", "1.2.3", bin, plain, []string{"deb"}, signing{}))
	debs, _ = filepath.Glob(filepath.Join(plain, "*.deb"))
	deb, err = os.ReadFile(debs[0])
	require.NoError(t, err)
	names, _ = arMembers(t, deb)
	assert.NotContains(t, names, "_gpgorigin")

	// A key file that is not there is an error, not an unsigned package.
	err = build("packaging/nfpm/agent.yaml", "amd64", "1.2.3", bin, t.TempDir(), []string{"deb"}, signing{key: filepath.Join(home, "missing.asc")})
	assert.ErrorContains(t, err, "signing key")
}
