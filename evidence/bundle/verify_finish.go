package bundle

// This file finishes a verification: the chains and their cut tails,
// keys.json, the signed manifest, and the summary and OSCAL document
// recomputed from the verified records.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/dsse"
)

func (v *verifier) finish(manifestRaw []byte) {
	v.chains()
	v.keysJSON()
	v.attestedFiles()
	m, ok := v.manifest(manifestRaw)
	if !ok {
		return
	}
	// Summary and OSCAL, recomputed from the verified records.
	v.recompute(m)
}

// chains finishes each agent's chain, including the cut-tail check against
// its first record after the period.
func (v *verifier) chains() {
	agents := make([]string, 0, len(v.checkers))
	for a := range v.checkers {
		agents = append(agents, a)
	}
	sort.Strings(agents)
	v.r.Agents = len(agents)
	for _, a := range agents {
		rep := v.checkers[a].Finish()
		for _, p := range rep.Problems {
			v.fail(where("chains", FileEvidence).entry(int64(p.Index)).of(a, p.Seq), "%s: %s", p.Kind, p.Detail)
		}
		bd := v.boundaries[a]
		if bd.After == nil {
			if ak := v.ks.Agent(a); ak != nil && !ak.Revoked {
				who := "agent " + a
				if ak.Person != nil {
					who = "person " + a + " (" + ak.Person.Name + ")"
				}
				v.r.Notes = append(v.r.Notes, fmt.Sprintf("%s has no record after the period yet: a cut tail cannot be ruled out", who))
			}
			continue
		}
		env, err := dsse.Parse(bd.After.Envelope)
		var rec *evidence.Record
		if err == nil {
			rec, err = evidence.ParseRecord(env.Payload)
		}
		if err != nil || rec.Predicate.AgentID != a {
			v.fail(where("chains", FileBoundaries).entry(bd.After.Index).of(a, 0), "the record after the period is not this agent's record")
			continue
		}
		if rec.Predicate.Seq != rep.Head.Seq+1 || rec.Predicate.Prev != rep.Head.Digest {
			v.fail(where("chains", FileBoundaries).entry(bd.After.Index).of(a, rec.Predicate.Seq), "cut tail: the first record after the period (seq %d) does not follow the last one in it (seq %d): records at the end of the period are missing", rec.Predicate.Seq, rep.Head.Seq)
		}
	}
}

// keysJSON checks that keys.json says what the log's key events say.
func (v *verifier) keysJSON() {
	want := map[string]AgentKeys{}
	for _, a := range v.ks.All() {
		want[a.AgentID] = a
	}
	for _, got := range v.keysFile {
		w, ok := want[got.AgentID]
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(w)
		if !ok || !bytes.Equal(gb, wb) {
			v.fail(where("keys", FileKeys).of(got.AgentID, 0), "keys.json differs from what the log's key events say for this agent")
		}
		delete(want, got.AgentID)
	}
	for id := range want {
		v.fail(where("keys", FileKeys).of(id, 0), "agent missing from keys.json")
	}
}

// manifest checks the manifest's signature under the pinned log key, each
// file's hash, and its sizes and counts against what was verified.
func (v *verifier) manifest(manifestRaw []byte) (*Manifest, bool) {
	env, err := dsse.Parse(manifestRaw)
	var m Manifest
	if err == nil {
		ver := dsse.Verifier{Keys: []dsse.TrustedKey{{ID: dsse.KeyID(v.keys.LogPub), Key: v.keys.LogPub}}, PayloadTypes: []string{ManifestPayloadType}}
		if _, err = ver.Verify(env); err == nil {
			err = json.Unmarshal(env.Payload, &m)
		}
	}
	if err != nil {
		v.fail(where("manifest", FileManifest), "not signed by the pinned log key: %v", err)
		return nil, false
	}
	v.r.Scope = &m.Scope
	for name, h := range m.Files {
		if got, ok := v.hashes[name]; !ok {
			v.fail(where("manifest", name), "listed in the manifest but not in the bundle")
		} else if got != h {
			v.fail(where("manifest", name), "sha256 %s… differs from the manifest's %s…", got[:12], h[:min(12, len(h))])
		}
	}
	for name := range v.hashes {
		if _, ok := m.Files[name]; !ok && name != FileManifest {
			v.fail(where("manifest", name), "in the bundle but not in the manifest")
		}
	}
	if m.Origin != v.keys.Log.Name() || m.StartSize != v.startSize || m.EndSize != v.endSize || m.LatestSize != v.latestN {
		v.fail(where("manifest", FileManifest), "origin or sizes differ from the checkpoints")
	}
	if m.Counts.Entries != v.r.Entries {
		v.fail(where("manifest", FileManifest), "manifest counts %d entries, the bundle holds %d", m.Counts.Entries, v.r.Entries)
	}
	return &m, true
}

func (v *verifier) recompute(m *Manifest) {
	if v.builder == nil {
		v.fail(where("summary", FileSummary), "no valid mapping: the summary cannot be recomputed")
		return
	}
	if err := CheckScope(m.Scope); err != nil {
		v.fail(where("summary", FileManifest), "%v", err)
		return
	}
	v.builder.scope = m.Scope
	for _, a := range v.ks.All() {
		v.builder.Enrolled(a.AgentID, a.Labels)
		if a.Person != nil {
			v.builder.Person(a.AgentID, a.Person)
		}
	}
	s, err := v.builder.Summary()
	if err != nil {
		v.fail(where("summary", FileSummary), "%v", err)
		return
	}
	if want := EncodeSummary(s); !bytes.Equal(want, v.summary) {
		v.fail(where("summary", FileSummary), "differs from the summary recomputed from the verified records%s", firstDiff(v.summary, want))
	}
	want, err := OSCAL(s, m.CreatedAt, m.Origin)
	if err != nil || !bytes.Equal(want, v.oscal) {
		v.fail(where("summary", FileOSCAL), "differs from the OSCAL document recomputed from the verified records%s", firstDiff(v.oscal, want))
	}
	v.soaLogged()
	if v.soa != nil {
		// The Statement of Applicability is a claim: malformed is a
		// problem, disagreeing with the evidence is reported.
		problems, contradictions := CheckSoA(v.soa, v.cat, v.mapping, s)
		for _, p := range problems {
			v.fail(where("statement of applicability", FileSoA), "%s", p)
		}
		for _, c := range contradictions {
			v.r.Notes = append(v.r.Notes, "statement of applicability: "+c)
		}
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

// soaLogged checks soa.json against the SoA changes the period's entries
// log: a control changed in the period stands in soa.json as its last
// change left it. (Changes after the period's end are not in the bundle;
// soa.json is as of the end.)
func (v *verifier) soaLogged() {
	if len(v.soaChanges) == 0 {
		return
	}
	if v.soa == nil {
		v.fail(where("statement of applicability", FileSoA), "the period logs %d changes of the Statement of Applicability, and the bundle has no soa.json", len(v.soaChanges))
		return
	}
	lines := map[string]SoALine{}
	for _, l := range v.soa.Controls {
		lines[l.Control] = l
	}
	ids := make([]string, 0, len(v.soaChanges))
	for id := range v.soaChanges {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c, l := v.soaChanges[id], lines[id]
		if !l.Assessed || l.Applicable != c.Applicable || l.Status != c.Status || l.Owner != c.Owner || l.Justification != c.Justification {
			v.fail(where("statement of applicability", FileSoA), "%s differs from its last change logged in the period (%s by %s): the log says applicable=%v status=%q owner=%q",
				id, c.Time.Format(time.RFC3339), c.By, c.Applicable, c.Status, c.Owner)
		}
	}
}
