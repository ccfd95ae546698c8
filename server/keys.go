package server

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/annexa-dev/annexa/evidence/checkpoint"
	"github.com/annexa-dev/annexa/internal/atomicfile"
)

// Files in the data directory. Replicas sharing one PostgreSQL database
// share enroll.key and log.key (copy them); the database remembers the
// public halves and a replica with other keys refuses to start.
const (
	EnrollKeyFile = "enroll.key"
	LogKeyFile    = "log.key"
	ServerPubFile = "server.pub"
	AdminFile     = "admin.token"
	TLSCertFile   = "tls.crt"
	TLSKeyFile    = "tls.key"
)

// Keys are the server's two signing keys.
type Keys struct {
	// Log signs checkpoints; its name is the log's origin.
	Log         note.Signer
	LogVerifier string
	// LogPriv is the log key as ed25519, to sign bundle manifests.
	LogPriv ed25519.PrivateKey
	// Enroll is the enrollment authority: it signs key events.
	Enroll         ed25519.PrivateKey
	EnrollVerifier string
}

// EnrollPublic is the enrollment authority's public key.
func (k *Keys) EnrollPublic() ed25519.PublicKey { return k.Enroll.Public().(ed25519.PublicKey) }

// ServerPub is the content of server.pub: the two note verifier keys an
// auditor pins, the log's first.
func (k *Keys) ServerPub() string { return k.LogVerifier + "\n" + k.EnrollVerifier + "\n" }

// loadOrCreateKeys reads the two keys from dir, creating them (0600) on
// first start with names derived from origin.
func loadOrCreateKeys(dir, origin string) (*Keys, bool, error) {
	logSK, logVK, created1, err := loadOrCreateNoteKey(filepath.Join(dir, LogKeyFile), origin)
	if err != nil {
		return nil, false, err
	}
	enrSK, enrVK, created2, err := loadOrCreateNoteKey(filepath.Join(dir, EnrollKeyFile), origin+"/enrollment")
	if err != nil {
		return nil, false, err
	}
	signer, err := note.NewSigner(logSK)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", LogKeyFile, err)
	}
	enroll, err := checkpoint.PrivateKey(enrSK)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", EnrollKeyFile, err)
	}
	logPriv, err := checkpoint.PrivateKey(logSK)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", LogKeyFile, err)
	}
	k := &Keys{Log: signer, LogVerifier: logVK, LogPriv: logPriv, Enroll: enroll, EnrollVerifier: enrVK}
	// Written only when it differs: a start writes nothing it need not, so
	// a server on a full disk can still start (and say so) to be mended.
	pubPath := filepath.Join(dir, ServerPubFile)
	if b, err := os.ReadFile(pubPath); err != nil || string(b) != k.ServerPub() {
		if err := atomicfile.Write(pubPath, []byte(k.ServerPub()), 0o644); err != nil {
			return nil, false, err
		}
	}
	return k, created1 || created2, nil
}

// A key file holds the note signer key on its first line and the verifier
// key on its second.
func loadOrCreateNoteKey(path, name string) (skey, vkey string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 {
			return "", "", false, fmt.Errorf("%s: want a signer key line and a verifier key line", path)
		}
		if err := checkPrivate(path); err != nil {
			return "", "", false, err
		}
		return lines[0], lines[1], false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", "", false, err
	}
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", false, err
	}
	if err := atomicfile.Write(path, []byte(skey+"\n"+vkey+"\n"), 0o600); err != nil {
		return "", "", false, err
	}
	return skey, vkey, true, nil
}

// checkPrivate refuses a private key file that others can read.
func checkPrivate(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 != 0 && os.Getenv("ANNEXA_ALLOW_OPEN_KEYS") == "" {
		return fmt.Errorf("%s is readable by others (mode %v): chmod 600 it", path, st.Mode().Perm())
	}
	return nil
}

// EnsureTLS creates a self-signed certificate for this host in dir unless
// one is there.
func EnsureTLS(dir string) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, TLSCertFile), filepath.Join(dir, TLSKeyFile)
	if _, err := os.Stat(certFile); err == nil {
		return certFile, keyFile, nil
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "annexa-server " + host},
		NotBefore:    time.Now().Add(-time.Hour),
		// A leaf, good for what a leaf is good for: serving this host. It
		// can sign nothing else, so a stolen key cannot mint certificates
		// that clients trusting tls.crt would accept for other names.
		NotAfter:              time.Now().AddDate(2, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	if host != "" && host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return "", "", err
	}
	kb, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		return "", "", err
	}
	if err := atomicfile.Write(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return "", "", err
	}
	if err := atomicfile.Write(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}
