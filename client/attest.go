package client

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// DefaultPersonKey is where annexa person init keeps a person's key: in
// their own configuration directory, on their own machine.
func DefaultPersonKey() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no configuration directory to keep the key in (give --key): %w", err)
	}
	return filepath.Join(dir, "annexa", "person.key"), nil
}

// Attestation is what a person attests.
type Attestation struct {
	Controls  []string
	Statement string
	// File is the attested document's path ("" for a statement alone).
	File      string
	MediaType string
	ValidFor  time.Duration
	// Upload sends the document to the server besides its digest.
	Upload bool
}

// AttestResult is the server's receipt and what became of the document.
type AttestResult struct {
	apiv1.AttestResponse
	Person   apiv1.Person
	SHA256   string
	Uploaded bool
	// UploadError says why the document could not be uploaded (the
	// attestation stands: its digest is signed and logged).
	UploadError error
}

// PersonByKey asks the server who holds pub and where their chain stands.
func (c *Client) PersonByKey(ctx context.Context, pub ed25519.PublicKey) (*apiv1.Person, error) {
	var p apiv1.Person
	if err := c.Do(ctx, http.MethodGet, "/v1/persons/by-key/"+url.PathEscape(dsse.KeyID(pub)), nil, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Attest signs an attestation with priv, chained on the person's last one,
// and submits it; then uploads the document when asked and the server
// wants it. A chain that moved meanwhile (another attestation with the same
// key) is read again and the attestation signed once more on top of it.
func (c *Client) Attest(ctx context.Context, priv ed25519.PrivateKey, a Attestation, now time.Time) (*AttestResult, error) {
	pub := priv.Public().(ed25519.PublicKey)
	pred := evidence.Attestation{Controls: a.Controls, Statement: a.Statement, AttestedAt: now.UTC(), ValidUntil: now.UTC().Add(a.ValidFor)}
	digest := ""
	if a.File != "" {
		d, size, err := hashFile(a.File)
		if err != nil {
			return nil, err
		}
		mt := a.MediaType
		if mt == "" {
			mt = mime.TypeByExtension(strings.ToLower(filepath.Ext(a.File)))
		}
		digest = d
		pred.File = &evidence.AttestedFile{Name: filepath.Base(a.File), Size: size, MediaType: mt}
	}
	res := &AttestResult{}
	for attempt := 0; ; attempt++ {
		p, err := c.PersonByKey(ctx, pub)
		if err != nil {
			return nil, fmt.Errorf("who holds this key: %w", err)
		}
		if p.Revoked {
			return nil, fmt.Errorf("%s (%s) was removed: this key attests nothing more", p.Name, p.ID)
		}
		pred.PersonID, pred.Seq, pred.Prev = p.ID, p.NextSeq, p.Prev
		env, err := evidence.SignAttestation(priv, pred, digest)
		if err != nil {
			return nil, err
		}
		body, err := json.Marshal(env)
		if err != nil {
			return nil, err
		}
		err = c.doRaw(ctx, http.MethodPost, "/v1/attestations", strings.NewReader(string(body)), int64(len(body)), "application/json", &res.AttestResponse)
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.Body.Code == apiv1.CodeSeqGap && attempt == 0 {
			continue
		}
		if err != nil {
			return nil, err
		}
		res.Person = *p
		break
	}
	if digest == "" {
		return res, nil
	}
	res.SHA256 = digest
	if a.Upload && res.FileWanted {
		res.UploadError = c.UploadDocument(ctx, a.File, digest)
		res.Uploaded = res.UploadError == nil
	}
	return res, nil
}

// UploadDocument sends an attested document to the server.
func (c *Client) UploadDocument(ctx context.Context, path, digest string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return c.doRaw(ctx, http.MethodPut, "/v1/attestations/files/"+digest, f, st.Size(), "application/octet-stream", nil)
}

// doRaw sends body as it is and decodes a JSON answer into out.
func (c *Client) doRaw(ctx context.Context, method, path string, body io.Reader, size int64, contentType string, out any) error {
	hdr := http.Header{"Content-Type": {contentType}}
	resp, err := c.send(ctx, method, path, nil, &sized{body, size}, hdr)
	if err != nil {
		return err
	}
	return decodeAnswer(resp, method, path, out)
}

// sized is a body whose length is known, so the request carries a
// Content-Length the server can refuse early.
type sized struct {
	io.Reader
	n int64
}

func (s *sized) Len() int64 { return s.n }

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
