package patchlevel

import (
	"errors"
	"fmt"

	"github.com/annexa-dev/annexa/collectors"
)

// Settings are the patch_level collector's part of agent.yaml.
type Settings struct {
	// MaxPending is how many pending updates pending_updates tolerates;
	// 0 means none.
	MaxPending int `yaml:"max_pending"`
	// MaxDays is how long ago the last upgrade may have been; 0 means
	// today.
	MaxDays int `yaml:"max_days"`
	// SupportedMacOS lists the macOS majors still receiving security
	// updates (Apple publishes no end-of-life dates).
	SupportedMacOS []string `yaml:"supported_macos"`
}

// DefaultSettings implements collectors.Configurable.
func (Collector) DefaultSettings() collectors.Settings { return defaults() }

func defaults() *Settings { return &Settings{MaxDays: 30} }

// Validate implements collectors.Settings.
func (s *Settings) Validate() error {
	var errs []error
	if s.MaxPending < 0 {
		errs = append(errs, fmt.Errorf("max_pending: %d, want 0 or more", s.MaxPending))
	}
	if s.MaxDays < 0 || s.MaxDays > 3650 {
		errs = append(errs, fmt.Errorf("max_days: %d, want 0 to 3650", s.MaxDays))
	}
	for _, v := range s.SupportedMacOS {
		if v == "" {
			errs = append(errs, errors.New("supported_macos: an empty version"))
		}
	}
	return errors.Join(errs...)
}
