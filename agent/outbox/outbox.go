// Package outbox is the agent's durable queue of signed records awaiting
// shipment. A record counts as collected only once it is here, fsynced.
//
// On disk it is a directory of segment files, seg-<first seq>.log, each a
// run of frames:
//
//	len uint32 | crc32c uint32 | seq uint64 | digest [32]byte |
//	last uint64 | lastDigest [32]byte | envelope [len]byte
//
// (big-endian; the CRC covers everything after it). last/lastDigest are
// where the chain stands after the record: the record itself, or for a gap
// record the end of the range it explains. A kill -9 in the
// middle of an append leaves a torn last frame, which Open detects and cuts
// off: that record was never durable, so nothing acknowledged is lost and
// the chain continues from the last durable record. The file "acked" holds
// the last seq the server acknowledged and its digest.
//
// When the outbox outgrows its limit it drops its oldest unshipped segments
// and writes, in their place, a signed gap record naming the dropped range,
// so the loss is explained in the chain, never silent.
package outbox

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/annexa-dev/annexa/internal/atomicfile"
)

const (
	headerSize = 4 + 4 + 8 + 32 + 8 + 32
	maxFrame   = 8 << 20
	// SegmentSize is where a segment file is closed and the next begun (or
	// at an eighth of the limit, if smaller, so a small outbox still has
	// old segments to drop).
	SegmentSize = 1 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Item is one record in the outbox.
type Item struct {
	Seq    uint64
	Digest string
	Raw    []byte
	// Last and LastDigest are where the chain stands after this record: a
	// gap record covers through Last, whose digest is LastDigest. Zero
	// means the record itself.
	Last       uint64
	LastDigest string
}

func (it Item) end() (uint64, string) {
	if it.Last == 0 {
		return it.Seq, it.Digest
	}
	return it.Last, it.LastDigest
}

// Mark is a position in the chain: a seq and the digest of its record.
type Mark struct {
	Seq    uint64 `json:"seq"`
	Digest string `json:"digest"`
}

// GapFunc signs the gap record for dropped seqs from..to: prev is the
// digest of record from-1 (empty when from-1 is the enrollment: the genesis),
// last that of record to, and dropped yields the records being dropped (a
// rotation among them must be announced again).
type GapFunc func(from, to uint64, prev, last string, dropped iter.Seq[Item]) (Item, error)

// Outbox is an open outbox. It is safe for concurrent use.
type Outbox struct {
	segMax int64
	mu     sync.Mutex
	dir    string
	limit  int64
	gap    GapFunc
	segs   []*segment
	active *os.File
	acked  Mark
	// inflight is the highest seq handed to the shipper and not yet
	// acknowledged: such records are never dropped, since the server may
	// already hold them.
	inflight uint64
	// Torn is what Open cut off a torn tail, in bytes (0: clean).
	Torn int64
}

type segment struct {
	path  string
	first uint64
	last  uint64
	lastD string
	size  int64
	count int
}

// Open opens (creating) the outbox in dir. limit bounds its size in bytes
// (0: unbounded); gap signs gap records when the limit forces drops.
func Open(dir string, limit int64, gap GapFunc) (*Outbox, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return open(dir, limit, gap, false)
}

// Inspect opens the outbox read-only, beside the process that owns it: a
// torn tail is left alone (it may be a frame being written right now), and
// nothing is appended, acknowledged or removed.
func Inspect(dir string) (*Outbox, error) { return open(dir, 0, nil, true) }

func open(dir string, limit int64, gap GapFunc, readOnly bool) (*Outbox, error) {
	o := &Outbox{dir: dir, limit: limit, gap: gap, segMax: SegmentSize}
	if limit > 0 && limit/8 < o.segMax {
		o.segMax = max(limit/8, 4096)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "acked")); err == nil {
		if err := json.Unmarshal(b, &o.acked); err != nil {
			return nil, fmt.Errorf("outbox: acked mark: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for i, name := range names {
		seg, torn, err := scan(name)
		if err != nil {
			return nil, fmt.Errorf("outbox: %s: %w", filepath.Base(name), err)
		}
		if torn > 0 && readOnly {
			o.Torn = torn
		} else if torn > 0 {
			// Only a crash mid-append tears a frame, and only the newest
			// segment is appended to; anywhere else it is damage, and cutting
			// it off would drop records silently.
			if i != len(names)-1 {
				return nil, fmt.Errorf("outbox: %s is damaged %d bytes before its end, and it is not the newest segment: move it aside to continue (its records will show as a gap)", filepath.Base(name), torn)
			}
			if err := os.Truncate(name, seg.size); err != nil {
				return nil, fmt.Errorf("outbox: cutting torn tail: %w", err)
			}
			o.Torn = torn
		}
		if seg.count == 0 {
			if !readOnly {
				_ = os.Remove(name)
			}
			continue
		}
		o.segs = append(o.segs, seg)
	}
	// Keep appending to the newest segment.
	if n := len(o.segs); n > 0 && o.segs[n-1].size < o.segMax && !readOnly {
		f, err := os.OpenFile(o.segs[n-1].path, os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		o.active = f
	}
	return o, nil
}

// scan reads a segment's frames and returns how many bytes after the last
// good one are torn.
func scan(path string) (*segment, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	first, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "seg-"), ".log"), 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("bad segment name")
	}
	seg := &segment{path: path, first: first}
	r := bufio.NewReader(f)
	for {
		it, n, err := readFrame(r)
		if errors.Is(err, io.EOF) {
			return seg, 0, nil
		}
		if err != nil {
			return seg, st.Size() - seg.size, nil
		}
		seg.size += n
		seg.count++
		seg.last, seg.lastD = it.end()
	}
}

var errTorn = errors.New("torn frame")

func readFrame(r io.Reader) (Item, int64, error) {
	var h [headerSize]byte
	n, err := io.ReadFull(r, h[:])
	if err == io.EOF {
		return Item{}, 0, io.EOF
	}
	if err != nil {
		return Item{}, int64(n), errTorn
	}
	size := binary.BigEndian.Uint32(h[0:4])
	if size == 0 || size > maxFrame {
		return Item{}, 0, errTorn
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return Item{}, 0, errTorn
	}
	c := crc32.Update(crc32.Checksum(h[8:], crcTable), crcTable, body)
	if c != binary.BigEndian.Uint32(h[4:8]) {
		return Item{}, 0, errTorn
	}
	it := Item{Seq: binary.BigEndian.Uint64(h[8:16]), Digest: hex.EncodeToString(h[16:48]), Raw: body,
		Last: binary.BigEndian.Uint64(h[48:56]), LastDigest: hex.EncodeToString(h[56:88])}
	if it.Last == it.Seq && it.LastDigest == it.Digest {
		it.Last, it.LastDigest = 0, ""
	}
	return it, int64(headerSize) + int64(size), nil
}

func frame(it Item) ([]byte, error) {
	d, err := hex.DecodeString(it.Digest)
	if err != nil || len(d) != 32 {
		return nil, fmt.Errorf("outbox: bad digest %q", it.Digest)
	}
	if len(it.Raw) == 0 || len(it.Raw) > maxFrame {
		return nil, fmt.Errorf("outbox: record of %d bytes", len(it.Raw))
	}
	last, lastD := it.end()
	ld, err := hex.DecodeString(lastD)
	if err != nil || len(ld) != 32 || last < it.Seq {
		return nil, fmt.Errorf("outbox: bad chain end %d %q", last, lastD)
	}
	b := make([]byte, headerSize+len(it.Raw))
	binary.BigEndian.PutUint32(b[0:4], uint32(len(it.Raw)))
	binary.BigEndian.PutUint64(b[8:16], it.Seq)
	copy(b[16:48], d)
	binary.BigEndian.PutUint64(b[48:56], last)
	copy(b[56:88], ld)
	copy(b[headerSize:], it.Raw)
	binary.BigEndian.PutUint32(b[4:8], crc32.Checksum(b[8:], crcTable))
	return b, nil
}

// Head is the newest durable record, or the acked mark if the outbox holds
// none; ok is false for an outbox that never held a record.
func (o *Outbox) Head() (Mark, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var m Mark
	for _, s := range o.segs {
		if s.last > m.Seq {
			m = Mark{Seq: s.last, Digest: s.lastD}
		}
	}
	if o.acked.Seq > m.Seq {
		m = o.acked
	}
	return m, m.Seq > 0
}

// Acked is the last acknowledged position.
func (o *Outbox) Acked() Mark {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.acked
}

// Append writes a record and fsyncs it. On error (a full disk) nothing of it
// remains and the outbox is as before.
func (o *Outbox) Append(it Item) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.append(it, false); err != nil {
		return err
	}
	return o.enforceLimit()
}

func (o *Outbox) append(it Item, ownSegment bool) error {
	b, err := frame(it)
	if err != nil {
		return err
	}
	var seg *segment
	if !ownSegment && len(o.segs) > 0 {
		seg = o.segs[len(o.segs)-1]
		if seg.size+int64(len(b)) > o.segMax || o.active == nil || seg.path != o.active.Name() {
			seg = nil
		}
	}
	if seg == nil {
		path := filepath.Join(o.dir, fmt.Sprintf("seg-%020d.log", it.Seq))
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		if err := atomicfile.SyncDir(o.dir); err != nil {
			f.Close()
			os.Remove(path)
			return err
		}
		seg = &segment{path: path, first: it.Seq}
		if ownSegment {
			return o.writeOwn(f, seg, b, it)
		}
		if o.active != nil {
			o.active.Close()
		}
		o.active = f
		o.segs = append(o.segs, seg)
	}
	if _, err := o.active.Write(b); err != nil {
		_ = o.active.Truncate(seg.size)
		return fmt.Errorf("outbox: append seq %d: %w", it.Seq, err)
	}
	if err := o.active.Sync(); err != nil {
		_ = o.active.Truncate(seg.size)
		return fmt.Errorf("outbox: fsync seq %d: %w", it.Seq, err)
	}
	seg.size += int64(len(b))
	seg.count++
	seg.last, seg.lastD = it.end()
	return nil
}

// writeOwn writes a single record into its own segment (a gap record, which
// sorts before the newer segments by its seq).
func (o *Outbox) writeOwn(f *os.File, seg *segment, b []byte, it Item) error {
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		os.Remove(seg.path)
		return fmt.Errorf("outbox: gap record: %w", err)
	}
	if err := f.Sync(); err != nil {
		os.Remove(seg.path)
		return fmt.Errorf("outbox: gap record: %w", err)
	}
	seg.size, seg.count = int64(len(b)), 1
	seg.last, seg.lastD = it.end()
	o.segs = append(o.segs, seg)
	sort.Slice(o.segs, func(i, j int) bool { return o.segs[i].first < o.segs[j].first })
	return nil
}

func (o *Outbox) total() int64 {
	var n int64
	for _, s := range o.segs {
		n += s.size
	}
	return n
}

// enforceLimit drops the oldest unshipped segments until the outbox fits,
// and writes the gap record in their place. It never drops the segment
// being written, nor records handed to the shipper: the server may hold
// those already.
func (o *Outbox) enforceLimit() error {
	if o.limit <= 0 || o.total() <= o.limit || len(o.segs) < 2 {
		return nil
	}
	floor := max(o.acked.Seq, o.inflight)
	start := -1
	for i, s := range o.segs[:len(o.segs)-1] {
		if s.first > floor {
			start = i
			break
		}
		if s.last <= o.acked.Seq {
			// Wholly acknowledged: dropping it loses nothing.
			defer func() { _ = removeAll([]*segment{s}) }()
		}
	}
	if start < 0 {
		return nil // everything droppable is in flight; over the limit until it is acknowledged
	}
	prev := o.acked.Digest
	if start > 0 && o.segs[start-1].last == o.segs[start].first-1 {
		prev = o.segs[start-1].lastD
	}
	end := start
	var dropped int64
	for end < len(o.segs)-1 && o.total()-dropped > o.limit {
		dropped += o.segs[end].size
		end++
	}
	if end == start {
		return nil
	}
	from, to, last := o.segs[start].first, o.segs[end-1].last, o.segs[end-1].lastD
	if o.gap == nil {
		return fmt.Errorf("outbox over its limit and no gap signer")
	}
	victims := append([]*segment(nil), o.segs[start:end]...)
	g, err := o.gap(from, to, prev, last, records(victims))
	if err != nil {
		return fmt.Errorf("outbox: signing gap record: %w", err)
	}
	o.segs = append(o.segs[:start:start], o.segs[end:]...)
	if err := removeAll(victims); err != nil {
		return err
	}
	return o.append(g, true)
}

// records yields the records of segs, in order, as far as they read.
func records(segs []*segment) iter.Seq[Item] {
	return func(yield func(Item) bool) {
		for _, s := range segs {
			f, err := os.Open(s.path)
			if err != nil {
				continue
			}
			r := bufio.NewReader(f)
			for {
				it, _, err := readFrame(r)
				if err != nil {
					break
				}
				if !yield(it) {
					f.Close()
					return
				}
			}
			f.Close()
		}
	}
}

func removeAll(segs []*segment) error {
	for _, s := range segs {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("outbox: %w", err)
		}
	}
	return nil
}

// Pending returns unacknowledged records in seq order, at most n and about
// maxBytes.
func (o *Outbox) Pending(n int, maxBytes int64) ([]Item, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	segs := append([]*segment(nil), o.segs...)
	acked := o.acked.Seq
	var out []Item
	defer func() {
		if len(out) > 0 {
			o.inflight = out[len(out)-1].Seq
		}
	}()
	var bytes int64
	for _, s := range segs {
		if s.last <= acked {
			continue
		}
		f, err := os.Open(s.path)
		if err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		r := bufio.NewReader(io.LimitReader(f, s.size))
		for {
			it, _, err := readFrame(r)
			if err != nil {
				break
			}
			if it.Seq <= acked {
				continue
			}
			if len(out) >= n || (len(out) > 0 && bytes+int64(len(it.Raw)) > maxBytes) {
				f.Close()
				return out, nil
			}
			out = append(out, it)
			bytes += int64(len(it.Raw))
		}
		f.Close()
	}
	return out, nil
}

// MarkAt returns the chain position at seq (the digest the record after it
// links to), if the outbox still knows it: a record's own digest, or the
// last dropped digest of a gap record covering through seq.
func (o *Outbox) MarkAt(seq uint64) (Mark, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if seq == o.acked.Seq {
		return o.acked, true
	}
	for _, s := range o.segs {
		if seq < s.first || seq > s.last {
			continue
		}
		f, err := os.Open(s.path)
		if err != nil {
			return Mark{}, false
		}
		r := bufio.NewReader(io.LimitReader(f, s.size))
		for {
			it, _, err := readFrame(r)
			if err != nil {
				break
			}
			if last, d := it.end(); last == seq {
				f.Close()
				return Mark{Seq: seq, Digest: d}, true
			}
		}
		f.Close()
	}
	return Mark{}, false
}

// Find returns the record at seq, if the outbox still has it.
func (o *Outbox) Find(seq uint64) (Item, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.segs {
		if seq < s.first || seq > s.last {
			continue
		}
		f, err := os.Open(s.path)
		if err != nil {
			return Item{}, false
		}
		r := bufio.NewReader(io.LimitReader(f, s.size))
		for {
			it, _, err := readFrame(r)
			if err != nil {
				break
			}
			if it.Seq == seq {
				f.Close()
				return it, true
			}
		}
		f.Close()
	}
	return Item{}, false
}

// Insert stores a record in a segment of its own, placed by its seq: a
// gap record written for a hole the server reported, behind the head.
func (o *Outbox) Insert(it Item) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.append(it, true)
}

// Release says the records handed out by Pending were not shipped after
// all: they may be dropped again if the outbox must.
func (o *Outbox) Release() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inflight = 0
}

// Ack records that everything up to and including m.Seq is in the server's
// log, durably, and removes segments that hold nothing newer (keeping the
// newest, which holds the chain's head).
func (o *Outbox) Ack(m Mark) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if m.Seq <= o.acked.Seq {
		return nil
	}
	b, _ := json.Marshal(m)
	if err := atomicfile.Write(filepath.Join(o.dir, "acked"), b, 0o600); err != nil {
		return fmt.Errorf("outbox: ack: %w", err)
	}
	o.acked = m
	o.inflight = 0
	keep := o.segs[:0]
	for i, s := range o.segs {
		if s.last <= m.Seq && i < len(o.segs)-1 {
			_ = os.Remove(s.path)
			continue
		}
		keep = append(keep, s)
	}
	o.segs = keep
	return nil
}

// Depth is the number and size of unacknowledged records.
func (o *Outbox) Depth() (records int, bytes int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.segs {
		if s.last > o.acked.Seq {
			if s.first > o.acked.Seq {
				records += s.count
			} else {
				records += int(s.last - o.acked.Seq) // close enough inside a partly acked segment
			}
			bytes += s.size
		}
	}
	return records, bytes
}

// Close closes the segment being written.
func (o *Outbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.active != nil {
		err := o.active.Close()
		o.active = nil
		return err
	}
	return nil
}
