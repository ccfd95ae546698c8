package server

import (
	"errors"
	"net/http"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/store"
)

// handleCheckpoint is GET /v1/log/checkpoint[?size=N]: the latest signed
// checkpoint (C2SP signed note), or the one at size N.
func (s *Server) handleCheckpoint(w http.ResponseWriter, r *http.Request) {
	size := int64(-1)
	if v := r.URL.Query().Get("size"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "malformed", "size must be a non-negative integer")
			return
		}
		size = n
	}
	_, note, err := s.db.Checkpoint(r.Context(), size)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no checkpoint at that size")
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(note)
}

// handleEntry is GET /v1/log/entries/{index}: the leaf's bytes, exactly.
func (s *Server) handleEntry(w http.ResponseWriter, r *http.Request) {
	idx, err := strconv.ParseInt(r.PathValue("index"), 10, 64)
	if err != nil || idx < 0 {
		writeError(w, http.StatusBadRequest, "malformed", "index must be a non-negative integer")
		return
	}
	e, err := s.db.Entry(r.Context(), idx)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no entry at that index")
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Annexa-Entry-Kind", e.Kind)
	_, _ = w.Write(e.Envelope)
}

func (s *Server) treeSize(w http.ResponseWriter, r *http.Request, param string) (int64, bool) {
	size, err := s.db.LogSize(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return 0, false
	}
	v := r.URL.Query().Get(param)
	if v == "" {
		return size, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > size {
		writeError(w, http.StatusBadRequest, "malformed", param+" must be between 0 and the log size "+strconv.FormatInt(size, 10))
		return 0, false
	}
	return n, true
}

// handleInclusion is GET /v1/log/proof/inclusion?index=N[&size=M].
func (s *Server) handleInclusion(w http.ResponseWriter, r *http.Request) {
	size, ok := s.treeSize(w, r, "size")
	if !ok {
		return
	}
	idx, err := strconv.ParseInt(r.URL.Query().Get("index"), 10, 64)
	if err != nil || idx < 0 || idx >= size {
		writeError(w, http.StatusBadRequest, "malformed", "index must be below the tree size")
		return
	}
	hr := s.db.HashReader(r.Context())
	proof, err := tlog.ProveRecord(size, idx, hr)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	leaf, err := hr.ReadHashes([]int64{tlog.StoredHashIndex(0, idx)})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, apiv1.InclusionProof{Index: idx, TreeSize: size, LeafHash: leaf[0].String(), Hashes: hashStrings(proof)})
}

// handleConsistency is GET /v1/log/proof/consistency?from=N[&to=M].
func (s *Server) handleConsistency(w http.ResponseWriter, r *http.Request) {
	to, ok := s.treeSize(w, r, "to")
	if !ok {
		return
	}
	from, err := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
	if err != nil || from < 1 || from > to {
		writeError(w, http.StatusBadRequest, "malformed", "from must be between 1 and to")
		return
	}
	proof, err := tlog.ProveTree(to, from, s.db.HashReader(r.Context()))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, apiv1.ConsistencyProof{From: from, To: to, Hashes: hashStrings(proof)})
}

func hashStrings[T ~[]tlog.Hash](hs T) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}
