//go:build race

package store_test

// raceEnabled says the race detector is on: tests that run no goroutines
// of their own shrink what they replay under it.
const raceEnabled = true
