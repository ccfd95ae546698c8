package bundle

// This file checks what a bundle holds of people's attestations beyond the
// period's entries: the attestations from before the period still in force
// at its start (attestations.jsonl), and the attested documents (files/).

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/dsse"
)

// priorAttestations checks attestations.jsonl: each line a leaf of the start
// tree, an attestation signed by its person's key valid at its seq, in log
// order. They count toward the summary as the period's entries do.
func (v *verifier) priorAttestations(b []byte) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	last := int64(-1)
	for sc.Scan() {
		var l Leaf
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			v.fail(where("attestations", FileAttestations), "%v", err)
			continue
		}
		at := where("attestations", FileAttestations).entry(l.Index)
		if l.Index <= last {
			v.fail(at, "not in log order (after index %d)", last)
			continue
		}
		last = l.Index
		if !v.included(l, v.startSize, v.start) {
			v.fail(at, "inclusion proof does not verify in the start tree")
			continue
		}
		rec, err := v.openAttestation(l.Envelope)
		if err != nil {
			v.fail(at, "%v", err)
			continue
		}
		v.r.Attestations++
		v.cite(l.Index, rec)
		if v.builder != nil {
			v.builder.Add(l.Index, rec)
		}
	}
	if err := sc.Err(); err != nil {
		v.fail(where("attestations", FileAttestations), "%v", err)
	}
}

// openAttestation parses a leaf as an attestation and verifies it under its
// person's key valid at its seq, as the key events replayed so far say.
func (v *verifier) openAttestation(raw []byte) (*evidence.Record, error) {
	env, err := dsse.Parse(raw)
	if err != nil {
		return nil, err
	}
	rec, err := evidence.ParseRecord(env.Payload)
	if err != nil {
		return nil, err
	}
	if rec.Attestation == nil {
		return nil, fmt.Errorf("an agent's record, not an attestation")
	}
	a := v.ks.Agent(rec.Predicate.AgentID)
	if a == nil || a.Person == nil {
		return nil, fmt.Errorf("attestation of %s, whom no person registration in the log vouches for", rec.Predicate.AgentID)
	}
	k, err := evidence.KeyAt(a.Keys, a.Revocation(), rec.Predicate.Seq)
	if err != nil {
		return nil, fmt.Errorf("attestation by %s (%s), whose key was not valid at seq %d: %w", a.Person.Name, a.AgentID, rec.Predicate.Seq, err)
	}
	if a.Keys[k].prepared == nil {
		return nil, fmt.Errorf("the person's key is not a valid ed25519 key")
	}
	if err := evidence.VerifyRecordWith(env, a.Keys[k].prepared); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	return rec, nil
}

// cite remembers an attestation's document, to be looked for in files/.
func (v *verifier) cite(index int64, rec *evidence.Record) {
	if rec.Attestation.File == nil {
		return
	}
	if v.cited == nil {
		v.cited = map[string]citedFile{}
	}
	v.cited[rec.Subject[0].Digest["sha256"]] = citedFile{name: rec.Attestation.File.Name, size: rec.Attestation.File.Size, index: index, person: rec.Predicate.AgentID}
}

type citedFile struct {
	name   string
	size   int64
	index  int64
	person string
}

// attestedFile checks one files/<sha256>: its content must hash to its name.
func (v *verifier) attestedFile(name string, body io.Reader) {
	h := sha256.New()
	n, err := io.Copy(h, body)
	if err != nil {
		v.fail(where("files", name), "bundle truncated or corrupt: %v", err)
		return
	}
	digest := strings.TrimPrefix(name, DirFiles)
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		v.fail(where("files", name), "content hashes to %s, not to the name it is filed under: the document was altered", got)
		return
	}
	v.files[digest] = true
	v.fileSizes = append(v.fileSizes, fileSize{digest, n})
}

type fileSize struct {
	digest string
	size   int64
}

// attestedFiles matches the attested documents against the attestations
// that cite them: a cited document the bundle lacks is a note (it was never
// uploaded, the organisation holds it); one of another size than attested,
// or one no attestation cites, is a problem.
func (v *verifier) attestedFiles() {
	for _, f := range v.fileSizes {
		c, ok := v.cited[f.digest]
		switch {
		case !ok:
			v.fail(where("files", DirFiles+f.digest), "no attestation in the bundle cites this document")
		case c.size != f.size:
			v.fail(where("files", DirFiles+f.digest).entry(c.index).of(c.person, 0), "%s is %d bytes, the attestation says %d", c.name, f.size, c.size)
		}
	}
	var missing []string
	for d, c := range v.cited {
		if !v.files[d] {
			missing = append(missing, fmt.Sprintf("%s (sha256 %s…, log index %d)", c.name, d[:12], c.index))
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		v.r.Notes = append(v.r.Notes, "attested document not in the bundle (never uploaded to the server; ask the organisation for it, its sha256 is signed): "+m)
	}
}
