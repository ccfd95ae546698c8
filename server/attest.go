package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/store"
	"github.com/annexa-dev/annexa/server/webhook"
)

// People attest what machines cannot evidence. A person's key is made on
// their machine (annexa person init); an admin registers it, a key event in
// the log like an agent's enrollment; their attestations are signed
// statements chained per person and appended to the same log, so bundles
// carry them and annexa verify checks them like agents' records.

// Bounds on what people register and attest.
const (
	maxPersonName = 200
	maxPersonRole = 100
	// MaxAttestedFile bounds an uploaded document: policies, minutes and
	// certificates, not data sets.
	MaxAttestedFile = 32 << 20
	// attestReminder is how long before an attestation lapses its
	// control is flagged and an attestation.expiring webhook fires.
	attestReminder = 30 * 24 * time.Hour
	// maxAttestAge bounds how long after signing an attestation may reach
	// the server (a laptop offline over a holiday, not a backdated claim).
	maxAttestAge = 30 * 24 * time.Hour
)

// handlePersonAdd is POST /v1/persons.
func (s *Server) handlePersonAdd(w http.ResponseWriter, r *http.Request) error {
	var req apiv1.PersonRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	req.Name, req.Role = strings.TrimSpace(req.Name), strings.TrimSpace(req.Role)
	if req.Name == "" || len(req.Name) > maxPersonName || len(req.Role) > maxPersonRole {
		return badRequest("name (1 to %d bytes) is required, role at most %d bytes", maxPersonName, maxPersonRole)
	}
	if err := evidence.CheckAgentKey(req.PublicKey); err != nil {
		return badRequest("public_key: %v (the key annexa person init printed)", err)
	}
	p, err := s.addPerson(r.Context(), req, principalFrom(r.Context()).token.ID)
	if errors.Is(err, store.ErrDuplicateKey) {
		return clientError(http.StatusConflict, apiv1.CodeMalformed, "this key is already registered to someone: each person makes their own (annexa person init)")
	}
	if err != nil {
		return err
	}
	s.log.Info("person registered", "person", p.ID, "name", p.Name)
	writeJSON(w, http.StatusCreated, p)
	return nil
}

// addPerson registers a person: the row and the key event in the log, in
// one transaction.
func (s *Server) addPerson(ctx context.Context, req apiv1.PersonRequest, by string) (*apiv1.Person, error) {
	id := randomID("prs-")
	var out *apiv1.Person
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		now := s.now().UTC()
		app, err := tx.NewAppender(ctx)
		if err != nil {
			return err
		}
		ev := &evidence.KeyEvent{Kind: evidence.Person, AgentID: id, KeyID: dsse.KeyID(req.PublicKey), PublicKey: req.PublicKey, FromSeq: 1,
			Person: &evidence.PersonInfo{Name: req.Name, Role: req.Role}, Time: now}
		entry, err := s.appendKeyEvent(app, ev, now)
		if err != nil {
			return err
		}
		p := &store.Person{ID: id, Name: req.Name, Role: req.Role, KeyID: ev.KeyID, PublicKey: req.PublicKey, CreatedAt: now, CreatedBy: by, Link: entry.Digest}
		if err := tx.InsertPerson(ctx, p); err != nil {
			return err
		}
		if _, err := s.checkpoint(ctx, tx, app); err != nil {
			return err
		}
		out = personView(p)
		out.LogIndex = entry.Index
		return nil
	})
	return out, err
}

func personView(p *store.Person) *apiv1.Person {
	return &apiv1.Person{ID: p.ID, Name: p.Name, Role: p.Role, KeyID: p.KeyID, CreatedAt: p.CreatedAt, CreatedBy: p.CreatedBy,
		NextSeq: p.LastSeq + 1, Prev: p.Link, Revoked: !p.RevokedAt.IsZero(), RevokedAfter: p.RevokedAfter}
}

// queryPersons is GET /v1/persons.
func (s *Server) queryPersons(ctx context.Context, _ url.Values) ([]apiv1.Person, error) {
	ps, err := s.db.Persons(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]apiv1.Person, 0, len(ps))
	for i := range ps {
		out = append(out, *personView(&ps[i]))
	}
	return out, nil
}

// handlePersonByKey is GET /v1/persons/by-key/{keyid}: a person's client
// learns its id and where its chain stands from its own key. It needs no
// token: the key holder signs; what it learns is their own name and count.
func (s *Server) handlePersonByKey(w http.ResponseWriter, r *http.Request) error {
	p, err := s.db.PersonByKey(r.Context(), r.PathValue("keyid"))
	if errors.Is(err, store.ErrNotFound) {
		return clientError(http.StatusNotFound, apiv1.CodeUnknownPerson, "no person is registered with this key: an admin registers it (annexa person add)")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, personView(p))
	return nil
}

// handlePersonRevoke is POST /v1/persons/{id}/revoke: removal works like an
// agent's revocation; attestations up to it stay verifiable.
func (s *Server) handlePersonRevoke(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var after uint64
	err := s.db.InTx(r.Context(), func(tx *store.Tx) error {
		p, err := tx.LockPerson(r.Context(), id)
		if err != nil {
			return err
		}
		if !p.RevokedAt.IsZero() {
			after = p.RevokedAfter
			return nil
		}
		now := s.now().UTC()
		after = p.LastSeq
		if err := tx.RevokePerson(r.Context(), id, now, after); err != nil {
			return err
		}
		app, err := tx.NewAppender(r.Context())
		if err != nil {
			return err
		}
		if _, err := s.appendKeyEvent(app, &evidence.KeyEvent{Kind: evidence.Revoke, AgentID: id, AfterSeq: after, Time: now}, now); err != nil {
			return err
		}
		_, err = s.checkpoint(r.Context(), tx, app)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no person %s", id)
	}
	if err != nil {
		return fmt.Errorf("remove person %s: %w", id, err)
	}
	s.log.Info("person removed", "person", id, "after_seq", after)
	writeJSON(w, http.StatusOK, map[string]any{"person_id": id, "revoked_after_seq": after})
	return nil
}

// handleAttest is POST /v1/attestations: the body is the DSSE envelope. The
// signature by a registered person's key is the credential.
func (s *Server) handleAttest(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, evidence.MaxRecordSize*2))
	if err != nil {
		return clientError(http.StatusRequestEntityTooLarge, apiv1.CodeTooLarge, "an attestation is at most %d bytes", evidence.MaxRecordSize)
	}
	env, err := dsse.ParseStrict(bytes.TrimSpace(body))
	if err != nil {
		return badRequest("%v", err)
	}
	rec, err := evidence.ParseRecord(env.Payload)
	if err != nil {
		return badRequest("%v", err)
	}
	if rec.Attestation == nil {
		return badRequest("not an attestation (predicateType %s): agents send their records to /v1/evidence", rec.PredicateType)
	}
	resp, err := s.Attest(r.Context(), env, rec)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if resp.Duplicate {
		status = http.StatusOK
	}
	writeJSON(w, status, resp)
	return nil
}

// Attest verifies an attestation and appends it to the log.
func (s *Server) Attest(ctx context.Context, env *dsse.Envelope, rec *evidence.Record) (*apiv1.AttestResponse, error) {
	a := rec.Attestation
	for _, c := range a.Controls {
		if _, ok := s.catalog.Control(c); !ok {
			return nil, clientError(http.StatusUnprocessableEntity, apiv1.CodeUnknownControl, "control %s is not in the Annex A catalog", c)
		}
	}
	// The canonical form of the envelope is what the log keeps: the
	// signature covers the payload, not the JSON around it.
	raw, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	resp := &apiv1.AttestResponse{PersonID: a.PersonID}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		p, err := tx.LockPerson(ctx, a.PersonID)
		if errors.Is(err, store.ErrNotFound) {
			return clientError(http.StatusForbidden, apiv1.CodeUnknownPerson, "no person %s is registered (annexa person add)", a.PersonID)
		}
		if err != nil {
			return err
		}
		if !p.Revocation().Allows(a.Seq) {
			return clientError(http.StatusForbidden, apiv1.CodeRevoked, "person %s was removed after seq %d: their key attests nothing more", p.ID, p.RevokedAfter)
		}
		if err := evidence.VerifyRecord(env, p.PublicKey); err != nil {
			code := apiv1.CodeBadSignature
			if errors.Is(err, evidence.ErrWrongKeyID) {
				code = apiv1.CodeWrongKeyID
			}
			return clientError(http.StatusUnprocessableEntity, code, "not signed by %s's registered key: %v", p.Name, err)
		}
		now := s.now().UTC()
		if a.AttestedAt.After(now.Add(MaxClockSkew)) || a.AttestedAt.Before(now.Add(-maxAttestAge)) {
			return clientError(http.StatusUnprocessableEntity, apiv1.CodeBadTime, "attested_at %s: an attestation reaches the server within %s of being signed, and not from the future (server time %s)",
				a.AttestedAt.Format(time.RFC3339), maxAttestAge, now.Format(time.RFC3339))
		}
		v, other, err := decideSeq(p.LastSeq, p.Link, a.Seq, a.Prev, rec.Digest, recordAt(ctx, tx, p.ID))
		if err != nil {
			return err
		}
		switch v {
		case seqDuplicate:
			resp.Receipt, resp.Duplicate = apiv1.Receipt{Seq: a.Seq, Index: other.index, Digest: other.digest}, true
			return nil
		case seqAccept:
		default:
			e := clientError(http.StatusConflict, apiv1.CodeSeqGap, "person %s's next attestation is seq %d with prev %s; this one is seq %d with prev %s: sign it again on top of the chain", p.ID, p.LastSeq+1, p.Link, a.Seq, a.Prev)
			e.body.ExpectedSeq = p.LastSeq + 1
			return e
		}
		app, err := tx.NewAppender(ctx)
		if err != nil {
			return err
		}
		idx, err := app.Append(&store.LogEntry{Kind: store.KindRecord, AgentID: p.ID, Seq: a.Seq, Digest: rec.Digest, Envelope: raw, ReceivedAt: now})
		if err != nil {
			return err
		}
		row := &store.Attestation{LogIndex: idx, PersonID: p.ID, Seq: a.Seq, Digest: rec.Digest, Controls: a.Controls, Statement: a.Statement,
			SHA256: rec.Subject[0].Digest["sha256"], AttestedAt: a.AttestedAt, ValidUntil: a.ValidUntil, ReceivedAt: now}
		if f := a.File; f != nil {
			row.FileName, row.FileSize, row.MediaType = f.Name, f.Size, f.MediaType
		}
		if err := tx.InsertAttestation(ctx, row); err != nil {
			return err
		}
		if err := tx.AdvancePerson(ctx, p.ID, a.Seq, rec.Digest); err != nil {
			return err
		}
		note, err := s.checkpoint(ctx, tx, app)
		if err != nil {
			return err
		}
		resp.Receipt, resp.Checkpoint = apiv1.Receipt{Seq: a.Seq, Index: idx, Digest: rec.Digest}, string(note)
		s.log.Info("attestation", "person", p.ID, "seq", a.Seq, "controls", strings.Join(a.Controls, ","), "index", idx)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if resp.Checkpoint == "" {
		_, note, err := s.db.Checkpoint(ctx, -1)
		if err != nil {
			return nil, err
		}
		resp.Checkpoint = string(note)
	}
	if a.File != nil && a.File.Size <= MaxAttestedFile {
		_, err := s.db.AttestedFile(ctx, rec.Subject[0].Digest["sha256"])
		switch {
		case errors.Is(err, store.ErrNotFound):
			resp.FileWanted = true
		case err != nil:
			return nil, err
		default:
			resp.FileStored = true
		}
	}
	return resp, nil
}

// handleAttestedFileUpload is PUT /v1/attestations/files/{sha256}: the
// document an attestation cites. Its digest is the credential: only a
// document some attestation already vouches for, of the size it says, is
// kept.
func (s *Server) handleAttestedFileUpload(w http.ResponseWriter, r *http.Request) error {
	digest := r.PathValue("sha256")
	a, err := s.db.AttestationCiting(r.Context(), digest)
	if errors.Is(err, store.ErrNotFound) {
		return clientError(http.StatusNotFound, apiv1.CodeNotAttested, "no attestation cites a document with sha256 %s: attest it first (annexa attest --file)", digest)
	}
	if err != nil {
		return err
	}
	if a.FileSize > MaxAttestedFile {
		return clientError(http.StatusRequestEntityTooLarge, apiv1.CodeTooLarge, "%s is %d bytes; the server keeps documents of at most %d (its digest is attested all the same)", a.FileName, a.FileSize, MaxAttestedFile)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.FileSize))
	if err != nil {
		return clientError(http.StatusRequestEntityTooLarge, apiv1.CodeTooLarge, "the attestation says %s is %d bytes", a.FileName, a.FileSize)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != digest || int64(len(data)) != a.FileSize {
		return badRequest("the upload (%d bytes) does not hash to %s", len(data), digest)
	}
	if err := s.db.PutAttestedFile(r.Context(), digest, data, s.now()); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"sha256": digest, "size": len(data), "name": a.FileName})
	return nil
}

// handleAttestedFile is GET /v1/attestations/files/{sha256}.
func (s *Server) handleAttestedFile(w http.ResponseWriter, r *http.Request) error {
	digest := r.PathValue("sha256")
	a, err := s.db.AttestationCiting(r.Context(), digest)
	if err == nil {
		var data []byte
		if data, err = s.db.AttestedFile(r.Context(), digest); err == nil {
			ct := a.MediaType
			if ct == "" {
				ct = "application/octet-stream"
			}
			w.Header().Set("Content-Type", ct)
			w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", a.FileName))
			w.Header().Set("X-Content-Type-Options", "nosniff")
			_, _ = w.Write(data)
			return nil
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no document with sha256 %s was uploaded", digest)
	}
	return err
}

// attestView is what the API shows of the attestations at an instant: their
// status then, and whether a later attestation by the same person
// supersedes one; with detail, who the person is and whether the document
// is stored (the counts of /v1/controls need neither).
func (s *Server) attestView(ctx context.Context, at time.Time, detail bool) ([]apiv1.Attestation, error) {
	rows, err := s.db.Attestations(ctx, -1)
	if err != nil {
		return nil, err
	}
	byID := map[string]store.Person{}
	var files map[string]int64
	if detail && len(rows) > 0 {
		persons, err := s.db.Persons(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range persons {
			byID[p.ID] = p
		}
		if files, err = s.db.AttestedFiles(ctx); err != nil {
			return nil, err
		}
	}
	latest := map[[2]string]int{} // (person, control) → position of the newest attestation then
	out := make([]apiv1.Attestation, 0, len(rows))
	for _, a := range rows {
		if a.ReceivedAt.After(at) {
			break // in log order: the ones after at are not known then
		}
		p := byID[a.PersonID]
		v := apiv1.Attestation{AttestationEntry: a, Person: p.Name, Role: p.Role, Status: attestStatus(a.ValidUntil, at)}
		if a.FileName != "" {
			_, v.FileStored = files[a.SHA256]
		}
		for _, c := range a.Controls {
			latest[[2]string{a.PersonID, c}] = len(out)
		}
		out = append(out, v)
	}
	for i := range out {
		sup := true
		for _, c := range out[i].Controls {
			if latest[[2]string{out[i].PersonID, c}] == i {
				sup = false
			}
		}
		out[i].Superseded = sup
	}
	return out, nil
}

// attestStatus is an attestation's status at t.
func attestStatus(validUntil, t time.Time) string {
	switch {
	case !t.Before(validUntil):
		return "expired"
	case validUntil.Sub(t) <= attestReminder:
		return "expiring"
	}
	return "valid"
}

// queryAttestations is GET /v1/attestations: ?control=, ?person=, ?status=,
// ?all=true for superseded ones too, ?at= an instant.
func (s *Server) queryAttestations(ctx context.Context, q url.Values) (*apiv1.AttestationsResponse, error) {
	at := s.now().UTC()
	if a := q.Get("at"); a != "" {
		var err error
		if at, err = parseTime(a); err != nil {
			return nil, badQuery(err)
		}
	}
	list, err := s.attestView(ctx, at, true)
	if err != nil {
		return nil, err
	}
	control := q.Get("control")
	if control != "" {
		ids, err := s.catalog.Resolve(control)
		if err != nil || len(ids) != 1 {
			return nil, clientError(http.StatusNotFound, apiv1.CodeUnknownControl, "control %q: not one Annex A 2022 control", control)
		}
		control = ids[0]
	}
	resp := &apiv1.AttestationsResponse{At: at, Attestations: []apiv1.Attestation{}}
	for _, a := range list {
		switch {
		case a.Superseded && q.Get("all") != "true":
		case control != "" && !containsString(a.Controls, control):
		case q.Get("person") != "" && q.Get("person") != a.PersonID:
		case q.Get("status") != "" && q.Get("status") != a.Status:
		default:
			resp.Attestations = append(resp.Attestations, a)
		}
	}
	return resp, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// attestedCounts is what the attestations in force at t add to each
// control: each person counts once, by their newest attestation of it,
// valid while it holds, stale once lapsed.
func (s *Server) attestedCounts(ctx context.Context, at time.Time) (map[string]attested, error) {
	list, err := s.attestView(ctx, at, false)
	if err != nil {
		return nil, err
	}
	out := map[string]attested{}
	for c, as := range newestPerPerson(list) {
		var n attested
		for _, a := range as {
			n.add(a.Status)
		}
		out[c] = n
	}
	return out, nil
}

// newestPerPerson is, per control, each person's newest attestation of it
// (list is in log order), in the order they were made.
func newestPerPerson(list []apiv1.Attestation) map[string][]apiv1.Attestation {
	newest := map[[2]string]int{}
	for i, a := range list {
		for _, c := range a.Controls {
			newest[[2]string{a.PersonID, c}] = i
		}
	}
	out := map[string][]apiv1.Attestation{}
	for i, a := range list {
		for _, c := range a.Controls {
			if newest[[2]string{a.PersonID, c}] == i {
				out[c] = append(out[c], a)
			}
		}
	}
	return out
}

// attested counts a control's people by their attestation's status.
type attested struct{ Valid, Expiring, Stale int }

func (n *attested) add(status string) {
	switch status {
	case "expired":
		n.Stale++
	case "expiring":
		n.Valid++
		n.Expiring++
	default:
		n.Valid++
	}
}

// attestSummary adds a control's attestations to its summary: a control
// people vouch for is covered, as one machines report on is.
func attestSummary(cs *apiv1.ControlSummary, n attested) {
	cs.AttestedCounts = apiv1.AttestedCounts{Attested: n.Valid, AttestedExpiring: n.Expiring, AttestedStale: n.Stale}
	cs.Covered = cs.Covered || n.Valid+n.Stale > 0
}

// remindAttestations queues attestation.expiring for each attestation that
// lapses within the reminder window, once, in the webhook producer's
// transaction.
func (s *Server) remindAttestations(ctx context.Context, tx *store.Tx, hooks []store.Webhook, now time.Time) error {
	due, err := tx.RemindAttestations(ctx, now.Add(attestReminder))
	if err != nil {
		return err
	}
	for _, a := range due {
		data := map[string]any{"log_index": a.LogIndex, "person_id": a.PersonID, "person": a.Person, "controls": a.Controls,
			"statement": a.Statement, "valid_until": a.ValidUntil, "expires_in": a.ValidUntil.Sub(now).Round(time.Hour).String(),
			"file_name": a.FileName, "sha256": a.SHA256}
		if err := s.enqueue(ctx, tx, hooks, webhook.AttestationExpiring, data, now); err != nil {
			return err
		}
	}
	return nil
}
