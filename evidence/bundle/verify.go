package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/klauspost/compress/gzip"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/catalog"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/evidence/checkpoint"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/internal/parallel"
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
	OK        bool           `json:"ok"`
	Origin    string         `json:"origin"`
	Scope     *Scope         `json:"scope,omitempty"`
	Entries   int64          `json:"entries"`
	Records   int64          `json:"records"`
	KeyEvents int64          `json:"key_events"`
	Agents    int            `json:"agents"`
	Explained []ExplainedGap `json:"explained_gaps,omitempty"`
	Notes     []string       `json:"notes,omitempty"`
	Problems  []Problem      `json:"problems,omitempty"`
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
}

// Verify checks a bundle read from r, offline, against the pinned server
// keys and the Annex A catalog. It never stops at the first problem: the
// report lists them all.
func Verify(r io.Reader, keys *ServerKeys, cat *catalog.Catalog) *Report {
	v := &verifier{keys: keys, r: &Report{}, hashes: map[string]string{}, ks: NewKeyState(), boundaries: map[string]Boundary{},
		checkers: map[string]*chain.Checker{}, cat: cat, endSize: -1}
	v.r.Origin = keys.Log.Name()
	v.run(r)
	v.r.OK = len(v.r.Problems) == 0
	return v.r
}

func (v *verifier) fail(step, file string, index int64, agent string, seq uint64, format string, args ...any) {
	v.r.Problems = append(v.r.Problems, Problem{Step: step, File: file, Index: index, Agent: agent, Seq: seq, Reason: fmt.Sprintf(format, args...)})
}

func (v *verifier) run(in io.Reader) {
	// klauspost/compress's gzip reads about twice as fast as the standard
	// library's; the bundle is a few hundred MB for a million records.
	gz, err := gzip.NewReader(in)
	if err != nil {
		v.fail("read", "", -1, "", 0, "not a gzip stream: %v", err)
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
			v.fail("read", "", -1, "", 0, "bundle truncated or corrupt: %v", err)
			return
		}
		pos := -1
		for i := next; i < len(Order); i++ {
			if Order[i] == h.Name {
				pos = i
			}
		}
		if pos < 0 {
			v.fail("read", h.Name, -1, "", 0, "unexpected file (or out of order)")
			return
		}
		next = pos + 1
		hasher := sha256.New()
		body := io.TeeReader(tr, hasher)
		if h.Name == FileEvidence {
			v.evidence(body)
		} else {
			b, err := io.ReadAll(io.LimitReader(body, 512<<20))
			if err != nil {
				v.fail("read", h.Name, -1, "", 0, "bundle truncated or corrupt: %v", err)
				return
			}
			if h.Name == FileManifest {
				manifestRaw = b
			} else {
				v.small(h.Name, b)
			}
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			v.fail("read", h.Name, -1, "", 0, "bundle truncated or corrupt: %v", err)
			return
		}
		v.hashes[h.Name] = hex.EncodeToString(hasher.Sum(nil))
	}
	if manifestRaw == nil {
		v.fail("manifest", FileManifest, -1, "", 0, "missing: the bundle is incomplete")
		return
	}
	v.finish(manifestRaw)
}

func (v *verifier) small(name string, b []byte) {
	switch name {
	case FileMapping:
		m, err := catalog.LoadMapping(bytes.NewReader(b), v.cat)
		if err != nil {
			v.fail("mapping", name, -1, "", 0, "%v", err)
			return
		}
		v.mapping = m
		v.builder = NewBuilder(Scope{}, m)
	case FileCheckpointStart, FileCheckpointEnd, FileCheckpointLatest:
		cp, err := checkpoint.Open(b, v.keys.Log)
		if err != nil {
			v.fail("checkpoints", name, -1, "", 0, "not signed by the pinned log key: %v", err)
			return
		}
		switch name {
		case FileCheckpointStart:
			v.start, v.startSize, v.haveStart = cp.Hash, cp.Size, true
		case FileCheckpointEnd:
			v.end, v.endSize = cp.Hash, cp.Size
		default:
			v.latest, v.latestN = cp.Hash, cp.Size
		}
	case FileProof:
		var p Proof
		if err := json.Unmarshal(b, &p); err != nil {
			v.fail("proof", name, -1, "", 0, "%v", err)
			return
		}
		v.proof(&p)
	case FileKeyEvents:
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var l Leaf
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				v.fail("key events", name, -1, "", 0, "%v", err)
				continue
			}
			if !v.included(l, v.startSize, v.start) {
				v.fail("key events", name, l.Index, "", 0, "inclusion proof does not verify in the start tree")
				continue
			}
			v.keyEvent(name, l.Index, l.Envelope)
		}
	case FileBoundaries:
		var bs []Boundary
		if err := json.Unmarshal(b, &bs); err != nil {
			v.fail("boundaries", name, -1, "", 0, "%v", err)
			return
		}
		for _, bd := range bs {
			if bd.Before != nil && !v.included(*bd.Before, v.startSize, v.start) {
				v.fail("boundaries", name, bd.Before.Index, bd.AgentID, 0, "record before the period: inclusion proof does not verify in the start tree")
				continue
			}
			if bd.After != nil && !v.included(*bd.After, v.latestN, v.latest) {
				v.fail("boundaries", name, bd.After.Index, bd.AgentID, 0, "record after the period: inclusion proof does not verify in the latest tree")
				continue
			}
			v.boundaries[bd.AgentID] = bd
		}
	case FileKeys:
		if err := json.Unmarshal(b, &v.keysFile); err != nil {
			v.fail("keys", name, -1, "", 0, "%v", err)
		}
	case FileSummary:
		v.summary = b
	case FileOSCAL:
		v.oscal = b
	}
}

func (v *verifier) included(l Leaf, size int64, root tlog.Hash) bool {
	if l.Index < 0 || l.Index >= size {
		return false
	}
	var p tlog.RecordProof
	for _, s := range l.Proof {
		h, err := tlog.ParseHash(s)
		if err != nil {
			return false
		}
		p = append(p, h)
	}
	return tlog.CheckRecord(p, size, root, l.Index, tlog.RecordHash(l.Envelope)) == nil
}

func (v *verifier) proof(p *Proof) {
	if v.endSize < 0 && p.Start == 0 && p.End == 0 {
		// An empty log: the one tree no checkpoint is needed for.
		v.endSize, v.frontier = 0, &Frontier{}
		return
	}
	if v.endSize < 0 {
		v.fail("proof", FileProof, -1, "", 0, "no end checkpoint before the proof")
		return
	}
	if p.Start != v.startSize || p.End != v.endSize || (p.Start > 0 && !v.haveStart) {
		v.fail("proof", FileProof, -1, "", 0, "proof is for sizes %d→%d, the checkpoints for %d→%d", p.Start, p.End, v.startSize, v.endSize)
		return
	}
	parse := func(ss []string) ([]tlog.Hash, bool) {
		var out []tlog.Hash
		for _, s := range ss {
			h, err := tlog.ParseHash(s)
			if err != nil {
				return nil, false
			}
			out = append(out, h)
		}
		return out, true
	}
	fh, ok := parse(p.Frontier)
	f, err := NewFrontier(p.Start, fh)
	if !ok || err != nil {
		v.fail("proof", FileProof, -1, "", 0, "frontier malformed: %v", err)
		return
	}
	if p.Start > 0 {
		if root, _ := f.Root(); root != v.start {
			v.fail("proof", FileProof, -1, "", 0, "the start frontier does not hash to the start checkpoint's root")
			return
		}
		if p.Start < p.End {
			cp, ok := parse(p.Consistency)
			if !ok || tlog.CheckTree(cp, p.End, v.end, p.Start, v.start) != nil {
				v.fail("proof", FileProof, -1, "", 0, "consistency proof from size %d to %d does not verify: the end tree does not extend the start tree", p.Start, p.End)
			}
		}
	}
	v.frontier = f
}

func (v *verifier) keyEvent(file string, index int64, raw []byte) {
	env, err := dsse.Parse(raw)
	if err != nil {
		v.fail("key events", file, index, "", 0, "%v", err)
		return
	}
	ev, err := evidence.OpenKeyEvent(env, v.keys.Enroll)
	if err != nil {
		v.fail("key events", file, index, "", 0, "not signed by the pinned enrollment authority: %v", err)
		return
	}
	if err := v.ks.Apply(ev, env.Payload); err != nil {
		v.fail("key events", file, index, ev.AgentID, 0, "%v", err)
		return
	}
	if c := v.checkers[ev.AgentID]; c != nil && ev.Kind == evidence.Rotate {
		c.Rotate(ev.FromSeq, ev.PublicKey)
	}
}

// item is one line of evidence.jsonl on its way through the pipeline.
type item struct {
	index int64
	raw   []byte
	env   *dsse.Envelope
	rec   *evidence.Record
	isKey bool
	key   *dsse.PreparedKey
	err   error
}

// evidence streams evidence.jsonl in batches: parse in parallel, assign keys
// in log order, verify signatures in parallel (one by one, never batch
// verification), then track chains in order.
func (v *verifier) evidence(r io.Reader) {
	if v.frontier == nil {
		v.fail("proof", FileEvidence, -1, "", 0, "no verified start frontier: the entries cannot be checked against the checkpoints")
		v.frontier = &Frontier{Size: v.startSize}
	}
	// The reader (gunzip, lines, the Merkle frontier) runs in its own
	// goroutine, a few batches ahead of the parallel verification.
	batches := make(chan []item, 2)
	var index int64
	var readProblems []Problem
	go func() {
		defer close(batches)
		br := bufio.NewReaderSize(r, 1<<20)
		index = v.startSize
		batch := make([]item, 0, batchSize)
		// Lines are copied into shared arenas rather than one allocation
		// each; a batch keeps its arenas alive until it is verified.
		var arena []byte
		for {
			line, err := br.ReadSlice('\n')
			if errors.Is(err, bufio.ErrBufferFull) {
				long := append([]byte(nil), line...)
				for errors.Is(err, bufio.ErrBufferFull) {
					line, err = br.ReadSlice('\n')
					long = append(long, line...)
				}
				line = long
			}
			if len(line) > cap(arena)-len(arena) {
				arena = make([]byte, 0, max(1<<20, len(line)))
			}
			arena = append(arena, line...)
			line = arena[len(arena)-len(line) : len(arena) : len(arena)]
			if len(line) > 0 {
				if line[len(line)-1] != '\n' {
					readProblems = append(readProblems, Problem{Step: "entries", File: FileEvidence, Index: index, Reason: "last line is not terminated: truncated"})
				}
				raw := bytes.TrimSuffix(line, []byte("\n"))
				v.frontier.Append(raw)
				batch = append(batch, item{index: index, raw: raw})
				index++
				if len(batch) == cap(batch) {
					batches <- batch
					batch = make([]item, 0, batchSize)
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				readProblems = append(readProblems, Problem{Step: "read", File: FileEvidence, Index: index, Reason: "bundle truncated or corrupt: " + err.Error()})
				break
			}
		}
		if len(batch) > 0 {
			batches <- batch
		}
	}()
	for batch := range batches {
		v.batch(batch)
	}
	v.r.Problems = append(v.r.Problems, readProblems...)
	v.r.Entries = index - v.startSize
	if index == 0 && v.endSize == 0 {
		return // the empty log, and nothing claimed to be in it
	}
	root, err := v.frontier.Root()
	if v.endSize >= 0 && (index != v.endSize || err != nil || root != v.end) {
		v.fail("root", FileEvidence, -1, "", 0, "the %d entries appended to the start tree give size %d and a root other than the end checkpoint's (size %d): entries were dropped, added, altered or reordered", index-v.startSize, index, v.endSize)
	}
}

// batchSize entries are parsed and verified together: enough that the
// workers rarely wait for each other at a batch's end, few enough that the
// batches in flight stay a few MB (4096 raised peak RSS from 36 to 82 MiB
// for no gain).
const batchSize = 1024

func (v *verifier) batch(items []item) {
	// One parallel pass parses each entry and verifies its signature with
	// the agent's key as the key state stood at the start of the batch. Key
	// events (enrollments, rotations, revocations) are rare; only the
	// records after the first one in a batch are keyed and verified again,
	// once the events have been applied in log order. The key state is only
	// read during parallel passes, never written.
	parallel.For(len(items), func(i int) {
		it := &items[i]
		env, err := dsse.Parse(it.raw)
		if err != nil {
			it.err = err
			return
		}
		it.env = env
		if env.PayloadType == evidence.KeyEventPayloadType {
			it.isKey = true
			return
		}
		if it.rec, it.err = evidence.ParseRecord(env.Payload); it.err != nil {
			return
		}
		v.assignKey(it)
		v.verifySig(it)
	})
	firstKey := -1
	for i := range items {
		if items[i].isKey && items[i].err == nil {
			firstKey = i
			break
		}
	}
	if firstKey < 0 {
		v.tail(items)
		return
	}
	// Keys in log order: a rotation's key event precedes the records it keys.
	var again []int
	for i := firstKey; i < len(items); i++ {
		it := &items[i]
		if it.isKey {
			if it.err == nil {
				v.keyEvent(FileEvidence, it.index, it.raw)
				v.r.KeyEvents++
			}
			continue
		}
		if it.rec == nil {
			continue // it did not parse: nothing to key
		}
		it.err, it.key = nil, nil
		v.assignKey(it)
		if it.err == nil {
			again = append(again, i)
		}
	}
	parallel.For(len(again), func(j int) { v.verifySig(&items[again[j]]) })
	v.tail(items)
}

// assignKey finds the key of the record's agent valid at its seq.
func (v *verifier) assignKey(it *item) {
	p := &it.rec.Predicate
	a := v.ks.Agent(p.AgentID)
	if a == nil {
		it.err = fmt.Errorf("record of an agent no enrollment in the log vouches for")
		return
	}
	k, err := evidence.KeyAt(a.Keys, a.Revocation(), p.Seq)
	switch {
	case err != nil:
		it.err = err
	case a.Keys[k].prepared == nil:
		it.err = fmt.Errorf("the agent's key for this seq is not a valid ed25519 key")
	default:
		it.key = a.Keys[k].prepared
	}
}

func (v *verifier) verifySig(it *item) {
	if it.err != nil || it.key == nil {
		return
	}
	if err := evidence.VerifyRecordWith(it.env, it.key); err != nil {
		it.err = fmt.Errorf("signature: %w", err)
	}
}

// tail records each entry's outcome in log order: problems, chains, the
// summary.
func (v *verifier) tail(items []item) {
	for i := range items {
		it := &items[i]
		agent, seq := "", uint64(0)
		if it.rec != nil {
			agent, seq = it.rec.Predicate.AgentID, it.rec.Predicate.Seq
		}
		if it.err != nil {
			v.fail("signatures", FileEvidence, it.index, agent, seq, "%v", it.err)
			continue
		}
		if it.isKey {
			continue
		}
		v.r.Records++
		v.checker(agent).Track(int(it.index), it.rec)
		if g := it.rec.Predicate.Gap; g != nil {
			v.r.Explained = append(v.r.Explained, ExplainedGap{Agent: agent, From: g.From, To: g.To, Reason: g.Reason})
		}
		if v.builder != nil {
			v.builder.Add(it.index, it.rec)
		}
	}
}

// checker starts an agent's chain at its record before the period, or at
// its enrollment.
func (v *verifier) checker(agent string) *chain.Checker {
	if c := v.checkers[agent]; c != nil {
		return c
	}
	a := v.ks.Agent(agent)
	start := chain.Head{Digest: a.Genesis}
	if bd, ok := v.boundaries[agent]; ok && bd.Before != nil {
		if env, err := dsse.Parse(bd.Before.Envelope); err == nil {
			if rec, err := evidence.ParseRecord(env.Payload); err == nil && rec.Predicate.AgentID == agent {
				seq, link := rec.Next()
				start = chain.Head{Seq: seq - 1, Digest: link}
			}
		}
	}
	c := chain.NewChecker(agent, a.ChainKeys(), start)
	v.checkers[agent] = c
	return c
}

func (v *verifier) finish(manifestRaw []byte) {
	// Chains, including the cut-tail check against each agent's first
	// record after the period.
	agents := make([]string, 0, len(v.checkers))
	for a := range v.checkers {
		agents = append(agents, a)
	}
	sort.Strings(agents)
	v.r.Agents = len(agents)
	for _, a := range agents {
		rep := v.checkers[a].Finish()
		for _, p := range rep.Problems {
			v.fail("chains", FileEvidence, int64(p.Index), a, p.Seq, "%s: %s", p.Kind, p.Detail)
		}
		bd := v.boundaries[a]
		if bd.After == nil {
			if ak := v.ks.Agent(a); ak != nil && !ak.Revoked {
				v.r.Notes = append(v.r.Notes, fmt.Sprintf("agent %s has no record after the period yet: a cut tail cannot be ruled out", a))
			}
			continue
		}
		env, err := dsse.Parse(bd.After.Envelope)
		var rec *evidence.Record
		if err == nil {
			rec, err = evidence.ParseRecord(env.Payload)
		}
		if err != nil || rec.Predicate.AgentID != a {
			v.fail("chains", FileBoundaries, bd.After.Index, a, 0, "the record after the period is not this agent's record")
			continue
		}
		if rec.Predicate.Seq != rep.Head.Seq+1 || rec.Predicate.Prev != rep.Head.Digest {
			v.fail("chains", FileBoundaries, bd.After.Index, a, rec.Predicate.Seq,
				"cut tail: the first record after the period (seq %d) does not follow the last one in it (seq %d): records at the end of the period are missing", rec.Predicate.Seq, rep.Head.Seq)
		}
	}
	// keys.json must say what the key events say.
	want := map[string]AgentKeys{}
	for _, a := range v.ks.All() {
		want[a.AgentID] = a
	}
	for _, got := range v.keysFile {
		w, ok := want[got.AgentID]
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(w)
		if !ok || !bytes.Equal(gb, wb) {
			v.fail("keys", FileKeys, -1, got.AgentID, 0, "keys.json differs from what the log's key events say for this agent")
		}
		delete(want, got.AgentID)
	}
	for id := range want {
		v.fail("keys", FileKeys, -1, id, 0, "agent missing from keys.json")
	}
	// The manifest.
	env, err := dsse.Parse(manifestRaw)
	var m Manifest
	if err == nil {
		ver := dsse.Verifier{Keys: []dsse.TrustedKey{{ID: dsse.KeyID(v.keys.LogPub), Key: v.keys.LogPub}}, PayloadTypes: []string{ManifestPayloadType}}
		if _, err = ver.Verify(env); err == nil {
			err = json.Unmarshal(env.Payload, &m)
		}
	}
	if err != nil {
		v.fail("manifest", FileManifest, -1, "", 0, "not signed by the pinned log key: %v", err)
		return
	}
	v.r.Scope = &m.Scope
	for name, h := range m.Files {
		if got, ok := v.hashes[name]; !ok {
			v.fail("manifest", name, -1, "", 0, "listed in the manifest but not in the bundle")
		} else if got != h {
			v.fail("manifest", name, -1, "", 0, "sha256 %s… differs from the manifest's %s…", got[:12], h[:min(12, len(h))])
		}
	}
	for name := range v.hashes {
		if _, ok := m.Files[name]; !ok && name != FileManifest {
			v.fail("manifest", name, -1, "", 0, "in the bundle but not in the manifest")
		}
	}
	if m.Origin != v.keys.Log.Name() || m.StartSize != v.startSize || m.EndSize != v.endSize || m.LatestSize != v.latestN {
		v.fail("manifest", FileManifest, -1, "", 0, "origin or sizes differ from the checkpoints")
	}
	if m.Counts.Entries != v.r.Entries {
		v.fail("manifest", FileManifest, -1, "", 0, "manifest counts %d entries, the bundle holds %d", m.Counts.Entries, v.r.Entries)
	}
	// Summary and OSCAL, recomputed from the verified records.
	v.recompute(&m)
}

func (v *verifier) recompute(m *Manifest) {
	if v.builder == nil {
		v.fail("summary", FileSummary, -1, "", 0, "no valid mapping: the summary cannot be recomputed")
		return
	}
	v.builder.scope = m.Scope
	for _, a := range v.ks.All() {
		v.builder.Enrolled(a.AgentID, a.Labels)
	}
	s, err := v.builder.Summary()
	if err != nil {
		v.fail("summary", FileSummary, -1, "", 0, "%v", err)
		return
	}
	if want := EncodeSummary(s); !bytes.Equal(want, v.summary) {
		v.fail("summary", FileSummary, -1, "", 0, "differs from the summary recomputed from the verified records%s", firstDiff(v.summary, want))
	}
	want, err := OSCAL(s, m.CreatedAt, m.Origin)
	if err != nil || !bytes.Equal(want, v.oscal) {
		v.fail("summary", FileOSCAL, -1, "", 0, "differs from the OSCAL document recomputed from the verified records%s", firstDiff(v.oscal, want))
	}
}

// EncodeSummary is summary.json's exact bytes.
func EncodeSummary(s *Summary) []byte {
	b, _ := json.MarshalIndent(s, "", "  ")
	return b
}

// firstDiff names the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) && i < len(w); i++ {
		if g[i] != w[i] {
			return fmt.Sprintf(" (line %d: %q, recomputed %q)", i+1, strings.TrimSpace(g[i]), strings.TrimSpace(w[i]))
		}
	}
	return ""
}
