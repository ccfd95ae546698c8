package bundle

// This file checks evidence.jsonl, the period's entries: each appended to
// the Merkle frontier, parsed, keyed and signature-checked in parallel
// batches, then tracked per agent chain in log order.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/internal/parallel"
)

// item is one line of evidence.jsonl on its way through the pipeline.
type item struct {
	index int64
	raw   []byte
	env   *dsse.Envelope
	rec   *evidence.Record
	isKey bool
	// soa is a Statement of Applicability change, signed by the authority.
	soa *evidence.SoAChange
	key *dsse.PreparedKey
	err error
	// errStep is the report step err belongs to ("signatures" when empty).
	errStep string
}

// evidence streams evidence.jsonl in batches: parse in parallel, assign keys
// in log order, verify signatures in parallel (one by one, never batch
// verification), then track chains in order.
func (v *verifier) evidence(r io.Reader) {
	if v.frontier == nil {
		v.fail(where("proof", FileEvidence), "no verified start frontier: the entries cannot be checked against the checkpoints")
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
		v.fail(where("root", FileEvidence), "the %d entries appended to the start tree give size %d and a root other than the end checkpoint's (size %d): entries were dropped, added, altered or reordered", index-v.startSize, index, v.endSize)
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
		if env.PayloadType == evidence.SoAChangePayloadType {
			it.soa, it.err = evidence.OpenSoAChange(env, v.keys.Enroll)
			if it.err != nil {
				it.err = fmt.Errorf("not a Statement of Applicability change signed by the pinned enrollment authority: %w", it.err)
			}
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
		for i := range items {
			v.checkSubject(&items[i])
		}
		v.tail(items)
		return
	}
	for i := range items[:firstKey] {
		v.checkSubject(&items[i])
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
		it.err, it.key, it.errStep = nil, nil, ""
		v.assignKey(it)
		v.checkSubject(it)
		if it.err == nil {
			again = append(again, i)
		}
	}
	parallel.For(len(again), func(j int) { v.verifySig(&items[again[j]]) })
	v.tail(items)
}

// checkSubject applies the rule of which assets an agent may report on, as
// the grants stand at the record's place in the log: its own host, and the
// external assets granted to it.
func (v *verifier) checkSubject(it *item) {
	if it.err != nil || it.rec == nil {
		return
	}
	a := v.ks.Agent(it.rec.Predicate.AgentID)
	switch {
	case a == nil:
	case it.rec.Attestation != nil && a.Person == nil:
		it.err, it.errStep = fmt.Errorf("attestation signed by agent %s: only a registered person's key attests", a.AgentID), "subjects"
	case it.rec.Attestation == nil && a.Person != nil:
		it.err, it.errStep = fmt.Errorf("evidence record signed by person %s (%s): a person's key signs attestations only", a.AgentID, a.Person.Name), "subjects"
	case it.rec.Attestation == nil && !a.MayReport(it.rec.Asset()):
		it.err, it.errStep = fmt.Errorf("record about %s, which agent %s holds no grant for", it.rec.Asset(), a.AgentID), "subjects"
	}
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
	case err != nil && a.Person != nil:
		it.err = fmt.Errorf("attestation by %s (%s), whose key was not valid at seq %d: %w", a.Person.Name, a.AgentID, p.Seq, err)
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
			step := "signatures"
			if it.errStep != "" {
				step = it.errStep
			}
			v.fail(where(step, FileEvidence).entry(it.index).of(agent, seq), "%v", it.err)
			continue
		}
		if it.isKey {
			continue
		}
		if it.soa != nil {
			v.r.SoAChanges++
			if v.soaChanges == nil {
				v.soaChanges = map[string]*evidence.SoAChange{}
			}
			v.soaChanges[it.soa.Control] = it.soa // the last one of the period stands
			continue
		}
		v.r.Records++
		if it.rec.Attestation != nil {
			v.r.Attestations++
			v.cite(it.index, it.rec)
		}
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
