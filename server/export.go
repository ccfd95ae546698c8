package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/bundle"
	"github.com/annexa-dev/annexa/evidence/checkpoint"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/server/store"
)

// handleExport is GET /v1/export?from=&to=[&control=…][&label=k=v…]: the
// evidence bundle for a period, streamed.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	var scope bundle.Scope
	var err error
	if scope.From, err = parseTime(v.Get("from")); err != nil {
		writeError(w, http.StatusBadRequest, "malformed", "from: "+err.Error())
		return
	}
	if scope.To, err = parseTime(v.Get("to")); err != nil {
		writeError(w, http.StatusBadRequest, "malformed", "to: "+err.Error())
		return
	}
	if !scope.To.After(scope.From) {
		writeError(w, http.StatusBadRequest, "malformed", "to must be after from")
		return
	}
	for _, c := range v["control"] {
		ids, err := s.catalog.Resolve(c)
		if err != nil {
			writeError(w, http.StatusBadRequest, "unknown_control", err.Error())
			return
		}
		scope.Controls = append(scope.Controls, ids...)
	}
	for _, l := range v["label"] {
		k, val, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			writeError(w, http.StatusBadRequest, "malformed", "label must be key=value")
			return
		}
		if scope.Labels == nil {
			scope.Labels = map[string]string{}
		}
		scope.Labels[k] = val
	}
	scope.Freshness = s.cfg.Freshness.String()
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="annexa-%s-%s.tar.gz"`, scope.From.Format("20060102"), scope.To.Format("20060102")))
	if err := s.Export(r.Context(), w, scope); err != nil {
		// Headers are gone: the stream is cut, which the verifier reports
		// as a truncated bundle.
		s.log.Error("export failed", "err", err)
	}
}

// Export writes the bundle for scope to w.
func (s *Server) Export(ctx context.Context, w io.Writer, scope bundle.Scope) error {
	start, err := s.db.IndexAt(ctx, scope.From)
	if err != nil {
		return err
	}
	end, err := s.db.IndexAt(ctx, scope.To)
	if err != nil {
		return err
	}
	latest, err := s.db.LogSize(ctx)
	if err != nil {
		return err
	}
	hr := s.db.HashReader(ctx)
	sign := func(n int64) ([]byte, tlog.Hash, error) {
		root, err := tlog.TreeHash(n, hr)
		if err != nil {
			return nil, root, err
		}
		note, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: s.keys.Log.Name(), Size: n, Hash: root}, s.keys.Log)
		return note, root, err
	}
	created := s.now().UTC()
	bw := bundle.NewWriter(w, created)
	if err := bw.File(bundle.FileMapping, s.mappingRaw); err != nil {
		return err
	}
	for _, c := range []struct {
		name string
		size int64
	}{{bundle.FileCheckpointStart, start}, {bundle.FileCheckpointEnd, end}, {bundle.FileCheckpointLatest, latest}} {
		if c.size == 0 {
			continue // the empty tree needs no checkpoint
		}
		note, _, err := sign(c.size)
		if err != nil {
			return err
		}
		if err := bw.File(c.name, note); err != nil {
			return err
		}
	}
	proof := bundle.Proof{Start: start, End: end, Consistency: []string{}, Frontier: []string{}}
	if start > 0 && start < end {
		p, err := tlog.ProveTree(end, start, hr)
		if err != nil {
			return err
		}
		proof.Consistency = hashStrings(p)
	}
	fr, err := bundle.FrontierAt(start, hr)
	if err != nil {
		return err
	}
	proof.Frontier = hashStrings(fr)
	if err := writeJSONFile(bw, bundle.FileProof, proof); err != nil {
		return err
	}

	leaf := func(idx, size int64) (*bundle.Leaf, error) {
		e, err := s.db.Entry(ctx, idx)
		if err != nil {
			return nil, err
		}
		p, err := tlog.ProveRecord(size, idx, hr)
		if err != nil {
			return nil, err
		}
		return &bundle.Leaf{Index: idx, Envelope: e.Envelope, Proof: hashStrings(p)}, nil
	}
	// Key events: those before the period with proofs; all up to the end
	// replayed for keys.json.
	keIdx, err := s.db.KeyEventIndexes(ctx, end)
	if err != nil {
		return err
	}
	ks := bundle.NewKeyState()
	var keLines []byte
	for _, idx := range keIdx {
		e, err := s.db.Entry(ctx, idx)
		if err != nil {
			return err
		}
		env, err := dsse.Parse(e.Envelope)
		if err != nil {
			return err
		}
		ev, err := evidence.ParseKeyEvent(env.Payload)
		if err != nil {
			return err
		}
		if err := ks.Apply(ev, env.Payload); err != nil {
			return err
		}
		if idx < start {
			l, err := leaf(idx, start)
			if err != nil {
				return err
			}
			b, _ := json.Marshal(l)
			keLines = append(append(keLines, b...), '\n')
		}
	}
	if err := bw.File(bundle.FileKeyEvents, keLines); err != nil {
		return err
	}
	before, after, err := s.db.Neighbours(ctx, start, end)
	if err != nil {
		return err
	}
	var bounds []bundle.Boundary
	for _, a := range ks.All() {
		bd := bundle.Boundary{AgentID: a.AgentID}
		if i, ok := before[a.AgentID]; ok {
			if bd.Before, err = leaf(i, start); err != nil {
				return err
			}
		}
		if i, ok := after[a.AgentID]; ok {
			if bd.After, err = leaf(i, latest); err != nil {
				return err
			}
		}
		if bd.Before != nil || bd.After != nil {
			bounds = append(bounds, bd)
		}
	}
	sort.Slice(bounds, func(i, j int) bool { return bounds[i].AgentID < bounds[j].AgentID })
	if bounds == nil {
		bounds = []bundle.Boundary{}
	}
	if err := writeJSONFile(bw, bundle.FileBoundaries, bounds); err != nil {
		return err
	}
	keys := ks.All()
	if keys == nil {
		keys = []bundle.AgentKeys{}
	}
	if err := writeJSONFile(bw, bundle.FileKeys, keys); err != nil {
		return err
	}

	// The period's entries, streamed, each leaf's exact bytes on a line.
	size, err := s.db.EntriesBytes(ctx, start, end)
	if err != nil {
		return err
	}
	b := bundle.NewBuilder(scope, s.mapping)
	for _, a := range keys {
		b.Enrolled(a.AgentID, a.Labels)
	}
	m := bundle.Manifest{Origin: s.keys.Log.Name(), Scope: scope, StartSize: start, EndSize: end, LatestSize: latest}
	agents := map[string]bool{}
	err = bw.Stream(bundle.FileEvidence, size+(end-start), func(out io.Writer) error {
		return s.db.Entries(ctx, start, end, func(e *store.LogEntry) error {
			if _, err := out.Write(e.Envelope); err != nil {
				return err
			}
			if _, err := out.Write([]byte{'\n'}); err != nil {
				return err
			}
			m.Counts.Entries++
			if e.Kind == store.KindKeyEvent {
				m.Counts.KeyEvents++
				return nil
			}
			m.Counts.Records++
			agents[e.AgentID] = true
			env, err := dsse.Parse(e.Envelope)
			if err != nil {
				return err
			}
			rec, err := evidence.ParseRecord(env.Payload)
			if err != nil {
				return err
			}
			b.Add(e.Index, rec)
			return nil
		})
	})
	if err != nil {
		return err
	}
	m.Counts.Agents = len(agents)
	sum, err := b.Summary()
	if err != nil {
		return err
	}
	if err := bw.File(bundle.FileSummary, bundle.EncodeSummary(sum)); err != nil {
		return err
	}
	oscal, err := bundle.OSCAL(sum, created, s.keys.Log.Name())
	if err != nil {
		return err
	}
	if err := bw.File(bundle.FileOSCAL, oscal); err != nil {
		return err
	}
	return bw.Finish(m, s.keys.LogPriv)
}

func writeJSONFile(bw *bundle.Writer, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return bw.File(name, b)
}
