package bundle

import (
	"archive/tar"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/catalog"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/evidence/checkpoint"
)

// Problem is one thing that failed, located as precisely as it can be.
type Problem struct {
	Step   string `json:"step"`
	File   string `json:"file,omitempty"`
	Index  int64  `json:"log_index"`
	Agent  string `json:"agent,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
	Reason string `json:"reason"`
}

func (p Problem) String() string {
	var loc []string
	if p.File != "" {
		loc = append(loc, p.File)
	}
	if p.Index >= 0 {
		loc = append(loc, fmt.Sprintf("log index %d", p.Index))
	}
	if p.Agent != "" {
		loc = append(loc, "agent "+p.Agent)
	}
	if p.Seq > 0 {
		loc = append(loc, fmt.Sprintf("seq %d", p.Seq))
	}
	return fmt.Sprintf("[%s] %s: %s", p.Step, strings.Join(loc, ", "), p.Reason)
}

// Report is the verifier's outcome.
type Report struct {
	OK        bool   `json:"ok"`
	Origin    string `json:"origin"`
	Scope     *Scope `json:"scope,omitempty"`
	Entries   int64  `json:"entries"`
	Records   int64  `json:"records"`
	KeyEvents int64  `json:"key_events"`
	Agents    int    `json:"agents"`
	// Attestations are the people's attestations verified, in the period
	// and in force from before it.
	Attestations int64 `json:"attestations,omitempty"`
	// SoAChanges are the Statement of Applicability changes the period's
	// entries log, checked against soa.json.
	SoAChanges int64          `json:"soa_changes,omitempty"`
	Explained  []ExplainedGap `json:"explained_gaps,omitempty"`
	Notes      []string       `json:"notes,omitempty"`
	Problems   []Problem      `json:"problems,omitempty"`
}

// ExplainedGap is a signed gap record: loss the agent owned up to.
type ExplainedGap struct {
	Agent  string `json:"agent"`
	From   uint64 `json:"from"`
	To     uint64 `json:"to"`
	Reason string `json:"reason"`
}

// ServerKeys are what an auditor pins: server.pub's two note verifier lines.
type ServerKeys struct {
	Log    note.Verifier
	LogPub ed25519.PublicKey
	Enroll ed25519.PublicKey
}

// ParseServerKeys reads server.pub (log key line, then enrollment key line).
func ParseServerKeys(b []byte) (*ServerKeys, error) {
	lines := strings.Fields(string(b))
	if len(lines) != 2 {
		return nil, fmt.Errorf("server.pub: want 2 key lines, found %d", len(lines))
	}
	v, err := note.NewVerifier(lines[0])
	if err != nil {
		return nil, fmt.Errorf("server.pub log key: %w", err)
	}
	_, logPub, err := checkpoint.PublicKey(lines[0])
	if err != nil {
		return nil, fmt.Errorf("server.pub log key: %w", err)
	}
	_, enroll, err := checkpoint.PublicKey(lines[1])
	if err != nil {
		return nil, fmt.Errorf("server.pub enrollment key: %w", err)
	}
	return &ServerKeys{Log: v, LogPub: logPub, Enroll: enroll}, nil
}

type verifier struct {
	keys    *ServerKeys
	r       *Report
	hashes  map[string]string
	mapping *catalog.Mapping
	cat     *catalog.Catalog

	start, end, latest          tlog.Hash
	startSize, endSize, latestN int64
	haveStart                   bool
	frontier                    *Frontier

	ks         *KeyState
	keysFile   []AgentKeys
	boundaries map[string]Boundary
	checkers   map[string]*chain.Checker
	builder    *Builder
	summary    []byte
	oscal      []byte
	soa        *SoA
	// files are the attested documents the bundle holds, by sha256;
	// cited, those the attestations verified so far name.
	files     map[string]bool
	fileSizes []fileSize
	cited     map[string]citedFile
	// soaChanges is each control's last SoA change in the period.
	soaChanges map[string]*evidence.SoAChange
}

// Verify checks a bundle read from r, offline, against the pinned server
// keys and the Annex A catalog. It never stops at the first problem: the
// report lists them all.
func Verify(r io.Reader, keys *ServerKeys, cat *catalog.Catalog) *Report {
	v := &verifier{keys: keys, r: &Report{}, hashes: map[string]string{}, ks: NewKeyState(), boundaries: map[string]Boundary{},
		checkers: map[string]*chain.Checker{}, cat: cat, endSize: -1, files: map[string]bool{}}
	v.r.Origin = keys.Log.Name()
	v.run(r)
	v.r.OK = len(v.r.Problems) == 0
	return v.r
}

// at locates a problem: the step and the file, and where known the log
// index, the agent and the seq.
type at struct {
	step, file string
	index      int64
	agent      string
	seq        uint64
}

// where is a problem in a file as a whole.
func where(step, file string) at { return at{step: step, file: file, index: -1} }

// entry narrows to the log entry at index.
func (a at) entry(index int64) at { a.index = index; return a }

// of narrows to an agent's record at seq (0: the agent as a whole).
func (a at) of(agent string, seq uint64) at { a.agent, a.seq = agent, seq; return a }

// fail records a problem and goes on: the report lists them all.
func (v *verifier) fail(a at, format string, args ...any) {
	v.r.Problems = append(v.r.Problems, Problem{Step: a.step, File: a.file, Index: a.index, Agent: a.agent, Seq: a.seq, Reason: fmt.Sprintf(format, args...)})
}

func (v *verifier) run(in io.Reader) {
	// klauspost/compress's gzip reads about twice as fast as the standard
	// library's; the bundle is a few hundred MB for a million records.
	gz, err := gzip.NewReader(in)
	if err != nil {
		v.fail(where("read", ""), "not a gzip stream: %v", err)
		return
	}
	tr := tar.NewReader(gz)
	next := 0
	var manifestRaw []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			v.fail(where("read", ""), "bundle truncated or corrupt: %v", err)
			return
		}
		pos, name := -1, h.Name
		if strings.HasPrefix(name, DirFiles) {
			name = DirFiles // any number of them, together
			if next > 0 && Order[next-1] == DirFiles {
				next--
			}
		}
		for i := next; i < len(Order); i++ {
			if Order[i] == name {
				pos = i
			}
		}
		if pos < 0 {
			v.fail(where("read", h.Name), "%s", unexpectedFile(h.Name, next))
			return
		}
		next = pos + 1
		hasher := sha256.New()
		body := io.TeeReader(tr, hasher)
		switch {
		case h.Name == FileEvidence:
			v.evidence(body)
		case name == DirFiles:
			v.attestedFile(h.Name, body)
		default:
			b, err := io.ReadAll(io.LimitReader(body, 512<<20))
			if err != nil {
				v.fail(where("read", h.Name), "bundle truncated or corrupt: %v", err)
				return
			}
			if h.Name == FileManifest {
				manifestRaw = b
			} else {
				v.small(h.Name, b)
			}
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			v.fail(where("read", h.Name), "bundle truncated or corrupt: %v", err)
			return
		}
		v.hashes[h.Name] = hex.EncodeToString(hasher.Sum(nil))
	}
	if manifestRaw == nil {
		v.fail(where("manifest", FileManifest), "missing: the bundle is incomplete")
		return
	}
	v.finish(manifestRaw)
}
