package load

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/annexa-dev/annexa/configs"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/bundle"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/evidence/checkpoint"
	"github.com/annexa-dev/annexa/evidence/dsse"
)

// BenchmarkVerifyBundle verifies a synthetic bundle of
// ANNEXA_BENCH_RECORDS records (default 1,000,000) from 100 agents with the
// real annexa binary, and reports records/s against the raw ed25519 verify
// ceiling on all cores (measured in the same run) and the verifier's peak RSS.
func BenchmarkVerifyBundle(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("ANNEXA_BENCH_RECORDS")); err == nil && v > 0 {
		n = v
	}
	const agents = 100
	dir := b.TempDir()
	out, err := exec.Command("go", "build", "-o", dir+"/", "../../cmd/annexa").CombinedOutput()
	require.NoError(b, err, string(out))
	bundlePath, pubPath := makeBundle(b, dir, n, agents)

	b.ResetTimer()
	start := time.Now()
	cmd := exec.Command(filepath.Join(dir, "annexa"), "verify", "--server-key", pubPath, bundlePath)
	var stdout syncBuf
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	require.NoError(b, cmd.Start())
	var peak int64
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for waiting := true; waiting; {
		select {
		case err := <-done:
			require.NoError(b, err, stdout.String())
			waiting = false
		case <-time.After(50 * time.Millisecond):
			if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)); err == nil {
				var kb int64
				for _, l := range splitLines(string(st)) {
					if _, err := fmt.Sscanf(l, "VmHWM: %d kB", &kb); err == nil {
						peak = max(peak, kb<<10)
					}
				}
			}
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	rate := float64(n) / elapsed.Seconds()
	ceiling := verifyCeiling()
	b.ReportMetric(rate, "records/s")
	b.ReportMetric(rate/ceiling, "x_verify_ceiling")
	b.ReportMetric(float64(peak)/(1<<20), "peak_rss_MiB")
	b.ReportMetric(float64(n), "records")
}

type syncBuf struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

// makeBundle writes a valid bundle from the start of a fresh log: the
// agents' enrollments, then their records round-robin.
func makeBundle(b *testing.B, dir string, n, agents int) (string, string) {
	logSK, logVK, err := note.GenerateKey(rand.Reader, "annexa.bench/log")
	require.NoError(b, err)
	enrSK, enrVK, err := note.GenerateKey(rand.Reader, "annexa.bench/log/enrollment")
	require.NoError(b, err)
	pubPath := filepath.Join(dir, "server.pub")
	require.NoError(b, os.WriteFile(pubPath, []byte(logVK+"\n"+enrVK+"\n"), 0o644))
	ea, _ := checkpoint.PrivateKey(enrSK)
	logPriv, _ := checkpoint.PrivateKey(logSK)
	signer, _ := note.NewSigner(logSK)
	cat, _ := configs.Catalog()
	mapping, _ := configs.Mapping(cat, "")
	mappingRaw, _ := configs.FS.ReadFile("mapping.yaml")
	scope := bundle.Scope{From: time.Unix(0, 0).UTC(), To: time.Now().UTC(), Freshness: "26h"}
	bld := bundle.NewBuilder(scope, mapping)
	ks := bundle.NewKeyState()

	evPath := filepath.Join(dir, "evidence.jsonl")
	ef, err := os.Create(evPath)
	require.NoError(b, err)
	bw := bufio.NewWriterSize(ef, 1<<20)
	fr, _ := bundle.NewFrontier(0, nil)
	var size, index int64
	var counts bundle.Counts
	write := func(line []byte) {
		fr.Append(line)
		_, _ = bw.Write(line)
		_ = bw.WriteByte('\n')
		size += int64(len(line)) + 1
		index++
		counts.Entries++
	}
	writers := make([]*chain.Writer, agents)
	for i := range writers {
		pub, priv, _ := ed25519.GenerateKey(nil)
		id := fmt.Sprintf("agt-bench-%03d", i)
		ev := &evidence.KeyEvent{Kind: evidence.Enroll, AgentID: id, KeyID: dsse.KeyID(pub), PublicKey: pub, FromSeq: 1, Time: time.Now()}
		env, err := evidence.SignKeyEvent(ea, ev)
		require.NoError(b, err)
		raw, _ := json.Marshal(env)
		require.NoError(b, ks.Apply(ev, env.Payload))
		bld.Enrolled(id, nil)
		write(raw)
		counts.KeyEvents++
		writers[i], _ = chain.NewWriter(id, priv, chain.Head{Digest: evidence.Digest(env.Payload)})
	}
	at := time.Now().Add(-time.Hour)
	round := make([]*chain.Signed, agents)
	for done := 0; done < n; done += agents {
		var wg sync.WaitGroup
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				round[i], _ = writers[i].Append(chain.Entry{Asset: evidence.HostAsset(fmt.Sprintf("agt-bench-%03d", i)), Collector: "bench", CollectorVersion: "1",
					CollectedAt: at.Add(time.Duration(done) * time.Millisecond),
					Results: []evidence.Result{{Check: "disk_encryption.system_volume", Status: evidence.Pass, Reason: "LUKS2 on nvme0n1p3"},
						{Check: "ssh.password_auth", Status: evidence.Fail, Reason: "PasswordAuthentication yes"}}})
			}()
		}
		wg.Wait()
		for _, s := range round {
			bld.Add(index, s.Record)
			write(s.JSON)
			counts.Records++
		}
	}
	require.NoError(b, bw.Flush())
	require.NoError(b, ef.Close())
	counts.Agents = agents
	root, _ := fr.Root()
	cp, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: signer.Name(), Size: index, Hash: root}, signer)
	require.NoError(b, err)
	sum, err := bld.Summary()
	require.NoError(b, err)
	keys, _ := json.MarshalIndent(ks.All(), "", "  ")
	proof, _ := json.Marshal(bundle.Proof{End: index, Consistency: []string{}, Frontier: []string{}})

	bundlePath := filepath.Join(dir, "bundle.tar.gz")
	f, err := os.Create(bundlePath)
	require.NoError(b, err)
	created := time.Now().UTC()
	oscal, err := bundle.OSCAL(sum, created, signer.Name())
	require.NoError(b, err)
	w := bundle.NewWriter(f, created)
	for _, x := range []struct {
		name string
		data []byte
	}{{bundle.FileMapping, mappingRaw}, {bundle.FileCheckpointEnd, cp}, {bundle.FileCheckpointLatest, cp}, {bundle.FileProof, proof},
		{bundle.FileKeyEvents, nil}, {bundle.FileBoundaries, []byte("[]")}, {bundle.FileKeys, keys}} {
		require.NoError(b, w.File(x.name, x.data))
	}
	require.NoError(b, w.Stream(bundle.FileEvidence, size, func(out io.Writer) error {
		ef, err := os.Open(evPath)
		if err != nil {
			return err
		}
		defer ef.Close()
		_, err = io.Copy(out, ef)
		return err
	}))
	require.NoError(b, w.File(bundle.FileSummary, bundle.EncodeSummary(sum)))
	require.NoError(b, w.File(bundle.FileOSCAL, oscal))
	require.NoError(b, w.Finish(bundle.Manifest{Origin: signer.Name(), Scope: scope, EndSize: index, LatestSize: index, Counts: counts}, logPriv))
	require.NoError(b, f.Close())
	os.Remove(evPath)
	return bundlePath, pubPath
}
