package load

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/configs"
	"github.com/annexa-dev/annexa/evidence/bundle"
)

// BenchmarkVerifyInProcess is BenchmarkVerifyBundle without the process
// around it, for profiling (-cpuprofile).
func BenchmarkVerifyInProcess(b *testing.B) {
	dir := b.TempDir()
	path, pub := makeBundle(b, dir, 50000, 50)
	pb, _ := os.ReadFile(pub)
	keys, err := bundle.ParseServerKeys(pb)
	require.NoError(b, err)
	cat, _ := configs.Catalog()
	for b.Loop() {
		f, _ := os.Open(path)
		r := bundle.Verify(f, keys, cat)
		f.Close()
		if !r.OK {
			b.Fatal(r.Problems)
		}
	}
	b.ReportMetric(50000*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
