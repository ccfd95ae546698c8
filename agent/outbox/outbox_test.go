package outbox

import (
	"crypto/ed25519"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/evidence/dsse"
)

var genesis = evidence.Digest([]byte("enrollment"))

type fixture struct {
	key ed25519.PrivateKey
	w   *chain.Writer
}

func newFixture(t testing.TB) *fixture {
	_, key, _ := ed25519.GenerateKey(nil)
	w, err := chain.NewWriter("a1", key, chain.Head{Digest: genesis})
	require.NoError(t, err)
	return &fixture{key: key, w: w}
}

func (f *fixture) next(t testing.TB, pad int) Item {
	obs := make([]byte, pad)
	for i := range obs {
		obs[i] = 'x'
	}
	s, err := f.w.Append(chain.Entry{Asset: "host:a1", Collector: "t", CollectorVersion: "1", CollectedAt: time.Now(),
		Results: []evidence.Result{{Check: "t.c", Status: evidence.Pass, Reason: string(obs)}}})
	require.NoError(t, err)
	return Item{Seq: s.Record.Predicate.Seq, Digest: s.Record.Digest, Raw: s.JSON}
}

func (f *fixture) gap(from, to uint64, prev, last string, _ iter.Seq[Item]) (Item, error) {
	if prev == "" {
		prev = genesis
	}
	s, err := chain.SignGap(f.key, "a1", "host:a1", from, to, prev, last, "outbox full", time.Now(), nil)
	if err != nil {
		return Item{}, err
	}
	return Item{Seq: from, Digest: s.Record.Digest, Raw: s.JSON, Last: to, LastDigest: last}, nil
}

func checkChain(t *testing.T, f *fixture, start chain.Head, items []Item) *chain.Report {
	t.Helper()
	c := chain.NewChecker("a1", []chain.Key{{Public: f.key.Public().(ed25519.PublicKey), KeySpan: evidence.KeySpan{From: 1}}}, start)
	for i, it := range items {
		env, err := dsse.Parse(it.Raw)
		require.NoError(t, err)
		c.Add(i, env)
	}
	return c.Finish()
}

func TestAppendPendingAckReopen(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t)
	o, err := Open(dir, 0, f.gap)
	require.NoError(t, err)
	_, ok := o.Head()
	require.False(t, ok)
	var items []Item
	for i := 0; i < 10; i++ {
		it := f.next(t, 10)
		require.NoError(t, o.Append(it))
		items = append(items, it)
	}
	p, err := o.Pending(100, 1<<20)
	require.NoError(t, err)
	require.Equal(t, items, p)
	require.NoError(t, o.Ack(Mark{Seq: 4, Digest: items[3].Digest}))
	require.NoError(t, o.Close())

	o, err = Open(dir, 0, f.gap)
	require.NoError(t, err)
	require.Zero(t, o.Torn)
	h, ok := o.Head()
	require.True(t, ok)
	require.Equal(t, Mark{Seq: 10, Digest: items[9].Digest}, h)
	p, err = o.Pending(3, 1<<20)
	require.NoError(t, err)
	require.Equal(t, items[4:7], p)
	n, _ := o.Depth()
	require.Equal(t, 6, n)
	got, ok := o.Find(7)
	require.True(t, ok)
	require.Equal(t, items[6], got)
	require.True(t, checkChain(t, f, chain.Head{Seq: 4, Digest: items[3].Digest}, p).OK())
}

// A crash can stop an append at any byte. Every such tail is cut off on
// open, the records before it are intact, and the head is the last whole one.
func TestTornTailAtEveryByte(t *testing.T) {
	f := newFixture(t)
	src := t.TempDir()
	o, err := Open(src, 0, f.gap)
	require.NoError(t, err)
	var items []Item
	for i := 0; i < 3; i++ {
		it := f.next(t, 5)
		require.NoError(t, o.Append(it))
		items = append(items, it)
	}
	require.NoError(t, o.Close())
	seg := filepath.Join(src, fmt.Sprintf("seg-%020d.log", 1))
	full, err := os.ReadFile(seg)
	require.NoError(t, err)
	last, _ := frame(items[2])
	cut := len(full) - len(last)
	for n := cut + 1; n < len(full); n++ {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(seg)), full[:n], 0o600))
		o, err := Open(dir, 0, f.gap)
		require.NoError(t, err, "cut at %d", n)
		require.Equal(t, int64(n-cut), o.Torn)
		h, _ := o.Head()
		require.Equal(t, uint64(2), h.Seq, "cut at %d", n)
		p, err := o.Pending(10, 1<<20)
		require.NoError(t, err)
		require.Equal(t, items[:2], p)
		// The chain continues from the last durable record.
		require.NoError(t, o.Append(items[2]))
		st, _ := os.Stat(filepath.Join(dir, filepath.Base(seg)))
		require.Equal(t, int64(len(full)), st.Size())
	}
	// A flipped byte inside the last frame is a torn frame too (CRC).
	dir := t.TempDir()
	bad := append([]byte(nil), full...)
	bad[len(bad)-3] ^= 0xff
	require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(seg)), bad, 0o600))
	o, err = Open(dir, 0, f.gap)
	require.NoError(t, err)
	h, _ := o.Head()
	require.Equal(t, uint64(2), h.Seq)
}

// Damage anywhere but the newest segment is not a crash: Open refuses it
// clearly rather than drop records silently.
func TestDamagedOlderSegmentIsAnError(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	o, err := Open(dir, 0, f.gap)
	require.NoError(t, err)
	for i := 0; i < 40; i++ {
		require.NoError(t, o.Append(f.next(t, 60000))) // ~60 KB: several segments
	}
	require.NoError(t, o.Close())
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	require.Greater(t, len(segs), 2)
	b, _ := os.ReadFile(segs[0])
	require.NoError(t, os.WriteFile(segs[0], b[:len(b)-10], 0o600))
	_, err = Open(dir, 0, f.gap)
	require.ErrorContains(t, err, "is damaged")
	require.ErrorContains(t, err, "not the newest segment")
}

// Over its limit the outbox drops its oldest unshipped records and puts a
// signed gap record in their place: the chain over what remains checks
// clean, with the loss explained.
func TestLimitWritesGapRecord(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	o, err := Open(dir, 3<<20, f.gap)
	require.NoError(t, err)
	for i := 0; i < 120; i++ {
		require.NoError(t, o.Append(f.next(t, 60000)))
	}
	_, size := o.Depth()
	require.LessOrEqual(t, size, int64(3<<20)+SegmentSize)
	p, err := o.Pending(1000, 1<<30)
	require.NoError(t, err)
	require.Less(t, len(p), 120)
	rec, err := evidence.ParseRecord(mustPayload(t, p[0].Raw))
	require.NoError(t, err)
	require.NotNil(t, rec.Predicate.Gap, "the first pending record is the gap record")
	require.Equal(t, uint64(1), rec.Predicate.Gap.From)
	r := checkChain(t, f, chain.Head{Digest: genesis}, p)
	require.True(t, r.OK(), r.Err())
	require.NotEmpty(t, r.Explained)
	require.Equal(t, uint64(120), r.Last)

	// Reopened, the gap record is still first and the head still 120.
	require.NoError(t, o.Close())
	o, err = Open(dir, 3<<20, f.gap)
	require.NoError(t, err)
	p2, err := o.Pending(1000, 1<<30)
	require.NoError(t, err)
	require.Equal(t, p, p2)
}

// Records handed to the shipper are not dropped while it ships them.
func TestInflightNotDropped(t *testing.T) {
	f := newFixture(t)
	o, err := Open(t.TempDir(), 2<<20, f.gap)
	require.NoError(t, err)
	for i := 0; i < 20; i++ {
		require.NoError(t, o.Append(f.next(t, 60000)))
	}
	sent, err := o.Pending(20, 1<<30)
	require.NoError(t, err)
	for i := 0; i < 60; i++ {
		require.NoError(t, o.Append(f.next(t, 60000)))
	}
	p, err := o.Pending(1000, 1<<30)
	require.NoError(t, err)
	require.Equal(t, sent, p[:len(sent)], "in-flight records kept")
	require.NoError(t, o.Ack(Mark{Seq: sent[len(sent)-1].Seq, Digest: sent[len(sent)-1].Digest}))
	rest, err := o.Pending(1000, 1<<30)
	require.NoError(t, err)
	r := checkChain(t, f, chain.Head{Seq: sent[len(sent)-1].Seq, Digest: sent[len(sent)-1].Digest}, rest)
	require.True(t, r.OK(), r.Err())
}

func mustPayload(t *testing.T, raw []byte) []byte {
	env, err := dsse.Parse(raw)
	require.NoError(t, err)
	return env.Payload
}

func FuzzOpen(f *testing.F) {
	fx := newFixture(f)
	b, _ := frame(fx.next(f, 3))
	f.Add(b)
	f.Add(append(b, b[:7]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		_ = os.WriteFile(filepath.Join(dir, "seg-00000000000000000001.log"), data, 0o600)
		o, err := Open(dir, 0, nil)
		if err != nil {
			return
		}
		_, _ = o.Pending(100, 1<<20)
		_ = o.Close()
	})
}

func BenchmarkAppendFsync(b *testing.B) {
	f := newFixture(b)
	o, err := Open(b.TempDir(), 0, f.gap)
	require.NoError(b, err)
	items := make([]Item, 0, 1000)
	for i := 0; i < 1000; i++ {
		items = append(items, f.next(b, 200))
	}
	i := 0
	for b.Loop() {
		it := items[i%len(items)]
		it.Seq = uint64(i + 1)
		if err := o.Append(it); err != nil {
			b.Fatal(err)
		}
		i++
	}
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "records/s")
	// Baseline in the same run and directory: a bare write+fsync of the same
	// size, the floor any durable queue pays.
	raw, err := os.CreateTemp(b.TempDir(), "raw")
	require.NoError(b, err)
	defer raw.Close()
	buf := make([]byte, len(items[0].Raw)+headerSize)
	start, n := time.Now(), 0
	for time.Since(start) < 500*time.Millisecond {
		_, _ = raw.Write(buf)
		_ = raw.Sync()
		n++
	}
	b.ReportMetric(rate/(float64(n)/time.Since(start).Seconds()), "x_raw_fsync")
}
