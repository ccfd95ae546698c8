package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/bundle"
	"github.com/annexa-dev/annexa/evidence/checkpoint"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/store"
)

// handleExport is GET /v1/export?from=&to=[&control=…][&label=k=v…]: the
// evidence bundle for a period, streamed.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) error {
	scope, err := s.exportScope(r.Context(), r.URL.Query())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="annexa-%s-%s.tar.gz"`, scope.From.Format("20060102"), scope.To.Format("20060102")))
	// Once bytes are out the status cannot change: the error path then
	// cuts the stream, which the verifier reports as a truncated bundle.
	return s.Export(r.Context(), w, scope)
}

// exportScope reads an export's period and filters from the query.
func (s *Server) exportScope(ctx context.Context, v url.Values) (bundle.Scope, error) {
	var scope bundle.Scope
	var err error
	if view := viewFrom(ctx); view != nil {
		// A bundle carries every entry of its period, whoever it is about:
		// its proofs of completeness rest on that.
		return scope, clientError(http.StatusForbidden, apiv1.CodeForbidden,
			"this token is limited to %s; a bundle holds the whole log for its period, so exporting needs a token without a selector", view.String())
	}
	if scope.From, err = parseTime(v.Get("from")); err != nil {
		return scope, badRequest("from: %v", err)
	}
	if scope.To, err = parseTime(v.Get("to")); err != nil {
		return scope, badRequest("to: %v", err)
	}
	if !scope.To.After(scope.From) {
		return scope, badRequest("to must be after from")
	}
	for _, c := range v["control"] {
		ids, err := s.catalog.Resolve(c)
		if err != nil {
			return scope, clientError(http.StatusBadRequest, apiv1.CodeUnknownControl, "%v", err)
		}
		scope.Controls = append(scope.Controls, ids...)
	}
	if len(v["label"]) > 0 {
		if scope.Labels, err = apiv1.ParseLabels(v["label"]); err != nil {
			return scope, badRequest("%v", err)
		}
	}
	scoped, err := inScope(v)
	if err != nil {
		return scope, badRequest("%v", err)
	}
	if scoped {
		sel, err := s.scope(ctx)
		if err != nil {
			return scope, err
		}
		scope.Selector = sel.String()
	}
	scope.Freshness = s.cfg.Freshness.String()
	return scope, nil
}

// exporter holds what the steps of one export share.
type exporter struct {
	s                  *Server
	ctx                context.Context
	bw                 *bundle.Writer
	hr                 tlog.HashReader
	start, end, latest int64 // tree sizes at the period's start and end, and now
	created            time.Time
}

// Export writes the bundle for scope to w, in the order the verifier reads
// it: mapping, checkpoints, proof, key events, boundaries, keys, evidence,
// summary, OSCAL, and last the signed manifest.
func (s *Server) Export(ctx context.Context, w io.Writer, scope bundle.Scope) error {
	x := &exporter{s: s, ctx: ctx, hr: s.db.HashReader(ctx), created: s.now().UTC()}
	var err error
	if x.start, err = s.db.IndexAt(ctx, scope.From); err != nil {
		return fmt.Errorf("export: log size at %s: %w", scope.From, err)
	}
	if x.end, err = s.db.IndexAt(ctx, scope.To); err != nil {
		return fmt.Errorf("export: log size at %s: %w", scope.To, err)
	}
	if x.latest, err = s.db.LogSize(ctx); err != nil {
		return fmt.Errorf("export: log size: %w", err)
	}
	x.bw = bundle.NewWriter(w, x.created)
	if err := x.bw.File(bundle.FileMapping, s.mappingRaw); err != nil {
		return fmt.Errorf("export: write mapping: %w", err)
	}
	if err := x.checkpoints(); err != nil {
		return fmt.Errorf("export: write checkpoints: %w", err)
	}
	if err := x.proof(); err != nil {
		return fmt.Errorf("export: write proof: %w", err)
	}
	ks, err := x.keyEvents()
	if err != nil {
		return fmt.Errorf("export: write key events: %w", err)
	}
	if err := x.boundaries(ks); err != nil {
		return fmt.Errorf("export: write boundaries: %w", err)
	}
	keys := ks.All()
	if keys == nil {
		keys = []bundle.AgentKeys{}
	}
	if err := writeJSONFile(x.bw, bundle.FileKeys, keys); err != nil {
		return fmt.Errorf("export: write keys: %w", err)
	}
	b := bundle.NewBuilder(scope, s.mapping)
	for _, a := range keys {
		b.Enrolled(a.AgentID, a.Labels)
		if a.Person != nil {
			b.Person(a.AgentID, a.Person)
		}
	}
	docs, err := x.attestations(b)
	if err != nil {
		return fmt.Errorf("export: write attestations: %w", err)
	}
	m := bundle.Manifest{Origin: s.keys.Log.Name(), Scope: scope, StartSize: x.start, EndSize: x.end, LatestSize: x.latest}
	if err := x.evidence(b, &m); err != nil {
		return fmt.Errorf("export: write evidence: %w", err)
	}
	if err := x.reports(b); err != nil {
		return fmt.Errorf("export: write reports: %w", err)
	}
	soa, err := s.soaAt(ctx, scope.To)
	if err != nil {
		return fmt.Errorf("export: statement of applicability: %w", err)
	}
	if err := writeJSONFile(x.bw, bundle.FileSoA, soa); err != nil {
		return fmt.Errorf("export: write statement of applicability: %w", err)
	}
	if err := x.documents(docs); err != nil {
		return fmt.Errorf("export: write attested documents: %w", err)
	}
	if err := x.bw.Finish(m, s.keys.LogPriv); err != nil {
		return fmt.Errorf("export: write manifest: %w", err)
	}
	return nil
}

// checkpoints signs the trees at the period's start and end and now.
func (x *exporter) checkpoints() error {
	for _, c := range []struct {
		name string
		size int64
	}{{bundle.FileCheckpointStart, x.start}, {bundle.FileCheckpointEnd, x.end}, {bundle.FileCheckpointLatest, x.latest}} {
		if c.size == 0 {
			continue // the empty tree needs no checkpoint
		}
		root, err := tlog.TreeHash(c.size, x.hr)
		if err != nil {
			return fmt.Errorf("tree hash at %d: %w", c.size, err)
		}
		note, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: x.s.keys.Log.Name(), Size: c.size, Hash: root}, x.s.keys.Log)
		if err != nil {
			return fmt.Errorf("sign checkpoint at %d: %w", c.size, err)
		}
		if err := x.bw.File(c.name, note); err != nil {
			return err
		}
	}
	return nil
}

// proof is the consistency proof from start to end and the start tree's
// frontier, from which the verifier rebuilds the end root.
func (x *exporter) proof() error {
	proof := bundle.Proof{Start: x.start, End: x.end, Consistency: []string{}, Frontier: []string{}}
	if x.start > 0 && x.start < x.end {
		p, err := tlog.ProveTree(x.end, x.start, x.hr)
		if err != nil {
			return fmt.Errorf("consistency %d to %d: %w", x.start, x.end, err)
		}
		proof.Consistency = hashStrings(p)
	}
	fr, err := bundle.FrontierAt(x.start, x.hr)
	if err != nil {
		return fmt.Errorf("frontier at %d: %w", x.start, err)
	}
	proof.Frontier = hashStrings(fr)
	return writeJSONFile(x.bw, bundle.FileProof, proof)
}

// leaf is the entry at idx with its inclusion proof in the tree of size.
func (x *exporter) leaf(idx, size int64) (*bundle.Leaf, error) {
	e, err := x.s.db.Entry(x.ctx, idx)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", idx, err)
	}
	p, err := tlog.ProveRecord(size, idx, x.hr)
	if err != nil {
		return nil, fmt.Errorf("inclusion of %d in %d: %w", idx, size, err)
	}
	return &bundle.Leaf{Index: idx, Envelope: e.Envelope, Proof: hashStrings(p)}, nil
}

// keyEvents replays every key event up to the period's end (for keys.json)
// and writes those before the period with their proofs.
func (x *exporter) keyEvents() (*bundle.KeyState, error) {
	keIdx, err := x.s.db.KeyEventIndexes(x.ctx, x.end)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	ks := bundle.NewKeyState()
	var lines []byte
	for _, idx := range keIdx {
		e, err := x.s.db.Entry(x.ctx, idx)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", idx, err)
		}
		env, err := dsse.Parse(e.Envelope)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", idx, err)
		}
		ev, err := evidence.ParseKeyEvent(env.Payload)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", idx, err)
		}
		if err := ks.Apply(ev, env.Payload); err != nil {
			return nil, fmt.Errorf("entry %d: %w", idx, err)
		}
		if idx < x.start {
			l, err := x.leaf(idx, x.start)
			if err != nil {
				return nil, err
			}
			b, err := json.Marshal(l)
			if err != nil {
				return nil, err
			}
			lines = append(append(lines, b...), '\n')
		}
	}
	return ks, x.bw.File(bundle.FileKeyEvents, lines)
}

// boundaries are each agent's last record before the period (proved in
// the start tree) and first after it (proved in the latest tree), so a cut
// tail shows.
func (x *exporter) boundaries(ks *bundle.KeyState) error {
	before, after, err := x.s.db.Neighbours(x.ctx, x.start, x.end)
	if err != nil {
		return fmt.Errorf("neighbours: %w", err)
	}
	bounds := []bundle.Boundary{}
	for _, a := range ks.All() {
		bd := bundle.Boundary{AgentID: a.AgentID}
		if i, ok := before[a.AgentID]; ok {
			if bd.Before, err = x.leaf(i, x.start); err != nil {
				return err
			}
		}
		if i, ok := after[a.AgentID]; ok {
			if bd.After, err = x.leaf(i, x.latest); err != nil {
				return err
			}
		}
		if bd.Before != nil || bd.After != nil {
			bounds = append(bounds, bd)
		}
	}
	slices.SortFunc(bounds, func(a, b bundle.Boundary) int { return strings.Compare(a.AgentID, b.AgentID) })
	return writeJSONFile(x.bw, bundle.FileBoundaries, bounds)
}

// evidence streams the period's entries, each leaf's exact bytes on a
// line, into the bundle and the summary builder.
func (x *exporter) evidence(b *bundle.Builder, m *bundle.Manifest) error {
	size, err := x.s.db.EntriesBytes(x.ctx, x.start, x.end)
	if err != nil {
		return fmt.Errorf("size: %w", err)
	}
	agents := map[string]bool{}
	err = x.bw.Stream(bundle.FileEvidence, size+(x.end-x.start), func(out io.Writer) error {
		return x.s.db.Entries(x.ctx, x.start, x.end, func(e *store.LogEntry) error {
			if _, err := out.Write(e.Envelope); err != nil {
				return err
			}
			if _, err := out.Write([]byte{'\n'}); err != nil {
				return err
			}
			m.Counts.Entries++
			switch e.Kind {
			case store.KindKeyEvent:
				m.Counts.KeyEvents++
				return nil
			case store.KindSoAChange:
				m.Counts.SoAChanges++
				return nil
			}
			m.Counts.Records++
			agents[e.AgentID] = true
			env, err := dsse.Parse(e.Envelope)
			if err != nil {
				return fmt.Errorf("entry %d: %w", e.Index, err)
			}
			rec, err := evidence.ParseRecord(env.Payload)
			if err != nil {
				return fmt.Errorf("entry %d: %w", e.Index, err)
			}
			b.Add(e.Index, rec)
			return nil
		})
	})
	m.Counts.Agents = len(agents)
	return err
}

// reports writes summary.json and the OSCAL document, both recomputed by
// the verifier from the verified records.
func (x *exporter) reports(b *bundle.Builder) error {
	sum, err := b.Summary()
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	if err := x.bw.File(bundle.FileSummary, bundle.EncodeSummary(sum)); err != nil {
		return err
	}
	oscal, err := bundle.OSCAL(sum, x.created, x.s.keys.Log.Name())
	if err != nil {
		return fmt.Errorf("oscal: %w", err)
	}
	return x.bw.File(bundle.FileOSCAL, oscal)
}

func writeJSONFile(bw *bundle.Writer, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return bw.File(name, b)
}

// attestations writes attestations.jsonl: each person's newest attestation
// of each control from before the period, with its proof in the start tree,
// so that a policy attested last year counts (or shows lapsed) in this
// quarter's bundle. It returns the digests of the documents the bundle's
// attestations cite, before and in the period.
func (x *exporter) attestations(b *bundle.Builder) ([]string, error) {
	all, err := x.s.db.Attestations(x.ctx, x.end)
	if err != nil {
		return nil, err
	}
	newest := map[[2]string]int64{}
	for _, a := range all {
		if a.LogIndex < x.start {
			for _, c := range a.Controls {
				newest[[2]string{a.PersonID, c}] = a.LogIndex
			}
		}
	}
	var lines []byte
	var docs []string
	seen := map[string]bool{}
	for _, a := range all {
		prior, keep := a.LogIndex < x.start, false
		for _, c := range a.Controls {
			keep = keep || newest[[2]string{a.PersonID, c}] == a.LogIndex
		}
		if prior && !keep {
			continue
		}
		if a.FileName != "" && !seen[a.SHA256] {
			seen[a.SHA256] = true
			docs = append(docs, a.SHA256)
		}
		if !prior {
			continue // in evidence.jsonl
		}
		l, err := x.leaf(a.LogIndex, x.start)
		if err != nil {
			return nil, err
		}
		line, err := json.Marshal(l)
		if err != nil {
			return nil, err
		}
		lines = append(append(lines, line...), '\n')
		env, err := dsse.Parse(l.Envelope)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", a.LogIndex, err)
		}
		rec, err := evidence.ParseRecord(env.Payload)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", a.LogIndex, err)
		}
		b.Add(a.LogIndex, rec)
	}
	return docs, x.bw.File(bundle.FileAttestations, lines)
}

// documents writes files/<sha256> for each cited document the server holds.
func (x *exporter) documents(digests []string) error {
	slices.Sort(digests)
	for _, d := range digests {
		data, err := x.s.db.AttestedFile(x.ctx, d)
		if errors.Is(err, store.ErrNotFound) {
			continue // never uploaded: the verifier notes it
		}
		if err != nil {
			return err
		}
		if err := x.bw.File(bundle.DirFiles+d, data); err != nil {
			return err
		}
	}
	return nil
}
