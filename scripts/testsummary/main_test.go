package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const stream = `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"pass","Package":"p","Test":"TestA","Elapsed":0.1}
{"Action":"run","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:9: want 2, got 3\n"}
{"Action":"fail","Package":"p","Test":"TestB","Elapsed":0.2}
{"Action":"run","Package":"p","Test":"TestC"}
{"Action":"output","Package":"p","Test":"TestC","Output":"    c_test.go:4: needs root\n"}
{"Action":"output","Package":"p","Test":"TestC","Output":"--- SKIP: TestC (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestC"}
{"Action":"run","Package":"p","Test":"TestD/sub"}
{"Action":"pass","Package":"p","Test":"TestD/sub"}
{"Action":"pass","Package":"p","Test":"TestD"}
{"Action":"fail","Package":"p","Elapsed":1}
# q [q.test]
{"Action":"output","Package":"q","Output":"FAIL\tq [build failed]\n"}
{"Action":"fail","Package":"q","Elapsed":0}
`

func TestSummary(t *testing.T) {
	var out strings.Builder
	s := &summary{out: &out, output: map[key]*strings.Builder{}}
	require.NoError(t, s.read(strings.NewReader(stream)))
	assert.False(t, s.report(0), "a failed test fails the run")
	text := out.String()
	assert.Contains(t, text, "--- FAIL: p TestB")
	assert.Contains(t, text, "want 2, got 3", "a failed test's output is shown")
	assert.Contains(t, text, "p TestC: c_test.go:4: needs root", "a skip names its reason")
	assert.Contains(t, text, "# q [q.test]", "plain text (build errors) passes through")
	assert.Contains(t, text, "q (the package itself)")
	lines := strings.Split(strings.TrimSpace(text), "\n")
	assert.Equal(t, "2 passed, 1 failed, 1 skipped", lines[len(lines)-1], "subtests count with their parent")
}

func TestSummaryAllPass(t *testing.T) {
	var out strings.Builder
	s := &summary{out: &out, output: map[key]*strings.Builder{}}
	require.NoError(t, s.read(strings.NewReader(`{"Action":"pass","Package":"p","Test":"TestA"}`+"\n"+`{"Action":"pass","Package":"p","Elapsed":0.5}`+"\n")))
	assert.True(t, s.report(0))
	assert.Contains(t, out.String(), "ok  \tp\t0.5s")
}
