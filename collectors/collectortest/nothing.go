package collectortest

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

// A source is absent (no file, no command), empty (every file and every
// command's output there but empty) or garbage (random bytes).
const (
	Absent  = "absent"
	Empty   = "empty"
	Garbage = "garbage"
)

// NeverPassOnNothing runs c, on every OS it has checks for, against a host
// where every source it reads is absent, then empty, then garbage, and
// requires that no check passes: a verdict must rest on something that was
// examined. It finds the sources by running the collector and recording
// every path it reaches for and every command it runs, creating them, and
// running it again until it reaches for nothing new, so a collector that
// reads a second file only when the first exists is fed that one too.
func NeverPassOnNothing(t *testing.T, c collectors.Collector) {
	t.Helper()
	for _, goos := range []string{"linux", "darwin", "windows"} {
		if !hasChecksFor(c, goos) {
			continue
		}
		for _, mode := range []string{Absent, Empty, Garbage} {
			t.Run(goos+"/"+mode, func(t *testing.T) {
				rs := feedNothing(t, c, goos, mode)
				for _, r := range rs {
					assert.NotEqual(t, evidence.Pass, r.Status, "%s on %s with every source %s passed: %s", r.Check, goos, mode, r.Reason)
					require.NotEmpty(t, r.Reason, r.Check)
				}
			})
		}
	}
}

func hasChecksFor(c collectors.Collector, goos string) bool {
	for _, ch := range c.Checks() {
		if len(ch.Platforms) == 0 || slices.Contains(ch.Platforms, goos) {
			return true
		}
	}
	return false
}

// nothingRunner answers every command as mode says.
type nothingRunner struct {
	mode string
	mu   sync.Mutex
	ran  map[string]bool
}

func (r *nothingRunner) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	line := strings.TrimSpace(name + " " + strings.Join(args, " "))
	r.mu.Lock()
	r.ran[line] = true
	r.mu.Unlock()
	switch r.mode {
	case Absent:
		return nil, fmt.Errorf("%s: %w", name, host.ErrNotFound)
	case Empty:
		return nil, nil
	}
	return garbage(line), nil
}

// garbage is random bytes, with newlines so line readers see lines, the
// same for the same source every run.
func garbage(seed string) []byte {
	h := fnv.New64a()
	h.Write([]byte(seed))
	rng := rand.New(rand.NewPCG(h.Sum64(), 0x5eed))
	b := make([]byte, 4096)
	for i := range b {
		b[i] = byte(rng.UintN(256))
		if rng.UintN(60) == 0 {
			b[i] = '\n'
		}
	}
	return b
}

func feedNothing(t *testing.T, c collectors.Collector, goos, mode string) []evidence.Result {
	t.Helper()
	root := t.TempDir()
	made := map[string]bool{}
	run := &nothingRunner{mode: mode, ran: map[string]bool{}}
	var rs []evidence.Result
	for round := 0; round < 8; round++ {
		var mu sync.Mutex
		touched := map[string]bool{}
		h := &host.Host{Root: root, OS: goos, Runner: run, MaxOutput: 1 << 20,
			Clock: func() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) },
			Touched: func(p string) {
				mu.Lock()
				touched[p] = true
				mu.Unlock()
			}}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := c.Collect(ctx, h, nil)
		cancel()
		require.NoError(t, err)
		rs = collectors.Complete(c, out)
		if mode == Absent {
			break
		}
		var fresh []string
		for p := range touched {
			if !made[p] {
				fresh = append(fresh, p)
			}
		}
		if len(fresh) == 0 {
			break
		}
		// Deepest first: a path that is a directory of another must not be
		// made a file.
		slices.SortFunc(fresh, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
		for _, p := range fresh {
			made[p] = true
			materialise(root, p, mode)
		}
	}
	return rs
}

// materialise creates the file a path or glob pattern names, with a
// concrete name for each wildcard.
func materialise(root, p, mode string) {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*', '?':
			b.WriteByte('0')
		case '[':
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				b.WriteByte('0')
				continue
			}
			class := p[i+1 : i+end]
			class = strings.TrimPrefix(class, "!")
			if class == "" {
				b.WriteByte('0')
			} else {
				b.WriteByte(class[0])
			}
			i += end
		default:
			b.WriteByte(p[i])
		}
	}
	full := filepath.Join(root, filepath.FromSlash(b.String()))
	if st, err := os.Stat(full); err == nil && st.IsDir() {
		return
	}
	if os.MkdirAll(filepath.Dir(full), 0o755) != nil {
		return // a parent is a file already
	}
	content := []byte(nil)
	if mode == Garbage {
		content = garbage(p)
	}
	_ = os.WriteFile(full, content, 0o644)
}
