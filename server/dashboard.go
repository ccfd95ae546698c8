package server

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/catalog"
	"github.com/annexa-dev/annexa/evidence/checkpoint"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/evidence/selector"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/dashboard"
	"github.com/annexa-dev/annexa/server/store"
)

// HTTPStatus and Message make a client error something the dashboard can
// show as it is (dashboard.Status).
func (e *apiError) HTTPStatus() int { return e.status }

// Message is the error's text meant for the person who caused it.
func (e *apiError) Message() string { return e.body.Message }

// trendPageWait is how long a page waits for a trend being built before it
// renders without it.
const trendPageWait = 150 * time.Millisecond

// pages is the dashboard's view of the server: the same query functions as
// the /v1 API.
type pages struct{ s *Server }

var _ dashboard.Backend = pages{}

func (p pages) SignIn(ctx context.Context, secret string) (*dashboard.Principal, error) {
	if secret == "" {
		return nil, fmt.Errorf("%w: no token given", dashboard.ErrCredential)
	}
	t, err := p.s.db.TokenByHash(ctx, hashSecret(secret))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: unknown token", dashboard.ErrCredential)
	}
	if err != nil {
		return nil, err
	}
	return p.principal(t)
}

func (p pages) Principal(ctx context.Context, tokenID string) (*dashboard.Principal, error) {
	t, err := p.s.db.TokenByID(ctx, tokenID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: token %s no longer exists", dashboard.ErrCredential, tokenID)
	}
	if err != nil {
		return nil, err
	}
	return p.principal(t)
}

func (p pages) principal(t *store.Token) (*dashboard.Principal, error) {
	switch {
	case t.Role == RoleEnroll:
		return nil, fmt.Errorf("%w: an enroll token only enrols agents; sign in with an admin, analyst or auditor token", dashboard.ErrCredential)
	case t.Revoked:
		return nil, fmt.Errorf("%w: token %s is revoked", dashboard.ErrCredential, t.ID)
	case !t.ExpiresAt.IsZero() && p.s.now().After(t.ExpiresAt):
		return nil, fmt.Errorf("%w: token %s expired %s", dashboard.ErrCredential, t.ID, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return &dashboard.Principal{TokenID: t.ID, Name: t.Name, Role: t.Role, Selector: t.Selector}, nil
}

func (p pages) Catalog() *catalog.Catalog { return p.s.catalog }

// view is ctx limited as the signed-in token is: the dashboard's pages see
// what the same token sees through the API.
func (p pages) view(ctx context.Context) (context.Context, error) {
	who := dashboard.PrincipalFrom(ctx)
	if who == nil || who.Selector == "" {
		return ctx, nil
	}
	sel, err := selector.Parse(who.Selector)
	if err != nil {
		return nil, fmt.Errorf("token %s selector: %w", who.TokenID, err)
	}
	return withView(ctx, sel), nil
}

// viewed runs fn with ctx limited to the signed-in token's view.
func viewed[T any](p pages, ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	ctx, err := p.view(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	return fn(ctx)
}

func (p pages) Controls(ctx context.Context, v url.Values) (*apiv1.ControlsResponse, error) {
	return viewed(p, ctx, func(ctx context.Context) (*apiv1.ControlsResponse, error) { return p.s.queryControls(ctx, v) })
}

func (p pages) Control(ctx context.Context, id string, v url.Values) (*apiv1.ControlDetail, error) {
	return viewed(p, ctx, func(ctx context.Context) (*apiv1.ControlDetail, error) { return p.s.queryControl(ctx, id, v) })
}

func (p pages) Hosts(ctx context.Context, v url.Values) (*apiv1.Page[apiv1.Host], error) {
	return viewed(p, ctx, func(ctx context.Context) (*apiv1.Page[apiv1.Host], error) { return p.s.queryHosts(ctx, v) })
}

func (p pages) Host(ctx context.Context, id string, v url.Values) (*apiv1.HostDetail, error) {
	return viewed(p, ctx, func(ctx context.Context) (*apiv1.HostDetail, error) { return p.s.queryHost(ctx, id, v) })
}

func (p pages) History(ctx context.Context, v url.Values) (*apiv1.Page[apiv1.Transition], error) {
	return viewed(p, ctx, func(ctx context.Context) (*apiv1.Page[apiv1.Transition], error) { return p.s.queryHistory(ctx, v) })
}

func (p pages) AgentKeys(ctx context.Context, agentID string) ([]apiv1.AgentKey, error) {
	return viewed(p, ctx, func(ctx context.Context) ([]apiv1.AgentKey, error) {
		if ok, err := p.s.agentVisible(ctx, agentID); err != nil {
			return nil, err
		} else if !ok {
			return nil, errOutOfView("no agent " + agentID)
		}
		return p.s.db.AgentKeys(ctx, agentID)
	})
}

func (p pages) Trend(ctx context.Context, at time.Time, days int, v url.Values) (map[string][]int, error) {
	if who := dashboard.PrincipalFrom(ctx); who != nil && who.Selector != "" {
		// The fleet's trend is not the token's to see; its pages go without.
		return map[string][]int{}, nil
	}
	// A page does not wait on a first build: it says the trend is coming.
	return p.s.failingTrend(ctx, at, days, v["label"], trendPageWait)
}

func (p pages) Observations(ctx context.Context, index int64) (map[string]json.RawMessage, error) {
	ctx, err := p.view(ctx)
	if err != nil {
		return nil, err
	}
	e, err := p.s.db.Entry(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("log entry %d: %w", index, err)
	}
	if ok, err := p.s.agentVisible(ctx, e.AgentID); err != nil {
		return nil, err
	} else if !ok {
		return nil, errOutOfView(fmt.Sprintf("no log entry %d for this token", index))
	}
	if e.Kind != store.KindRecord {
		return nil, nil
	}
	env, err := dsse.Parse(e.Envelope)
	if err != nil {
		return nil, fmt.Errorf("log entry %d: %w", index, err)
	}
	rec, err := evidence.ParseRecord(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("log entry %d: %w", index, err)
	}
	out := map[string]json.RawMessage{}
	for _, r := range rec.Predicate.Results {
		out[string(rec.Asset())+" "+r.Check] = r.Observations
	}
	return out, nil
}

func (p pages) Record(ctx context.Context, index int64) (*dashboard.Record, error) {
	return viewed(p, ctx, func(ctx context.Context) (*dashboard.Record, error) { return p.s.recordView(ctx, index) })
}

func (p pages) Export(ctx context.Context, v url.Values) (string, func(io.Writer) error, error) {
	ctx, err := p.view(ctx)
	if err != nil {
		return "", nil, err
	}
	scope, err := p.s.exportScope(ctx, v)
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("annexa-%s-%s.tar.gz", scope.From.Format("20060102"), scope.To.Format("20060102"))
	return name, func(w io.Writer) error { return p.s.Export(ctx, w, scope) }, nil
}

func (p pages) SoA(ctx context.Context, v url.Values) (*apiv1.SoAResponse, error) {
	return viewed(p, ctx, func(ctx context.Context) (*apiv1.SoAResponse, error) { return p.s.querySoA(ctx, v) })
}

func (p pages) UpdateSoA(ctx context.Context, by *dashboard.Principal, control string, req apiv1.SoARequest) (*apiv1.SoAControl, error) {
	return p.s.updateSoA(ctx, control, req, by.TokenID)
}

func (p pages) SoAHistory(ctx context.Context, v url.Values) (*apiv1.Page[apiv1.SoAChange], error) {
	return p.s.querySoAHistory(ctx, v)
}

func (p pages) Scope(ctx context.Context) (*apiv1.Scope, error) { return p.s.queryScope(ctx, nil) }

func (p pages) Tokens(ctx context.Context) ([]apiv1.Token, error) { return p.s.db.Tokens(ctx) }

func (p pages) CreateToken(ctx context.Context, by *dashboard.Principal, req apiv1.TokenRequest) (*apiv1.TokenResponse, error) {
	return p.s.createToken(ctx, by.TokenID, req)
}

func (p pages) RevokeToken(ctx context.Context, by *dashboard.Principal, id string) error {
	err := p.s.db.RevokeToken(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no token %s", id)
	}
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	p.s.log.Info("token revoked", "id", id, "by", by.TokenID)
	return nil
}

func (p pages) RevokeAgent(ctx context.Context, by *dashboard.Principal, id string) error {
	_, _, err := p.s.revokeAgent(ctx, id, false)
	if err == nil {
		p.s.log.Info("agent revoked from the dashboard", "agent", id, "by", by.TokenID)
	}
	return err
}

func (p pages) Info() dashboard.Info {
	return dashboard.Info{Origin: p.s.keys.Log.Name(), ServerPub: p.s.keys.ServerPub()}
}

// recordView is a log entry with the checks an auditor's verifier makes
// on it, made here against the server's own records: the signature under
// the agent's key for that seq, the link to the agent's previous record,
// and inclusion in the tree of the latest signed checkpoint.
func (s *Server) recordView(ctx context.Context, index int64) (*dashboard.Record, error) {
	e, err := s.db.Entry(ctx, index)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("no log entry %d", index)
	}
	if err != nil {
		return nil, fmt.Errorf("log entry %d: %w", index, err)
	}
	if ok, err := s.agentVisible(ctx, e.AgentID); err != nil {
		return nil, err
	} else if !ok {
		return nil, errOutOfView(fmt.Sprintf("no log entry %d for this token", index))
	}
	v := &dashboard.Record{Index: e.Index, Kind: e.Kind, AgentID: e.AgentID, Seq: e.Seq, Digest: e.Digest, ReceivedAt: e.ReceivedAt}
	env, err := dsse.Parse(e.Envelope)
	if err != nil {
		return nil, fmt.Errorf("log entry %d: %w", index, err)
	}
	v.Envelope = indent(e.Envelope)
	v.Statement = indent(env.Payload)
	if len(env.Signatures) > 0 {
		v.KeyID = env.Signatures[0].KeyID
	}
	switch e.Kind {
	case store.KindRecord:
		s.checkRecord(ctx, e, env, v)
	case store.KindKeyEvent:
		if _, err := evidence.OpenKeyEvent(env, s.keys.EnrollPublic()); err != nil {
			v.Signature = dashboard.Verdict{Detail: fmt.Sprintf("not signed by this server's enrollment authority: %v", err)}
		} else {
			v.Signature = dashboard.Verdict{OK: true, Detail: "signed by the server's enrollment authority (the enroll key in server.pub)"}
		}
		v.Chain = dashboard.Verdict{OK: true, Detail: "key events are not chained: each is signed by the authority and placed by the log"}
	case store.KindSoAChange:
		if _, err := evidence.OpenSoAChange(env, s.keys.EnrollPublic()); err != nil {
			v.Signature = dashboard.Verdict{Detail: fmt.Sprintf("not signed by this server's enrollment authority: %v", err)}
		} else {
			v.Signature = dashboard.Verdict{OK: true, Detail: "a Statement of Applicability change, signed by the server's enrollment authority (the enroll key in server.pub)"}
		}
		v.Chain = dashboard.Verdict{OK: true, Detail: "SoA changes are not chained: each is signed by the authority and placed by the log"}
	}
	if err := s.proveInclusion(ctx, e, v); err != nil {
		return nil, err
	}
	return v, nil
}

func (s *Server) checkRecord(ctx context.Context, e *store.LogEntry, env *dsse.Envelope, v *dashboard.Record) {
	rec, err := evidence.ParseRecord(env.Payload)
	if err != nil {
		v.Signature = dashboard.Verdict{Detail: fmt.Sprintf("the payload is not a record: %v", err)}
		v.Chain = dashboard.Verdict{Detail: "no record to link"}
		return
	}
	p := &rec.Predicate
	v.Asset, v.Collector, v.Collected = string(rec.Asset()), p.Collector, p.CollectedAt
	keys, err := s.principalKeys(ctx, p.AgentID, rec.Attestation != nil)
	if err != nil {
		v.Signature = dashboard.Verdict{Detail: fmt.Sprintf("the agent's keys could not be read: %v", err)}
	} else if k, err := evidence.KeyAt(keys, evidence.Revocation{}, p.Seq); err != nil {
		v.Signature = dashboard.Verdict{Detail: fmt.Sprintf("no key of %s covers seq %d: %v", p.AgentID, p.Seq, err)}
	} else if err := evidence.VerifyRecord(env, ed25519.PublicKey(keys[k].Public)); err != nil {
		v.Signature = dashboard.Verdict{Detail: fmt.Sprintf("does not verify under key %s: %v", keys[k].KeyID, err)}
	} else {
		v.Signature = dashboard.Verdict{OK: true, Detail: fmt.Sprintf("ed25519 over the DSSE PAE, under key %s, %s's key from seq %d", keys[k].KeyID, p.AgentID, keys[k].From)}
	}
	v.Chain = s.checkLink(ctx, rec)
}

// principalKeys are an agent's keys, or a person's one key (for an
// attestation).
func (s *Server) principalKeys(ctx context.Context, id string, person bool) ([]store.AgentKey, error) {
	if !person {
		return s.db.AgentKeys(ctx, id)
	}
	p, err := s.db.Person(ctx, id)
	if err != nil {
		return nil, err
	}
	return []store.AgentKey{{AgentID: id, KeySpan: evidence.KeySpan{From: 1}, KeyID: p.KeyID, Public: p.PublicKey}}, nil
}

func (p pages) Attestations(ctx context.Context, v url.Values) (*apiv1.AttestationsResponse, error) {
	return p.s.queryAttestations(ctx, v)
}

func (p pages) Persons(ctx context.Context) ([]apiv1.Person, error) {
	return p.s.queryPersons(ctx, nil)
}

func (p pages) Frameworks(ctx context.Context) ([]apiv1.Framework, error) {
	return p.s.queryFrameworks(ctx, nil)
}

func (p pages) Framework(ctx context.Context, name string, v url.Values) (*apiv1.FrameworkState, error) {
	return viewed(p, ctx, func(ctx context.Context) (*apiv1.FrameworkState, error) { return p.s.queryFramework(ctx, name, v) })
}

// AttestedFile is a document an attestation cites, as uploaded.
func (p pages) AttestedFile(ctx context.Context, sha256 string) (string, string, []byte, error) {
	a, err := p.s.db.AttestationCiting(ctx, sha256)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", nil, notFound("no attested document with sha256 %s", sha256)
	}
	if err != nil {
		return "", "", nil, err
	}
	data, err := p.s.db.AttestedFile(ctx, sha256)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", nil, notFound("%s was attested but never uploaded", a.FileName)
	}
	return a.FileName, a.MediaType, data, err
}

// checkLink checks a record's prev: the digest of the agent's record at
// seq-1, of its enrollment for seq 1, or, after a gap record, the digest
// the gap record says the last dropped record had.
func (s *Server) checkLink(ctx context.Context, rec *evidence.Record) dashboard.Verdict {
	p := &rec.Predicate
	var want, what string
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if p.Seq == 1 {
			e, err := tx.FirstEntry(ctx, p.AgentID, store.KindKeyEvent)
			if err != nil {
				return err
			}
			want, what = e.Digest, fmt.Sprintf("the agent's enrollment (log entry %d)", e.Index)
			return nil
		}
		e, err := tx.RecordBefore(ctx, p.AgentID, p.Seq)
		if err != nil {
			return err
		}
		if e.Seq == p.Seq-1 {
			want, what = e.Digest, fmt.Sprintf("record seq %d (log entry %d)", e.Seq, e.Index)
			return nil
		}
		env, err := dsse.Parse(e.Envelope)
		if err != nil {
			return err
		}
		prev, err := evidence.ParseRecord(env.Payload)
		if err != nil {
			return err
		}
		if g := prev.Predicate.Gap; g != nil && g.To == p.Seq-1 {
			want, what = g.LastDigest, fmt.Sprintf("the last record dropped before gap record seq %d (log entry %d)", e.Seq, e.Index)
			return nil
		}
		return fmt.Errorf("%w: seqs %d to %d are not in the log and no gap record explains them", store.ErrNotFound, e.Seq+1, p.Seq-1)
	})
	if err != nil {
		return dashboard.Verdict{Detail: fmt.Sprintf("the record before seq %d: %v", p.Seq, err)}
	}
	if p.Prev != want {
		return dashboard.Verdict{Detail: fmt.Sprintf("prev %s is not the digest of %s (%s)", p.Prev, what, want)}
	}
	return dashboard.Verdict{OK: true, Detail: "prev is the digest of " + what}
}

// proveInclusion proves e is in the tree of the latest checkpoint, and
// checks the proof against the checkpoint's signed root.
func (s *Server) proveInclusion(ctx context.Context, e *store.LogEntry, v *dashboard.Record) error {
	size, raw, err := s.db.Checkpoint(ctx, -1)
	if err != nil {
		return fmt.Errorf("latest checkpoint: %w", err)
	}
	v.Checkpoint, v.TreeSize = string(raw), size
	ver, err := note.NewVerifier(s.keys.LogVerifier)
	if err != nil {
		return err
	}
	cp, err := checkpoint.Open(raw, ver)
	if err != nil {
		v.Inclusion = dashboard.Verdict{Detail: fmt.Sprintf("the latest checkpoint does not verify: %v", err)}
		return nil
	}
	proof, err := tlog.ProveRecord(cp.Size, e.Index, s.db.HashReader(ctx))
	if err != nil {
		return fmt.Errorf("inclusion proof of %d in %d: %w", e.Index, cp.Size, err)
	}
	v.Proof = hashStrings(proof)
	if err := tlog.CheckRecord(proof, cp.Size, cp.Hash, e.Index, tlog.RecordHash(e.Envelope)); err != nil {
		v.Inclusion = dashboard.Verdict{Detail: fmt.Sprintf("the proof does not lead to the checkpoint's root: %v", err)}
		return nil
	}
	v.Inclusion = dashboard.Verdict{OK: true, Detail: fmt.Sprintf("the entry's hash and %d proof hashes give the root signed in the checkpoint of size %d", len(proof), cp.Size)}
	return nil
}

func indent(raw []byte) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// Dashboard is the web interface's handler on this server's routes.
func (s *Server) dashboard(insecure bool) (*dashboard.Dashboard, error) {
	return dashboard.New(pages{s}, dashboard.Options{Logger: s.log, Now: s.now, Insecure: insecure})
}
