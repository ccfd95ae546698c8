package accesslogs

import (
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/internal/units"
)

// Settings are the access_logs collector's part of agent.yaml.
type Settings struct {
	// Path is the authentication log to read; empty: auth.log or secure,
	// else the journal.
	Path string `yaml:"path"`
	// Lookback is how far back a run without a cursor reads.
	Lookback units.Duration `yaml:"lookback"`
	// BruteForceFailures failed logins within BruteForceWindow from one
	// source make a burst.
	BruteForceFailures int            `yaml:"brute_force_failures"`
	BruteForceWindow   units.Duration `yaml:"brute_force_window"`
	// PrivilegedUsers may use sudo/su; anyone else who does fails
	// privileged_use. Empty: every use is reported, none fails.
	PrivilegedUsers []string `yaml:"privileged_users"`
	// MaxLogSilence is how old the log's newest entry may be before
	// logging_persistent says nothing is being logged.
	MaxLogSilence units.Duration `yaml:"max_log_silence"`
}

// DefaultSettings implements collectors.Configurable.
func (Collector) DefaultSettings() collectors.Settings { return defaults() }

func defaults() *Settings {
	return &Settings{Lookback: units.Duration(24 * time.Hour), BruteForceFailures: 10, BruteForceWindow: units.Duration(5 * time.Minute),
		MaxLogSilence: units.Duration(48 * time.Hour)}
}

// Validate implements collectors.Settings.
func (s *Settings) Validate() error {
	var errs []error
	if s.Path != "" && !path.IsAbs(s.Path) {
		errs = append(errs, fmt.Errorf("path: %q is not an absolute path", s.Path))
	}
	if s.Lookback <= 0 {
		errs = append(errs, errors.New("lookback: must be above zero"))
	}
	if s.BruteForceWindow <= 0 {
		errs = append(errs, errors.New("brute_force_window: must be above zero"))
	}
	if s.MaxLogSilence <= 0 {
		errs = append(errs, errors.New("max_log_silence: must be above zero"))
	}
	if s.BruteForceFailures < 1 {
		errs = append(errs, fmt.Errorf("brute_force_failures: %d, want at least 1", s.BruteForceFailures))
	}
	return errors.Join(errs...)
}
