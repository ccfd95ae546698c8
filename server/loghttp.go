package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/store"
)

// handleCheckpoint is GET /v1/log/checkpoint[?size=N]: the latest signed
// checkpoint (C2SP signed note), or the one at size N.
func (s *Server) handleCheckpoint(w http.ResponseWriter, r *http.Request) error {
	size := int64(-1)
	if v := r.URL.Query().Get("size"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return badRequest("size must be a non-negative integer")
		}
		size = n
	}
	_, note, err := s.db.Checkpoint(r.Context(), size)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no checkpoint at that size")
	}
	if err != nil {
		return fmt.Errorf("checkpoint at size %d: %w", size, err)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(note)
	return nil
}

// handleEntry is GET /v1/log/entries/{index}: the leaf's bytes, exactly.
func (s *Server) handleEntry(w http.ResponseWriter, r *http.Request) error {
	idx, err := strconv.ParseInt(r.PathValue("index"), 10, 64)
	if err != nil || idx < 0 {
		return badRequest("index must be a non-negative integer")
	}
	e, err := s.db.Entry(r.Context(), idx)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no entry at that index")
	}
	if err != nil {
		return fmt.Errorf("log entry %d: %w", idx, err)
	}
	if err := ownEntry(r, e); err != nil {
		return err
	}
	if err := s.entryVisible(r, e); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Annexa-Entry-Kind", e.Kind)
	_, _ = w.Write(e.Envelope)
	return nil
}

// treeSize is the tree size a proof is asked for: the query parameter
// param, or the log's size.
func (s *Server) treeSize(r *http.Request, param string) (int64, error) {
	size, err := s.db.LogSize(r.Context())
	if err != nil {
		return 0, fmt.Errorf("log size: %w", err)
	}
	v := r.URL.Query().Get(param)
	if v == "" {
		return size, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > size {
		return 0, badRequest("%s must be between 0 and the log size %d", param, size)
	}
	return n, nil
}

// handleInclusion is GET /v1/log/proof/inclusion?index=N[&size=M].
func (s *Server) handleInclusion(w http.ResponseWriter, r *http.Request) error {
	size, err := s.treeSize(r, "size")
	if err != nil {
		return err
	}
	idx, err := strconv.ParseInt(r.URL.Query().Get("index"), 10, 64)
	if err != nil || idx < 0 || idx >= size {
		return badRequest("index must be below the tree size")
	}
	if p := principalFrom(r.Context()); (p != nil && p.agent != nil) || viewFrom(r.Context()) != nil {
		e, err := s.db.Entry(r.Context(), idx)
		if err != nil {
			return fmt.Errorf("log entry %d: %w", idx, err)
		}
		if err := ownEntry(r, e); err != nil {
			return err
		}
		if err := s.entryVisible(r, e); err != nil {
			return err
		}
	}
	hr := s.db.HashReader(r.Context())
	proof, err := tlog.ProveRecord(size, idx, hr)
	if err != nil {
		return fmt.Errorf("inclusion proof of %d in %d: %w", idx, size, err)
	}
	leaf, err := hr.ReadHashes([]int64{tlog.StoredHashIndex(0, idx)})
	if err != nil {
		return fmt.Errorf("inclusion proof: leaf hash %d: %w", idx, err)
	}
	writeJSON(w, http.StatusOK, apiv1.InclusionProof{Index: idx, TreeSize: size, LeafHash: leaf[0].String(), Hashes: hashStrings(proof)})
	return nil
}

// handleConsistency is GET /v1/log/proof/consistency?from=N[&to=M].
func (s *Server) handleConsistency(w http.ResponseWriter, r *http.Request) error {
	to, err := s.treeSize(r, "to")
	if err != nil {
		return err
	}
	from, err := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
	if err != nil || from < 1 || from > to {
		return badRequest("from must be between 1 and to")
	}
	proof, err := tlog.ProveTree(to, from, s.db.HashReader(r.Context()))
	if err != nil {
		return fmt.Errorf("consistency proof %d to %d: %w", from, to, err)
	}
	writeJSON(w, http.StatusOK, apiv1.ConsistencyProof{From: from, To: to, Hashes: hashStrings(proof)})
	return nil
}

// ownEntry lets an agent read only its own entries (its records and the
// key events about it): one machine must not read the fleet's evidence.
// API tokens read every entry.
func ownEntry(r *http.Request, e *store.LogEntry) error {
	p := principalFrom(r.Context())
	if p == nil || p.agent == nil || e.AgentID == p.agent.ID {
		return nil
	}
	return clientError(http.StatusForbidden, apiv1.CodeForbidden, "an agent reads its own log entries only")
}

// entryVisible refuses an entry about an agent outside a limited token's
// view, as if it were not there.
func (s *Server) entryVisible(r *http.Request, e *store.LogEntry) error {
	ok, err := s.agentVisible(r.Context(), e.AgentID)
	if err != nil {
		return err
	}
	if !ok {
		return errOutOfView(fmt.Sprintf("no entry at index %d for this token", e.Index))
	}
	return nil
}

func hashStrings[T ~[]tlog.Hash](hs T) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}
