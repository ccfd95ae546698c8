// Package bundle is the auditor's evidence bundle: a tar.gz for a period
// that proves, offline, that every record is signed by an enrolled agent,
// that nothing was altered, and that nothing inside the period was dropped,
// added or reordered.
//
// Files, in the order they are written (the verifier reads them in one
// pass, so memory stays flat however long evidence.jsonl is):
//
//	mapping.yaml                  check→control mapping the summary used
//	checkpoint-start.txt          signed checkpoint at the period's first index (absent at 0)
//	checkpoint-end.txt            signed checkpoint just after the period
//	checkpoint-latest.txt         signed checkpoint at export time
//	proof.json                    consistency proof start→end, and the start tree's frontier
//	keyevents.jsonl               key events before the period, with inclusion proofs
//	boundaries.json               each agent's last record before and first after the period
//	keys.json                     each agent's keys and seq ranges, as the key events say
//	attestations.jsonl            attestations from before the period still in force at its start, with inclusion proofs
//	evidence.jsonl                the log's entries for the period, one leaf's exact bytes per line
//	summary.json                  per control and asset, what the records show
//	oscal-assessment-results.json the same as OSCAL 1.2.2 assessment-results
//	soa.json                      the Statement of Applicability at the period's end (a claim the verifier compares with the evidence)
//	files/<sha256>                the documents attestations vouch for, as uploaded, named by their sha256
//	manifest.json                 DSSE envelope, signed with the log key: scope, counts, sha256 of every file
package bundle

import (
	"archive/tar"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"slices"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/evidence/dsse"
)

// File names.
const (
	FileMapping          = "mapping.yaml"
	FileCheckpointStart  = "checkpoint-start.txt"
	FileCheckpointEnd    = "checkpoint-end.txt"
	FileCheckpointLatest = "checkpoint-latest.txt"
	FileProof            = "proof.json"
	FileKeyEvents        = "keyevents.jsonl"
	FileBoundaries       = "boundaries.json"
	FileKeys             = "keys.json"
	FileAttestations     = "attestations.jsonl"
	FileEvidence         = "evidence.jsonl"
	FileSummary          = "summary.json"
	FileOSCAL            = "oscal-assessment-results.json"
	FileSoA              = "soa.json"
	FileManifest         = "manifest.json"
	// DirFiles holds the attested documents, any number of them, each
	// named by the hex sha256 of its content.
	DirFiles = "files/"
)

// Order is the order files must appear in.
var Order = []string{FileMapping, FileCheckpointStart, FileCheckpointEnd, FileCheckpointLatest, FileProof, FileKeyEvents,
	FileBoundaries, FileKeys, FileAttestations, FileEvidence, FileSummary, FileOSCAL, FileSoA, DirFiles, FileManifest}

// ManifestPayloadType is the DSSE payload type of manifest.json.
const ManifestPayloadType = "application/vnd.annexa.bundle-manifest+json"

// Manifest describes a bundle and vouches for its files.
type Manifest struct {
	Version    int               `json:"version"`
	Origin     string            `json:"origin"`
	CreatedAt  time.Time         `json:"created_at"`
	Scope      Scope             `json:"scope"`
	StartSize  int64             `json:"start_size"`
	EndSize    int64             `json:"end_size"`
	LatestSize int64             `json:"latest_size"`
	Counts     Counts            `json:"counts"`
	Files      map[string]string `json:"files"`
}

// Counts are what evidence.jsonl holds.
type Counts struct {
	Entries   int64 `json:"entries"`
	Records   int64 `json:"records"`
	KeyEvents int64 `json:"key_events"`
	Agents    int   `json:"agents"`
	// SoAChanges are the Statement of Applicability's changes logged in
	// the period.
	SoAChanges int64 `json:"soa_changes,omitempty"`
}

// Proof is proof.json.
type Proof struct {
	Start       int64    `json:"start"`
	End         int64    `json:"end"`
	Consistency []string `json:"consistency"`
	Frontier    []string `json:"frontier"`
}

// Leaf is a log entry cited with an inclusion proof. Envelope holds the
// leaf's exact bytes (base64 in JSON: a JSON value would be re-formatted by
// any encoder, and the proof is over the bytes).
type Leaf struct {
	Index    int64    `json:"index"`
	Envelope []byte   `json:"envelope"`
	Proof    []string `json:"proof"`
}

// Boundary is one agent's neighbours of the period: Before is proved in the
// start tree, After in the latest tree.
type Boundary struct {
	AgentID string `json:"agent_id"`
	Before  *Leaf  `json:"before,omitempty"`
	After   *Leaf  `json:"after,omitempty"`
}

// AgentKeys is one agent's keys as the log's key events say.
type AgentKeys struct {
	AgentID      string            `json:"agent_id"`
	Genesis      string            `json:"genesis"`
	Keys         []KeyRange        `json:"keys"`
	RevokedAfter uint64            `json:"revoked_after,omitempty"`
	Revoked      bool              `json:"revoked,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	// Assets are the external assets the agent holds a grant for, at this
	// point of the log.
	Assets []evidence.Asset `json:"assets,omitempty"`
	// Person is set when the key is a person's: it signs attestations
	// only, and an agent's key never does.
	Person *evidence.PersonInfo `json:"person,omitempty"`
}

// MayReport says whether the agent's records may be about asset, as the
// grants stand at this point of the log.
func (a *AgentKeys) MayReport(asset evidence.Asset) bool {
	return evidence.MayReport(a.AgentID, asset, func(x evidence.Asset) bool { return slices.Contains(a.Assets, x) })
}

// KeyRange is a key and the seqs it was valid for (To 0: still valid).
type KeyRange struct {
	KeyID     string `json:"keyid"`
	PublicKey []byte `json:"public_key"`
	// prepared is PublicKey decoded once for verifying its records (nil
	// if the key is not a valid point: its records then fail).
	prepared *dsse.PreparedKey
	evidence.KeySpan
}

// KeyState replays key events: which key each agent had at each seq.
type KeyState struct {
	agents map[string]*AgentKeys
	order  []string
}

// NewKeyState is an empty replay.
func NewKeyState() *KeyState { return &KeyState{agents: map[string]*AgentKeys{}} }

// Apply replays one key event; payload is its exact signed bytes.
func (k *KeyState) Apply(ev *evidence.KeyEvent, payload []byte) error {
	a := k.agents[ev.AgentID]
	switch ev.Kind {
	case evidence.Enroll, evidence.Person:
		if a != nil {
			return fmt.Errorf("%s %s registered twice", ev.Kind, ev.AgentID)
		}
		a = &AgentKeys{AgentID: ev.AgentID, Genesis: evidence.Digest(payload), Labels: ev.Labels, Assets: slices.Clone(ev.Assets), Person: ev.Person,
			Keys: []KeyRange{{KeyID: ev.KeyID, PublicKey: ev.PublicKey, KeySpan: evidence.KeySpan{From: ev.FromSeq}, prepared: prepare(ev.PublicKey)}}}
		k.agents[ev.AgentID] = a
		k.order = append(k.order, ev.AgentID)
	case evidence.Rotate:
		if a == nil || a.Person != nil {
			return fmt.Errorf("rotation for %s, which is not an enrolled agent", ev.AgentID)
		}
		a.Keys = evidence.RotateKeys(a.Keys, ev.FromSeq, KeyRange{KeyID: ev.KeyID, PublicKey: ev.PublicKey, prepared: prepare(ev.PublicKey)})
	case evidence.Revoke:
		if a == nil {
			return fmt.Errorf("revocation of unknown agent %s", ev.AgentID)
		}
		a.Revoked, a.RevokedAfter = true, ev.AfterSeq
	case evidence.Grant, evidence.Ungrant:
		if a == nil || a.Person != nil {
			return fmt.Errorf("%s for %s, which is not an enrolled agent", ev.Kind, ev.AgentID)
		}
		a.Assets = slices.Clone(a.Assets) // copies All() handed out stay as they were
		for _, x := range ev.Assets {
			a.Assets = slices.DeleteFunc(a.Assets, func(y evidence.Asset) bool { return y == x })
			if ev.Kind == evidence.Grant {
				a.Assets = append(a.Assets, x)
			}
		}
		slices.Sort(a.Assets)
	}
	return nil
}

// Revocation is the agent's revocation as the key rule takes it.
func (a *AgentKeys) Revocation() evidence.Revocation {
	return evidence.Revocation{Revoked: a.Revoked, After: a.RevokedAfter}
}

// Agent returns an agent's replayed keys.
func (k *KeyState) Agent(id string) *AgentKeys { return k.agents[id] }

// All lists every agent in enrollment order.
func (k *KeyState) All() []AgentKeys {
	out := make([]AgentKeys, 0, len(k.order))
	for _, id := range k.order {
		out = append(out, *k.agents[id])
	}
	return out
}

// ChainKeys converts to the chain checker's keys.
func (a *AgentKeys) ChainKeys() []chain.Key {
	out := make([]chain.Key, len(a.Keys))
	for i, r := range a.Keys {
		out[i] = chain.Key{Public: r.PublicKey, KeySpan: r.KeySpan}
	}
	return out
}

// Writer writes a bundle as a stream: each file is hashed as it goes by,
// and the signed manifest comes last.
type Writer struct {
	gz    *gzip.Writer
	tw    *tar.Writer
	files map[string]string
	at    time.Time
}

// NewWriter starts a bundle on w.
func NewWriter(w io.Writer, createdAt time.Time) *Writer {
	gz := gzip.NewWriter(w)
	return &Writer{gz: gz, tw: tar.NewWriter(gz), files: map[string]string{}, at: createdAt.UTC()}
}

// File writes a small file.
func (w *Writer) File(name string, data []byte) error {
	return w.Stream(name, int64(len(data)), func(out io.Writer) error {
		_, err := out.Write(data)
		return err
	})
}

// Stream writes a file of known size from fill.
func (w *Writer) Stream(name string, size int64, fill func(io.Writer) error) error {
	if err := w.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: w.at, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w.tw, h)}
	if err := fill(cw); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if cw.n != size {
		return fmt.Errorf("%s: wrote %d bytes, announced %d", name, cw.n, size)
	}
	w.files[name] = hex.EncodeToString(h.Sum(nil))
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Finish writes the manifest, signed with the log key, and closes the stream.
func (w *Writer) Finish(m Manifest, logKey ed25519.PrivateKey) error {
	m.Version, m.CreatedAt, m.Files = 1, w.at, w.files
	payload, err := json.Marshal(m)
	if err != nil {
		return err
	}
	env, err := dsse.Sign(logKey, ManifestPayloadType, payload)
	if err != nil {
		return err
	}
	b, err := json.Marshal(env)
	if err != nil {
		return err
	}
	if err := w.tw.WriteHeader(&tar.Header{Name: FileManifest, Mode: 0o644, Size: int64(len(b)), ModTime: w.at, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := w.tw.Write(b); err != nil {
		return err
	}
	if err := w.tw.Close(); err != nil {
		return err
	}
	return w.gz.Close()
}

var _ hash.Hash = sha256.New()

func prepare(pub []byte) *dsse.PreparedKey {
	k, err := dsse.Prepare(pub)
	if err != nil {
		return nil
	}
	return k
}
