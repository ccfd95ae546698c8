// Package collectors holds the registry of built-in collectors. Each
// collector is a package of its own under collectors/ that registers itself
// in init (node_exporter's pattern); collectors/all imports them all.
package collectors

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

// Collector decides a set of checks on a host.
type Collector interface {
	// Name is the collector's registry name, the prefix of its check ids.
	Name() string
	// Version changes when the collector's decisions could change.
	Version() string
	// Checks declares what the collector decides. The Annex A mapping of
	// each check lives in configs/mapping.yaml.
	Checks() []evidence.Check
	// Collect returns one result per declared check. It must not guess:
	// what it cannot decide is an error result with the reason.
	Collect(ctx context.Context, h *host.Host, settings Settings) ([]evidence.Result, error)
}

// Incremental is a collector that reads something incrementally, such as
// an authentication log: each run reports only what happened since the
// last. It gets the cursor its last stored record ended at (nil the first
// time) and returns the one it reached. The agent stores the new cursor
// only once the record carrying these results is durably in the outbox, so
// a crash in between re-reads the same events rather than skipping them,
// and a stored record never has its events counted again.
type Incremental interface {
	Collector
	CollectSince(ctx context.Context, h *host.Host, settings Settings, cursor []byte) (results []evidence.Result, next []byte, err error)
}

// Settings are a collector's settings: a struct of its own with yaml tags
// (Telegraf's pattern). The agent decodes the collector's `settings:` block
// of agent.yaml into a value holding the defaults, strictly (an unknown
// key, a wrong type or shape is an error naming the collector, the key and
// the line), then calls Validate; a bad value stops the agent at start,
// never silently falls back to a default.
type Settings interface {
	// Validate checks ranges and relations the types cannot express. A
	// zero is either meaningful (and honoured) or refused here.
	Validate() error
}

// Configurable is a collector that takes settings.
type Configurable interface {
	Collector
	// DefaultSettings returns a fresh settings value holding the defaults.
	DefaultSettings() Settings
}

// SettingsOf returns the settings a collector was given, or its defaults
// when it was given none (a dry run without a config, a test).
func SettingsOf[S Settings](given Settings, defaults func() S) S {
	if s, ok := given.(S); ok {
		return s
	}
	return defaults()
}

// SettingsFactories maps every registered collector's name to the function
// that makes its default settings (nil for a collector that takes none):
// what the agent's config decodes each settings block into.
func SettingsFactories() map[string]func() Settings {
	mu.Lock()
	defer mu.Unlock()
	out := make(map[string]func() Settings, len(registry))
	for name, c := range registry {
		out[name] = nil
		if cc, ok := c.(Configurable); ok {
			out[name] = cc.DefaultSettings
		}
	}
	return out
}

var (
	mu       sync.Mutex
	registry = map[string]Collector{}
)

// Register adds a collector; it panics on a duplicate name, a programming
// error caught by the first test run.
func Register(c Collector) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[c.Name()]; dup {
		panic(fmt.Sprintf("collector %q registered twice", c.Name()))
	}
	registry[c.Name()] = c
}

// Get returns a registered collector.
func Get(name string) (Collector, bool) {
	mu.Lock()
	defer mu.Unlock()
	c, ok := registry[name]
	return c, ok
}

// Names lists the registered collectors, sorted.
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ErrorResults is what a collector that failed as a whole contributes: an
// error result for each of its checks, naming the reason.
func ErrorResults(c Collector, reason string) []evidence.Result {
	checks := c.Checks()
	out := make([]evidence.Result, len(checks))
	for i, ch := range checks {
		out[i] = evidence.Result{Check: ch.ID, Status: evidence.Error, Reason: reason}
	}
	return out
}

// Complete makes sure every declared check has exactly one result: a
// missing one becomes an error result, an undeclared one is dropped. A
// collector bug then shows as an error in the evidence, not as silence.
func Complete(c Collector, rs []evidence.Result) []evidence.Result {
	have := map[string]evidence.Result{}
	for _, r := range rs {
		if _, dup := have[r.Check]; !dup {
			have[r.Check] = r
		}
	}
	var out []evidence.Result
	for _, ch := range c.Checks() {
		r, ok := have[ch.ID]
		if !ok {
			r = evidence.Result{Check: ch.ID, Status: evidence.Error, Reason: "collector " + c.Name() + " returned no result for this check"}
		}
		if err := r.Validate(); err != nil {
			r = evidence.Result{Check: ch.ID, Status: evidence.Error, Reason: "collector " + c.Name() + " returned an invalid result: " + err.Error()}
		}
		out = append(out, r)
	}
	return out
}
