// Package evidence holds Annexa's evidence model: checks, results, assets and
// the signed record (an in-toto Statement v1 carrying Annexa's predicate),
// together with signing and opening records as DSSE envelopes.
//
// Everything else in Annexa imports this package; it imports nothing of ours
// except its own subpackages (dsse, chain, catalog).
package evidence

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Status is the outcome of one check.
type Status string

// The four outcomes a check can have. There is no "unknown": a check that
// could not decide says error, with the reason.
const (
	Pass          Status = "pass"
	Fail          Status = "fail"
	Error         Status = "error"
	NotApplicable Status = "not_applicable"
)

// Valid reports whether s is one of the four statuses.
func (s Status) Valid() bool {
	switch s {
	case Pass, Fail, Error, NotApplicable:
		return true
	}
	return false
}

// ParseStatus parses a status name.
func ParseStatus(s string) (Status, error) {
	st := Status(s)
	if !st.Valid() {
		return "", fmt.Errorf("unknown status %q (want pass, fail, error or not_applicable)", s)
	}
	return st, nil
}

// Check describes one automated test of a control, as a collector declares it.
type Check struct {
	ID        string   `json:"id"`
	Title     string   `json:"title"`
	Controls  []string `json:"controls"`
	Platforms []string `json:"platforms,omitempty"`
	// Freshness is how long a result stays current; older results are stale.
	Freshness Duration `json:"freshness"`
}

// Result is the outcome of one check on one asset, with the raw observations
// it was decided from so that an auditor can see why.
type Result struct {
	Check        string          `json:"check"`
	Status       Status          `json:"status"`
	Reason       string          `json:"reason"`
	Observations json.RawMessage `json:"observations,omitempty"`
}

// Observe marshals v as a result's observations. A value that cannot be
// marshalled is recorded as its error, so that a result is never dropped for
// a bad observation.
func Observe(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"observation_error": err.Error()})
	}
	return b
}

// Validate checks the fields every result must have.
// PluginFailureCheck is the check id an agent reports a plugin under when
// the plugin failed before saying what it checks: "<plugin>.plugin".
func PluginFailureCheck(plugin string) string { return plugin + ".plugin" }

// IsPluginFailureCheck says whether check is of that form.
func IsPluginFailureCheck(check string) bool {
	name, ok := strings.CutSuffix(check, ".plugin")
	if !ok || name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' {
			return false
		}
	}
	return true
}

// MaxCheckLen bounds a check id.
const MaxCheckLen = 128

func (r *Result) Validate() error {
	if r.Check == "" {
		return errors.New("result without a check id")
	}
	if len(r.Check) > MaxCheckLen {
		return fmt.Errorf("check id %.40q…: over %d bytes", r.Check, MaxCheckLen)
	}
	for _, c := range r.Check {
		if c <= ' ' || c == 0x7f {
			return fmt.Errorf("check id %q: no spaces or control characters", r.Check)
		}
	}
	if !r.Status.Valid() {
		return fmt.Errorf("check %s: unknown status %q", r.Check, r.Status)
	}
	if len(r.Observations) > 0 && !json.Valid(r.Observations) {
		return fmt.Errorf("check %s: observations are not valid JSON", r.Check)
	}
	return nil
}

// Asset names what evidence is about: "host:<agent-id>",
// "aws-account:<id>", and so on.
type Asset string

// HostAsset is the asset of an agent's own host.
func HostAsset(agentID string) Asset { return Asset("host:" + agentID) }

// MaxAssetLen bounds an external asset's name.
const MaxAssetLen = 256

// ValidExternalAsset checks an asset an agent can be granted: well formed,
// and not a host (a host asset belongs to its own agent only).
func ValidExternalAsset(a Asset) error {
	if _, err := ParseAsset(string(a)); err != nil {
		return err
	}
	if a.Kind() == "host" {
		return fmt.Errorf("asset %q: a host belongs to its own agent and cannot be granted", a)
	}
	if len(a) > MaxAssetLen {
		return fmt.Errorf("asset %.40q…: over %d bytes", a, MaxAssetLen)
	}
	for _, r := range a {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("asset %q: control characters are not allowed", a)
		}
	}
	return nil
}

// MayReport is the rule for which assets an agent's records may be about:
// its own host, and the external assets it holds a grant for.
func MayReport(agentID string, asset Asset, granted func(Asset) bool) bool {
	return asset == HostAsset(agentID) || (asset.Kind() != "host" && granted(asset))
}

// Kind is the part before the colon ("host", "aws-account").
func (a Asset) Kind() string {
	k, _, _ := strings.Cut(string(a), ":")
	return k
}

// ParseAsset checks the kind:id form.
func ParseAsset(s string) (Asset, error) {
	k, id, ok := strings.Cut(s, ":")
	if !ok || k == "" || id == "" {
		return "", fmt.Errorf("asset %q: want kind:id, e.g. host:<agent-id>", s)
	}
	for _, r := range k {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' {
			return "", fmt.Errorf("asset %q: kind may hold only a-z, 0-9, - and _", s)
		}
	}
	return Asset(s), nil
}

// Duration is a time.Duration that reads and writes as "24h", "90m".
type Duration time.Duration

// MarshalJSON writes the duration in Go's notation.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration in Go's notation.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalText lets YAML and flags read the same notation.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration in Go's notation.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// NonNil returns s, or an empty slice when s is nil, so that observations
// say [] (looked, found none) where JSON would otherwise say null.
func NonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
