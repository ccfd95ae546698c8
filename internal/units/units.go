// Package units holds the duration and size types of Annexa's YAML
// configuration ("90s", "7d", "256MiB"), shared by the agent's own settings
// and the collectors' settings so both read the same words.
package units

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration reads "90s", "1h", "7d".
type Duration time.Duration

// ParseDuration reads a duration, with "d" for days besides Go's units.
func ParseDuration(in string) (time.Duration, error) {
	s := strings.TrimSpace(in)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if v, err := strconv.Atoi(days); err == nil && v >= 0 {
			return time.Duration(v) * 24 * time.Hour, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a duration (e.g. 30s, 15m, 6h, 7d)", in)
	}
	return v, nil
}

// UnmarshalYAML parses a duration and names the line on error.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration (e.g. 30s, 15m, 6h, 7d)", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// Std is the time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String prints the duration as Go does.
func (d Duration) String() string { return time.Duration(d).String() }

// Size reads "256MiB", "10MB", "1048576".
type Size int64

// UnmarshalYAML parses a byte size and names the line on error.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a size (e.g. 256MiB, 10MB, 1048576)", n.Line)
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = Size(v)
	return nil
}

// ParseSize parses a byte size with an optional unit.
func ParseSize(in string) (int64, error) {
	s := strings.TrimSpace(in)
	units := []struct {
		suffix string
		mul    int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	mul := int64(1)
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mul = strings.TrimSpace(num), u.mul
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a size (e.g. 256MiB, 10MB, 1048576)", in)
	}
	return v * mul, nil
}
