// Package config reads the agent's configuration file (/etc/annexa/agent.yaml).
// Unknown keys and bad values are errors that name the key and the line:
// a typo in a fleet-wide config must fail loudly on the first machine, not
// silently everywhere.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/internal/units"
)

// DefaultPath is where packages install the config.
const DefaultPath = "/etc/annexa/agent.yaml"

// Config is the agent's configuration.
type Config struct {
	// Server is the ingest server's URL; empty: the one remembered at enrollment.
	Server string `yaml:"server"`
	// CA is a PEM file to trust for the server; empty: the enrollment's, else system roots.
	CA       string   `yaml:"ca"`
	StateDir string   `yaml:"state_dir"`
	LogLevel string   `yaml:"log_level"`
	Outbox   Outbox   `yaml:"outbox"`
	Shipping Shipping `yaml:"shipping"`
	// Concurrency is how many collectors may run at once.
	Concurrency int                   `yaml:"concurrency"`
	Defaults    Schedule              `yaml:"defaults"`
	Collectors  map[string]*Collector `yaml:"collectors"`
	Plugins     []*Plugin             `yaml:"plugins"`
}

// Outbox bounds the on-disk queue.
type Outbox struct {
	Limit Size `yaml:"limit"`
}

// Shipping says how records travel to the server.
type Shipping struct {
	BatchSize  int      `yaml:"batch_size"`
	Interval   Duration `yaml:"interval"`
	MaxBackoff Duration `yaml:"max_backoff"`
	Timeout    Duration `yaml:"timeout"`
}

// Schedule is when and how long a collector runs.
type Schedule struct {
	Interval Duration `yaml:"interval"`
	Jitter   Duration `yaml:"jitter"`
	Timeout  Duration `yaml:"timeout"`
	// MaxOutput caps what one command of the collector may print.
	MaxOutput Size `yaml:"max_output"`
}

// Collector is one collector's entry.
type Collector struct {
	Enabled  *bool `yaml:"enabled"`
	Schedule `yaml:",inline"`
	// Settings is the collector's own block, decoded at load into the
	// collector's settings struct (see Known).
	Settings yaml.Node `yaml:"settings"`
	line     int
	decoded  collectors.Settings
}

// Known is what a config is checked against: each built-in collector's
// name and, for those that take settings, the function that makes their
// defaults (collectors.SettingsFactories()).
type Known map[string]func() collectors.Settings

// names lists the known collectors, sorted.
func (k Known) names() []string {
	out := make([]string, 0, len(k))
	for n := range k {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Plugin is an out-of-process collector: a binary pinned by its sha256.
type Plugin struct {
	Name     string `yaml:"name"`
	Path     string `yaml:"path"`
	SHA256   string `yaml:"sha256"`
	Schedule `yaml:",inline"`
	Settings map[string]any `yaml:"settings"`
	line     int
}

// UnmarshalYAML checks a plugin entry's keys and remembers its line.
func (p *Plugin) UnmarshalYAML(n *yaml.Node) error {
	if err := knownKeys(n, "a plugin", "name", "path", "sha256", "interval", "jitter", "timeout", "max_output", "settings"); err != nil {
		return err
	}
	type plain Plugin
	var pl plain
	if err := n.Decode(&pl); err != nil {
		return err
	}
	*p = Plugin(pl)
	p.line = n.Line
	return nil
}

// Line is the line of the plugin's entry in the config file.
func (p *Plugin) Line() int { return p.line }

// PluginSchedule is a plugin's schedule over the defaults.
func (c *Config) PluginSchedule(p *Plugin) Schedule {
	s := c.Defaults
	if p.Interval != 0 {
		s.Interval = p.Interval
	}
	if p.Jitter != 0 {
		s.Jitter = p.Jitter
	}
	if p.Timeout != 0 {
		s.Timeout = p.Timeout
	}
	return s
}

// On says whether the collector runs (default: yes).
func (c *Collector) On() bool { return c == nil || c.Enabled == nil || *c.Enabled }

// Duration and Size are the configuration's units (internal/units), the
// same the collectors' settings use.
type (
	Duration = units.Duration
	Size     = units.Size
)

// ParseSize parses a byte size with an optional unit.
func ParseSize(in string) (int64, error) { return units.ParseSize(in) }

// UnmarshalYAML remembers the collector's line for later errors.
func (c *Collector) UnmarshalYAML(n *yaml.Node) error {
	if err := knownKeys(n, "a collector", "enabled", "interval", "jitter", "timeout", "max_output", "settings"); err != nil {
		return err
	}
	type plain Collector
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*c = Collector(p)
	c.line = n.Line
	return nil
}

// knownKeys checks a mapping's keys: a custom unmarshaller does not inherit
// the decoder's strictness, so entries that have one check here.
func knownKeys(n *yaml.Node, what string, allowed ...string) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		ok := false
		for _, a := range allowed {
			ok = ok || a == k.Value
		}
		if !ok {
			return fmt.Errorf("line %d: unknown key %s (%s takes %s)", k.Line, k.Value, what, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// Default is the configuration with no file: the server remembered at
// enrollment and every built-in collector on its defaults.
func Default() *Config {
	return &Config{
		StateDir:    DefaultStateDir(),
		LogLevel:    "info",
		Outbox:      Outbox{Limit: 256 << 20},
		Shipping:    Shipping{BatchSize: 500, Interval: Duration(30 * time.Second), MaxBackoff: Duration(10 * time.Minute), Timeout: Duration(60 * time.Second)},
		Concurrency: 2,
		Defaults:    Schedule{Interval: Duration(time.Hour), Jitter: Duration(10 * time.Minute), Timeout: Duration(2 * time.Minute), MaxOutput: 16 << 20},
		Collectors:  map[string]*Collector{},
	}
}

// Load reads a config file over the defaults and validates it against the
// known collectors, decoding each collector's settings.
func Load(path string, known Known) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b, known)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse reads a config document over the defaults.
func Parse(b []byte, known Known) (*Config, error) {
	c := Default()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, errEOF(err)) {
		return nil, cleanYAMLError(err)
	}
	if err := c.validate(known); err != nil {
		return nil, err
	}
	return c, nil
}

func errEOF(err error) error {
	if err != nil && err.Error() == "EOF" {
		return err
	}
	return errors.New("not eof")
}

// cleanYAMLError turns "field x not found in type config.Config" into
// words about the file.
func cleanYAMLError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	var out []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if i := strings.Index(l, " not found in type "); i >= 0 {
			l = strings.Replace(l[:i], "field ", "unknown key ", 1)
		}
		out = append(out, l)
	}
	return errors.New(strings.Join(out, "; "))
}

func (c *Config) validate(known Known) error {
	var errs []string
	if c.Server != "" && !strings.HasPrefix(c.Server, "https://") && !strings.HasPrefix(c.Server, "http://") {
		errs = append(errs, fmt.Sprintf("server: %q is not an http(s) URL", c.Server))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Sprintf("log_level: %q (want debug, info, warn or error)", c.LogLevel))
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		errs = append(errs, fmt.Sprintf("concurrency: %d (want 1 to 64)", c.Concurrency))
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"shipping.interval", c.Shipping.Interval}, {"shipping.max_backoff", c.Shipping.MaxBackoff}, {"shipping.timeout", c.Shipping.Timeout}, {"defaults.timeout", c.Defaults.Timeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Sprintf("%s: must be above zero (leave it out for the default)", d.key))
		}
	}
	if c.Shipping.BatchSize < 1 || c.Shipping.BatchSize > 5000 {
		errs = append(errs, fmt.Sprintf("shipping.batch_size: %d (want 1 to 5000)", c.Shipping.BatchSize))
	}
	if c.Outbox.Limit != 0 && c.Outbox.Limit < 256<<10 {
		errs = append(errs, "outbox.limit: at least 256KiB (or 0 for no limit)")
	}
	names := map[string]bool{}
	for k := range known {
		names[k] = true
	}
	var keys []string
	for k := range c.Collectors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		col := c.Collectors[k]
		if !names[k] {
			line := 0
			if col != nil {
				line = col.line
			}
			errs = append(errs, fmt.Sprintf("line %d: collectors.%s: unknown collector (known: %s)", line, k, strings.Join(known.names(), ", ")))
			continue
		}
		if col != nil {
			if err := col.decode(k, known[k]); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if col != nil && col.Interval != 0 && col.Interval.Std() < time.Minute {
			errs = append(errs, fmt.Sprintf("line %d: collectors.%s.interval: under a minute", col.line, k))
		}
	}
	seen := map[string]bool{}
	for _, p := range c.Plugins {
		switch {
		case p == nil:
			errs = append(errs, "plugins: an empty entry")
			continue
		case p.Name == "" || strings.ContainsAny(p.Name, ". /"):
			errs = append(errs, fmt.Sprintf("line %d: plugins.name %q: want a plain name (the prefix of its check ids)", p.line, p.Name))
		case names[p.Name]:
			errs = append(errs, fmt.Sprintf("line %d: plugins.name %q is a built-in collector's name", p.line, p.Name))
		case seen[p.Name]:
			errs = append(errs, fmt.Sprintf("line %d: plugins.name %q listed twice", p.line, p.Name))
		}
		seen[p.Name] = true
		if p.Path == "" || !filepath.IsAbs(p.Path) {
			errs = append(errs, fmt.Sprintf("line %d: plugins.%s.path: want an absolute path", p.line, p.Name))
		}
		if len(p.SHA256) != 64 || strings.Trim(p.SHA256, "0123456789abcdef") != "" {
			errs = append(errs, fmt.Sprintf("line %d: plugins.%s.sha256: want the binary's hex sha256 (sha256sum %s)", p.line, p.Name, p.Path))
		}
		if p.Interval != 0 && p.Interval.Std() < time.Minute {
			errs = append(errs, fmt.Sprintf("line %d: plugins.%s.interval: under a minute", p.line, p.Name))
		}
	}
	if c.Defaults.Interval.Std() < time.Minute {
		errs = append(errs, "defaults.interval: under a minute")
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// ScheduleFor is a collector's schedule: its own settings over the defaults.
func (c *Config) ScheduleFor(name string) Schedule {
	s := c.Defaults
	if col := c.Collectors[name]; col != nil {
		if col.Interval != 0 {
			s.Interval = col.Interval
		}
		if col.Jitter != 0 {
			s.Jitter = col.Jitter
		}
		if col.Timeout != 0 {
			s.Timeout = col.Timeout
		}
		if col.MaxOutput != 0 {
			s.MaxOutput = col.MaxOutput
		}
	}
	return s
}

// Settings is a collector's settings as decoded at load; nil when the
// config gives none (the collector then runs on its defaults).
func (c *Config) Settings(name string) collectors.Settings {
	if col := c.Collectors[name]; col != nil && col.decoded != nil {
		return col.decoded
	}
	return nil
}

// Limits are the bounds of one run of a collector, from its schedule.
func (c *Config) Limits(name string) collectors.Limits {
	s := c.ScheduleFor(name)
	return collectors.Limits{Timeout: s.Timeout.Std(), MaxOutput: int64(s.MaxOutput)}
}

// Enabled says whether a collector runs.
func (c *Config) Enabled(name string) bool { return c.Collectors[name].On() }
