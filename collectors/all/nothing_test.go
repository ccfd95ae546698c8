package all_test

import (
	"testing"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/collectortest"
)

// No check of any built-in collector passes on a host where what it reads
// is absent, empty or garbage.
func TestNeverPassOnNothing(t *testing.T) {
	for _, n := range collectors.Names() {
		c, _ := collectors.Get(n)
		t.Run(n, func(t *testing.T) { collectortest.NeverPassOnNothing(t, c) })
	}
}
