package bundle

// This file checks the small files of a bundle: the mapping, the signed
// checkpoints, the Merkle proof and frontier, the key events before the
// period and the boundary records.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/catalog"
	"github.com/annexa-dev/annexa/evidence/checkpoint"
	"github.com/annexa-dev/annexa/evidence/dsse"
)

// unexpectedFile says why a file cannot stand where it does: the verifier
// reads a bundle as one stream, in the order the server wrote it, so a
// repacked bundle must keep that order.
func unexpectedFile(name string, next int) string {
	expected := "nothing more"
	if next < len(Order) {
		expected = Order[next]
	}
	for i, o := range Order {
		if o == name && i < next {
			return fmt.Sprintf("out of order: a bundle's files must come in the order they were exported (%s); %s was expected here. Repack in that order, or verify the bundle as exported", strings.Join(Order, ", "), expected)
		}
	}
	return fmt.Sprintf("not a file of an Annexa bundle (they are %s, in that order); %s was expected here", strings.Join(Order, ", "), expected)
}

func (v *verifier) small(name string, b []byte) {
	switch name {
	case FileMapping:
		m, err := catalog.LoadMapping(bytes.NewReader(b), v.cat)
		if err != nil {
			v.fail(where("mapping", name), "%v", err)
			return
		}
		v.mapping = m
		v.builder = NewBuilder(Scope{}, m)
	case FileCheckpointStart, FileCheckpointEnd, FileCheckpointLatest:
		cp, err := checkpoint.Open(b, v.keys.Log)
		if err != nil {
			v.fail(where("checkpoints", name), "not signed by the pinned log key: %v", err)
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
			v.fail(where("proof", name), "%v", err)
			return
		}
		v.proof(&p)
	case FileKeyEvents:
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var l Leaf
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				v.fail(where("key events", name), "%v", err)
				continue
			}
			if !v.included(l, v.startSize, v.start) {
				v.fail(where("key events", name).entry(l.Index), "inclusion proof does not verify in the start tree")
				continue
			}
			v.keyEvent(name, l.Index, l.Envelope)
		}
	case FileBoundaries:
		var bs []Boundary
		if err := json.Unmarshal(b, &bs); err != nil {
			v.fail(where("boundaries", name), "%v", err)
			return
		}
		for _, bd := range bs {
			if bd.Before != nil && !v.included(*bd.Before, v.startSize, v.start) {
				v.fail(where("boundaries", name).entry(bd.Before.Index).of(bd.AgentID, 0), "record before the period: inclusion proof does not verify in the start tree")
				continue
			}
			if bd.After != nil && !v.included(*bd.After, v.latestN, v.latest) {
				v.fail(where("boundaries", name).entry(bd.After.Index).of(bd.AgentID, 0), "record after the period: inclusion proof does not verify in the latest tree")
				continue
			}
			v.boundaries[bd.AgentID] = bd
		}
	case FileKeys:
		if err := json.Unmarshal(b, &v.keysFile); err != nil {
			v.fail(where("keys", name), "%v", err)
		}
	case FileAttestations:
		v.priorAttestations(b)
	case FileSummary:
		v.summary = b
	case FileOSCAL:
		v.oscal = b
	case FileSoA:
		var soa SoA
		if err := json.Unmarshal(b, &soa); err != nil {
			v.fail(where("statement of applicability", name), "%v", err)
			return
		}
		v.soa = &soa
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
		v.fail(where("proof", FileProof), "no end checkpoint before the proof")
		return
	}
	if p.Start != v.startSize || p.End != v.endSize || (p.Start > 0 && !v.haveStart) {
		v.fail(where("proof", FileProof), "proof is for sizes %d→%d, the checkpoints for %d→%d", p.Start, p.End, v.startSize, v.endSize)
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
		v.fail(where("proof", FileProof), "frontier malformed: %v", err)
		return
	}
	if p.Start > 0 {
		if root, _ := f.Root(); root != v.start {
			v.fail(where("proof", FileProof), "the start frontier does not hash to the start checkpoint's root")
			return
		}
		if p.Start < p.End {
			cp, ok := parse(p.Consistency)
			if !ok || tlog.CheckTree(cp, p.End, v.end, p.Start, v.start) != nil {
				v.fail(where("proof", FileProof), "consistency proof from size %d to %d does not verify: the end tree does not extend the start tree", p.Start, p.End)
			}
		}
	}
	v.frontier = f
}

func (v *verifier) keyEvent(file string, index int64, raw []byte) {
	env, err := dsse.Parse(raw)
	if err != nil {
		v.fail(where("key events", file).entry(index), "%v", err)
		return
	}
	ev, err := evidence.OpenKeyEvent(env, v.keys.Enroll)
	if err != nil {
		v.fail(where("key events", file).entry(index), "not signed by the pinned enrollment authority: %v", err)
		return
	}
	if err := v.ks.Apply(ev, env.Payload); err != nil {
		v.fail(where("key events", file).entry(index).of(ev.AgentID, 0), "%v", err)
		return
	}
	if c := v.checkers[ev.AgentID]; c != nil && ev.Kind == evidence.Rotate {
		c.Rotate(ev.FromSeq, ev.PublicKey)
	}
}
