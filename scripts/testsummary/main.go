// Command testsummary reads `go test -json` on standard input and prints
// what a developer needs from a whole run: a line per package as go test
// prints it, the output of every failed test, the skipped tests with their
// reasons, and a closing line "N passed, N failed, N skipped". It exits
// non-zero when any test or package failed. scripts/test.sh pipes every
// `go test` of `make test` through it.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

type key struct{ pkg, test string }

type summary struct {
	out                    io.Writer
	passed, failed, skips  int
	output                 map[key]*strings.Builder
	skipped                []skip
	failedTests, failedPkg []string
	// races are race reports printed during tests that passed: the race
	// detector fails the package, not the test it interrupted.
	races map[string][]string
}

type skip struct {
	name, reason string
}

func main() {
	s := &summary{out: os.Stdout, output: map[key]*strings.Builder{}}
	start := time.Now()
	if err := s.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	if !s.report(time.Since(start)) {
		os.Exit(1)
	}
}

func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			// Build errors and the like arrive as plain text.
			fmt.Fprintln(s.out, string(line))
			continue
		}
		s.add(ev)
	}
	return sc.Err()
}

func (s *summary) add(ev event) {
	k := key{ev.Package, ev.Test}
	switch ev.Action {
	case "build-output":
		fmt.Fprint(s.out, ev.Output)
	case "output":
		b := s.output[k]
		if b == nil {
			b = &strings.Builder{}
			s.output[k] = b
		}
		b.WriteString(ev.Output)
	case "pass":
		if ev.Test == "" {
			fmt.Fprintf(s.out, "ok  \t%s\t%.1fs\n", ev.Package, ev.Elapsed)
		} else if !strings.Contains(ev.Test, "/") {
			s.passed++
		}
		if b := s.output[k]; b != nil && strings.Contains(b.String(), "WARNING: DATA RACE") {
			if s.races == nil {
				s.races = map[string][]string{}
			}
			s.races[ev.Package] = append(s.races[ev.Package], ev.Test+":\n"+b.String())
		}
		delete(s.output, k)
	case "fail":
		if ev.Test == "" {
			fmt.Fprintf(s.out, "FAIL\t%s\t%.1fs\n", ev.Package, ev.Elapsed)
			s.failedPkg = append(s.failedPkg, ev.Package)
			if b := s.output[k]; b != nil && s.failedTestsIn(ev.Package) == 0 {
				// A package that failed outside any test (a panic in
				// TestMain, a build error): its own output says why.
				fmt.Fprint(s.out, indent(b.String()))
			}
			for _, r := range s.races[ev.Package] {
				fmt.Fprint(s.out, indent("race report during "+r))
			}
			return
		}
		if !strings.Contains(ev.Test, "/") {
			s.failed++
		}
		s.failedTests = append(s.failedTests, ev.Package+" "+ev.Test)
		if b := s.output[k]; b != nil {
			fmt.Fprintf(s.out, "--- FAIL: %s %s (%.2fs)\n%s", ev.Package, ev.Test, ev.Elapsed, indent(b.String()))
		}
	case "skip":
		if ev.Test == "" {
			return // a package without tests
		}
		if !strings.Contains(ev.Test, "/") {
			s.skips++
		}
		s.skipped = append(s.skipped, skip{name: ev.Package + " " + ev.Test, reason: skipReason(s.output[k])})
		delete(s.output, k)
	}
}

func (s *summary) failedTestsIn(pkg string) int {
	n := 0
	for _, t := range s.failedTests {
		if strings.HasPrefix(t, pkg+" ") {
			n++
		}
	}
	return n
}

// skipReason is what t.Skip said: the output lines after "--- SKIP".
func skipReason(b *strings.Builder) string {
	if b == nil {
		return "(no reason given)"
	}
	var reasons []string
	for _, l := range strings.Split(b.String(), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		reasons = append(reasons, l)
	}
	if len(reasons) == 0 {
		return "(no reason given)"
	}
	return strings.Join(reasons, " / ")
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString("    " + l)
		}
	}
	return b.String()
}

// report prints the closing summary and says whether everything passed.
func (s *summary) report(took time.Duration) bool {
	if len(s.skipped) > 0 {
		sort.Slice(s.skipped, func(i, j int) bool { return s.skipped[i].name < s.skipped[j].name })
		fmt.Fprintln(s.out, "\nskipped:")
		for _, sk := range s.skipped {
			fmt.Fprintf(s.out, "  %s: %s\n", sk.name, sk.reason)
		}
	}
	if len(s.failedTests) > 0 || len(s.failedPkg) > 0 {
		fmt.Fprintln(s.out, "\nfailed:")
		for _, f := range s.failedTests {
			fmt.Fprintln(s.out, "  "+f)
		}
		for _, p := range s.failedPkg {
			if s.failedTestsIn(p) == 0 {
				fmt.Fprintln(s.out, "  "+p+" (the package itself)")
			}
		}
	}
	// The last line alone, in the form CI reads: "N passed, N failed, N skipped".
	fmt.Fprintf(s.out, "\ntests took %s\n%d passed, %d failed, %d skipped\n", took.Round(time.Second), s.passed, s.failed, s.skips)
	return s.failed == 0 && len(s.failedPkg) == 0
}
