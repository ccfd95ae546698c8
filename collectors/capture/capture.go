// Package capture records what collectors read on a live machine (every
// command they ran: its line, standard output and error and exit code;
// every file they read) into a directory, and replays such a directory as
// a host on any machine. A user sends a capture and anyone reproduces the
// verdict; a capture of a real machine becomes a test fixture by copying
// the directory.
//
// The directory holds manifest.json (the OS, its version and locale, when,
// by which Annexa, what was run and read, and what was redacted),
// files/<absolute path> for the files, and commands/<n>.out and .err.
package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/annexa-dev/annexa/collectors/host"
)

// Format is the capture directory's version.
const Format = 1

// Manifest is manifest.json.
type Manifest struct {
	Format     int       `json:"format"`
	OS         string    `json:"os"`
	Arch       string    `json:"arch"`
	OSVersion  string    `json:"os_version,omitempty"`
	Locale     string    `json:"locale,omitempty"`
	CapturedAt time.Time `json:"captured_at"`
	Annexa     string    `json:"annexa,omitempty"`
	Collectors []string  `json:"collectors"`
	Commands   []Command `json:"commands"`
	// Files are the host paths read, as captured under files/.
	Files []File `json:"files"`
	// Redacted says what was taken out before writing, and why.
	Redacted []string `json:"redacted,omitempty"`
	// Provenance says where the outputs come from: "captured" (annexa-agent
	// capture on a real machine), "published" (real outputs someone
	// published, each cited in its command's Source), "composed" (written
	// from a vendor's documentation: the parser has not met a real
	// machine with it) or "mixed" (the commands' Sources say which).
	// Empty is "captured".
	Provenance string `json:"provenance,omitempty"`
	// Source describes the machine or the publication.
	Source string `json:"source,omitempty"`
}

// The provenances of a capture.
const (
	Captured  = "captured"
	Published = "published"
	Composed  = "composed"
	Mixed     = "mixed"
)

// Real says whether the capture holds a real machine's outputs (captured,
// or published by someone who ran the commands).
func (m *Manifest) Real() bool {
	switch m.Provenance {
	case "", Captured, Published:
		return true
	case Mixed:
		for _, c := range m.Commands {
			if c.Source != "" && !strings.HasPrefix(c.Source, Composed) {
				return true
			}
		}
	}
	return false
}

// Command is one command a collector ran.
type Command struct {
	Line     string `json:"line"`
	Stdout   string `json:"stdout,omitempty"` // file under commands/
	Stderr   string `json:"stderr,omitempty"`
	Exit     int    `json:"exit"`
	NotFound bool   `json:"not_found,omitempty"`
	// Err is a failure that was neither an exit code nor a missing command
	// (a timeout, a signal).
	Err string `json:"error,omitempty"`
	// Source cites where this output comes from, in a capture assembled
	// from published or composed outputs ("composed: …" for the latter).
	Source string `json:"source,omitempty"`
}

// File is one host path a collector reached for.
type File struct {
	Path string `json:"path"`
	Kind string `json:"kind"` // file, dir, stand-in (a large or executable file, kept by name, mode and size)
	Mode uint32 `json:"mode,omitempty"`
	Size int64  `json:"size,omitempty"`
}

// maxFile is the largest file copied whole; larger files, and executables
// (a collector reads only that they are there), are kept as stand-ins.
const maxFile = 8 << 20

// Recorder is a live host whose commands and file reads are recorded.
// Files are copied the moment a collector reaches for them (a glob's
// matches as the glob sees them), so what the replay reads is what the
// collector read, even where the machine changes underneath (processes
// come and go under /proc).
type Recorder struct {
	Host *host.Host
	exec host.FullRunner
	root string // where host paths are read from ("" for the machine's own)

	mu       sync.Mutex
	commands []Command
	outputs  map[string][2][]byte
	staging  map[string]*staged // host path -> what was copied
	redacted []string
}

type staged struct {
	file    File
	content []byte
}

// NewRecorder wraps the live machine.
func NewRecorder() *Recorder {
	live := host.Live()
	// One instant for the whole capture: what collectors derive from the
	// clock (a log's lookback window, a command's --since) is the same
	// when the capture is replayed at that instant.
	at := time.Now().UTC().Truncate(time.Second)
	live.Clock = func() time.Time { return at }
	return Record(live)
}

// Record wraps any host whose runner gives standard error too (the live
// machine, or a test's replayed fixtures, to turn them into a capture). Its
// clock should be stopped: the capture is replayed at its instant.
func Record(h *host.Host) *Recorder {
	r := &Recorder{outputs: map[string][2][]byte{}, staging: map[string]*staged{}}
	rec := *h
	r.exec = fullRunner{h.Runner}
	if h.Root != "/" {
		r.root = h.Root
	}
	rec.Runner = r
	rec.Touched = func(p string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if !strings.ContainsAny(p, "*?[") {
			r.stage(p)
			return
		}
		matches, _ := filepath.Glob(filepath.Join(r.root, filepath.FromSlash(p)))
		for _, m := range matches {
			rel, err := filepath.Rel(r.root, m)
			if r.root == "" {
				rel, err = m, nil
			}
			if err == nil {
				r.stage("/" + strings.TrimPrefix(filepath.ToSlash(rel), "/"))
			}
		}
	}
	r.Host = &rec
	return r
}

// fullRunner gives a runner's standard error where it can.
type fullRunner struct{ host.Runner }

func (f fullRunner) RunFull(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	if fr, ok := f.Runner.(host.FullRunner); ok {
		return fr.RunFull(ctx, name, args...)
	}
	out, err := f.Run(ctx, name, args...)
	return out, nil, err
}

// Run implements host.Runner: it runs the command and records it.
func (r *Recorder) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, _, err := r.RunFull(ctx, name, args...)
	return out, err
}

// RunFull implements host.FullRunner.
func (r *Recorder) RunFull(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	out, errOut, err := r.exec.RunFull(ctx, name, args...)
	c := Command{Line: line(name, args)}
	var xe *host.ExitError
	switch {
	case err == nil:
	case errors.As(err, &xe):
		c.Exit = xe.Code
	case errors.Is(err, host.ErrNotFound):
		c.NotFound = true
	default:
		c.Err = err.Error()
	}
	r.mu.Lock()
	n := len(r.commands)
	c.Stdout, c.Stderr = fmt.Sprintf("%03d.out", n), fmt.Sprintf("%03d.err", n)
	r.commands = append(r.commands, c)
	r.outputs[c.Stdout] = [2][]byte{out, errOut}
	r.mu.Unlock()
	return out, errOut, err
}

func line(name string, args []string) string {
	return strings.TrimSpace(name + " " + strings.Join(args, " "))
}

// Write writes the capture into dir, which must not exist or be empty.
func (r *Recorder) Write(dir string, collectors []string, annexa string) (*Manifest, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s is not empty: a capture goes into a new directory", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, "commands"), 0o755); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Host.Touched = nil // what Write reads is not the collectors' reading
	m := &Manifest{Format: Format, OS: r.Host.OS, Arch: runtime.GOARCH, OSVersion: osVersion(), Locale: locale(),
		CapturedAt: r.Host.Now().UTC(), Annexa: annexa, Collectors: collectors, Commands: r.commands, Files: []File{}}
	for _, c := range r.commands {
		o := r.outputs[c.Stdout]
		if err := os.WriteFile(filepath.Join(dir, "commands", c.Stdout), o[0], 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "commands", c.Stderr), o[1], 0o644); err != nil {
			return nil, err
		}
	}
	paths := make([]string, 0, len(r.staging))
	for p, st := range r.staging {
		if st != nil {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		st := r.staging[p]
		dst := filepath.Join(dir, "files", filepath.FromSlash(p))
		if st.file.Kind == "dir" {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return nil, fmt.Errorf("capture %s: %w", p, err)
			}
			m.Files = append(m.Files, st.file)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			continue // a parent was captured as a file: keep that one
		}
		if err := os.WriteFile(dst, st.content, os.FileMode(st.file.Mode)|0o600); err != nil {
			return nil, fmt.Errorf("capture %s: %w", p, err)
		}
		m.Files = append(m.Files, st.file)
	}
	m.Redacted = r.redacted
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return m, os.WriteFile(filepath.Join(dir, "manifest.json"), append(b, '\n'), 0o644)
}

// stage copies one host path as it is now, once, redacting secrets.
func (r *Recorder) stage(p string) {
	if _, done := r.staging[p]; done {
		return
	}
	src := p
	if r.root != "" {
		src = filepath.Join(r.root, filepath.FromSlash(p))
	}
	st, err := os.Stat(src)
	if err != nil {
		r.staging[p] = nil // not there: absent in the replay too
		return
	}
	switch {
	case st.IsDir():
		r.staging[p] = &staged{file: File{Path: p, Kind: "dir"}}
		return
	case !st.Mode().IsRegular():
		r.staging[p] = nil
		return
	}
	f := File{Path: p, Kind: "file", Mode: uint32(st.Mode().Perm()), Size: st.Size()}
	var content []byte
	if st.Size() > maxFile || st.Mode()&0o111 != 0 {
		f.Kind = "stand-in"
		content = []byte(fmt.Sprintf("annexa capture: stand-in for a %d-byte file (mode %o), kept by name, mode and size only\n", st.Size(), st.Mode().Perm()))
	} else {
		if content, err = os.ReadFile(src); err != nil {
			r.staging[p] = nil // unreadable to the capturing user: absent in the replay
			return
		}
		var what string
		if content, what = redact(p, content); what != "" {
			r.redacted = append(r.redacted, what)
		}
	}
	r.staging[p] = &staged{file: f, content: content}
}

// redact takes secrets out of what a collector reads: password hashes in
// shadow files become "$redacted$", keeping what the checks read (an empty
// field, a locked "!" or "*").
func redact(p string, b []byte) ([]byte, string) {
	switch p {
	case "/etc/shadow", "/etc/gshadow":
	default:
		return b, ""
	}
	lines := strings.Split(string(b), "\n")
	n := 0
	for i, l := range lines {
		f := strings.Split(l, ":")
		if len(f) < 2 || f[1] == "" || f[1] == "*" || f[1] == "!" || f[1] == "!!" || f[1] == "!*" {
			continue
		}
		lock := ""
		if strings.HasPrefix(f[1], "!") {
			lock = "!"
		}
		f[1] = lock + "$redacted$"
		lines[i] = strings.Join(f, ":")
		n++
	}
	return []byte(strings.Join(lines, "\n")), fmt.Sprintf("%s: %d password hashes replaced by $redacted$ (empty and locked fields kept)", p, n)
}

func osVersion() string {
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				return strings.Trim(v, `"`)
			}
		}
	}
	return runtime.GOOS
}

func locale() string {
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// Open reads a capture directory and returns a host that replays it: its
// files under files/, its commands as they answered, its clock stopped at
// the capture's time.
func Open(dir string) (*host.Host, *Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: not a capture: %w", dir, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, fmt.Errorf("%s/manifest.json: %w", dir, err)
	}
	if m.Format != Format {
		return nil, nil, fmt.Errorf("%s: capture format %d, this agent reads %d", dir, m.Format, Format)
	}
	rp := &replay{dir: filepath.Join(dir, "commands"), byLine: map[string]Command{}}
	for _, c := range m.Commands {
		rp.byLine[c.Line] = c // the last answer of a repeated command
	}
	at := m.CapturedAt
	return &host.Host{Root: filepath.Join(dir, "files"), OS: m.OS, Runner: rp, Clock: func() time.Time { return at }, MaxOutput: 64 << 20}, &m, nil
}

// replay answers commands as the capture recorded them; one it did not
// record is not installed, as on a machine without it.
type replay struct {
	dir    string
	byLine map[string]Command
}

func (r *replay) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, _, err := r.RunFull(ctx, name, args...)
	return out, err
}

// RunFull implements host.FullRunner.
func (r *replay) RunFull(_ context.Context, name string, args ...string) ([]byte, []byte, error) {
	c, ok := r.byLine[line(name, args)]
	if !ok || c.NotFound {
		return nil, nil, fmt.Errorf("%s: %w", name, host.ErrNotFound)
	}
	out, err := os.ReadFile(filepath.Join(r.dir, c.Stdout))
	if err != nil {
		return nil, nil, fmt.Errorf("replay %q: %w", c.Line, err)
	}
	errOut, _ := os.ReadFile(filepath.Join(r.dir, c.Stderr))
	switch {
	case c.Err != "":
		return out, errOut, fmt.Errorf("%s: %s", name, c.Err)
	case c.Exit != 0:
		msg := strings.TrimSpace(string(errOut))
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		return out, errOut, &host.ExitError{Name: name, Code: c.Exit, Stderr: msg}
	}
	return out, errOut, nil
}
