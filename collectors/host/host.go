// Package host is how collectors see the machine: a filesystem root, a
// command runner and a clock. The live agent uses the real ones; tests use
// a fixture tree and a runner that replays real captured outputs, so the
// same parsing code runs in both.
package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Runner runs a command and returns its standard output.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// Host is the machine a collector reads.
type Host struct {
	// Root is prepended to every path: "/" on a live machine, a testdata
	// tree in tests.
	Root string
	// OS is runtime.GOOS on a live machine, the fixture's OS in tests.
	OS     string
	Runner Runner
	Clock  func() time.Time
	// MaxOutput caps what one command may return, so a collector that
	// lists a million packages costs a bounded amount.
	MaxOutput int64
	// Touched, when set, is told every host path (or glob pattern) a
	// collector reaches for: tests use it to find every source a
	// collector reads and feed it nothing, or garbage.
	Touched func(path string)
}

// Live is the machine the agent runs on.
func Live() *Host {
	return &Host{Root: "/", OS: runtime.GOOS, Runner: ExecRunner{MaxOutput: 64 << 20}, Clock: time.Now, MaxOutput: 64 << 20}
}

// Now is the host's clock.
func (h *Host) Now() time.Time {
	if h.Clock == nil {
		return time.Now()
	}
	return h.Clock()
}

// Path maps an absolute host path under Root.
func (h *Host) Path(p string) string {
	if h.Touched != nil {
		h.Touched(p)
	}
	if h.Root == "" || h.Root == "/" {
		return p
	}
	return filepath.Join(h.Root, filepath.FromSlash(p))
}

// ReadFile reads a host file.
func (h *Host) ReadFile(p string) ([]byte, error) {
	return os.ReadFile(h.Path(p))
}

// Open opens a host file for streaming.
func (h *Host) Open(p string) (*os.File, error) {
	return os.Open(h.Path(p))
}

// Glob matches a host path pattern and returns host paths (without Root).
func (h *Host) Glob(pattern string) ([]string, error) {
	m, err := filepath.Glob(h.Path(pattern))
	if err != nil {
		return nil, err
	}
	if h.Root == "" || h.Root == "/" {
		return m, nil
	}
	out := make([]string, len(m))
	for i, p := range m {
		rel, _ := filepath.Rel(h.Root, p)
		out[i] = "/" + filepath.ToSlash(rel)
	}
	return out, nil
}

// Exists says whether a host path exists.
func (h *Host) Exists(p string) bool {
	_, err := os.Stat(h.Path(p))
	return err == nil
}

// Lexists says whether a host path exists without following a final
// symlink (an enabled unit's symlink points at a path of the real root).
func (h *Host) Lexists(p string) bool {
	_, err := os.Lstat(h.Path(p))
	return err == nil
}

// Run runs a command on the host.
func (h *Host) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return h.Runner.Run(ctx, name, args...)
}

// FullRunner is a Runner that also gives a command's standard error.
type FullRunner interface {
	RunFull(ctx context.Context, name string, args ...string) (stdout, stderr []byte, err error)
}

// RunFull runs a command and returns its standard error too, for the
// tools that answer there (macOS softwareupdate prints "No new software
// available." on stderr). A runner that cannot tell gives none.
func (h *Host) RunFull(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	if f, ok := h.Runner.(FullRunner); ok {
		return f.RunFull(ctx, name, args...)
	}
	out, err := h.Runner.Run(ctx, name, args...)
	return out, nil, err
}

// ErrNotFound is wrapped when a command is not installed.
var ErrNotFound = errors.New("command not found")

// ExitError is a command that ran and exited non-zero. Some tools report
// state by exit code (dnf check-update exits 100 with updates pending,
// needs-restarting -r 1 when a reboot is due), so collectors ask for the
// code with ExitCode instead of matching error text.
type ExitError struct {
	Name string
	Code int
	// Stderr is the first line of standard error, if any.
	Stderr string
}

func (e *ExitError) Error() string {
	if e.Stderr != "" {
		return fmt.Sprintf("%s: exit status %d: %s", e.Name, e.Code, e.Stderr)
	}
	return fmt.Sprintf("%s: exit status %d", e.Name, e.Code)
}

// ExitCode returns the exit code of a command that ran and exited
// non-zero, and false for any other error (not found, killed, timed out).
func ExitCode(err error) (int, bool) {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code, true
	}
	return 0, false
}

// IsExit reports whether err is a command that exited with code.
func IsExit(err error, code int) bool {
	c, ok := ExitCode(err)
	return ok && c == code
}

// ExecRunner runs real commands.
type ExecRunner struct {
	MaxOutput int64
	// Env, when set, replaces the environment (LC_ALL=C is always added so
	// output is parseable).
	Env []string
}

// Run runs name with args, with a C locale, and returns stdout. A non-zero
// exit is an error that carries stderr's first line; stdout is returned
// with it, since some tools (apt, manage-bde) report state by exit code.
func (r ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, _, err := r.RunFull(ctx, name, args...)
	return out, err
}

// RunFull is Run, also returning standard error (up to 64 KiB): what a
// capture records.
func (r ExecRunner) RunFull(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	env := r.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(append([]string(nil), env...), "LC_ALL=C", "LANG=C")
	max := r.MaxOutput
	if max <= 0 {
		max = 64 << 20
	}
	var stdout limitedBuffer
	stdout.max = max
	stderr := &limitedBuffer{max: 64 << 10}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	err = cmd.Run()
	errOut := stderr.buf.Bytes()
	if stdout.over {
		return stdout.buf.Bytes(), errOut, fmt.Errorf("%s: output over %d bytes", name, max)
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.buf.String())
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if ctx.Err() != nil {
			return stdout.buf.Bytes(), errOut, fmt.Errorf("%s: %w", name, ctx.Err())
		}
		var xe *exec.ExitError
		if errors.As(err, &xe) && xe.ExitCode() >= 0 {
			return stdout.buf.Bytes(), errOut, &ExitError{Name: name, Code: xe.ExitCode(), Stderr: msg}
		}
		if msg != "" {
			return stdout.buf.Bytes(), errOut, fmt.Errorf("%s: %w: %s", name, err, msg)
		}
		return stdout.buf.Bytes(), errOut, fmt.Errorf("%s: %w", name, err)
	}
	return stdout.buf.Bytes(), errOut, nil
}

type limitedBuffer struct {
	buf  bytes.Buffer
	max  int64
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	room := b.max - int64(b.buf.Len())
	if int64(len(p)) > room {
		b.over = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

// Replay is a Runner for tests: each command line ("lsblk -J -o NAME")
// maps to a file of captured output in Dir, named in Outputs. A command
// with no entry is "not found", exactly as on a machine without it.
type Replay struct {
	Dir string
	// Outputs maps a command line to a file of its stdout, "!exit N" for a
	// failure with no output, "!exit N FILE" for a failure that printed
	// FILE (dnf check-update exits 100 with the list of updates), or
	// "!exit N :message" for a failure whose standard error said message.
	Outputs map[string]string
	// Stderr maps a command line to a file of its standard error.
	Stderr map[string]string
	// Calls records what was run, for assertions.
	Calls []string
}

// RunFull implements FullRunner.
func (r *Replay) RunFull(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	out, err := r.Run(ctx, name, args...)
	var errOut []byte
	if f, ok := r.Stderr[strings.TrimSpace(name+" "+strings.Join(args, " "))]; ok {
		errOut, _ = os.ReadFile(filepath.Join(r.Dir, f))
	}
	return out, errOut, err
}

// Run replays a captured output.
func (r *Replay) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	line := strings.TrimSpace(name + " " + strings.Join(args, " "))
	r.Calls = append(r.Calls, line)
	f, ok := r.Outputs[line]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	if spec, isErr := strings.CutPrefix(f, "!exit "); isErr {
		codeText, file, withOutput := strings.Cut(spec, " ")
		code, err := strconv.Atoi(codeText)
		if err != nil {
			return nil, fmt.Errorf("replay %q: exit code %q is not a number", line, codeText)
		}
		if msg, ok := strings.CutPrefix(file, ":"); ok {
			return nil, &ExitError{Name: name, Code: code, Stderr: strings.TrimSpace(msg)}
		}
		if !withOutput {
			return nil, &ExitError{Name: name, Code: code}
		}
		b, err := os.ReadFile(filepath.Join(r.Dir, file))
		if err != nil {
			return nil, fmt.Errorf("replay %q: %w", line, err)
		}
		return b, &ExitError{Name: name, Code: code}
	}
	b, err := os.ReadFile(filepath.Join(r.Dir, f))
	if err != nil {
		return nil, fmt.Errorf("replay %q: %w", line, err)
	}
	return b, nil
}

// ReadAllLimited reads r up to max bytes.
func ReadAllLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("input over %d bytes", max)
	}
	return b, nil
}

// IsNotExist reports a missing file or command.
func IsNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNotFound)
}
