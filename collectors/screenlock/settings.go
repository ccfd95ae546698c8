package screenlock

import (
	"fmt"

	"github.com/annexa-dev/annexa/collectors"
)

// Settings are the screen_lock collector's part of agent.yaml.
type Settings struct {
	// MaxIdleMinutes is the longest idle time before the screen locks.
	MaxIdleMinutes int `yaml:"max_idle_minutes"`
}

// DefaultSettings implements collectors.Configurable.
func (Collector) DefaultSettings() collectors.Settings { return defaults() }

func defaults() *Settings { return &Settings{MaxIdleMinutes: 15} }

// Validate implements collectors.Settings.
func (s *Settings) Validate() error {
	if s.MaxIdleMinutes < 1 || s.MaxIdleMinutes > 1440 {
		return fmt.Errorf("max_idle_minutes: %d, want 1 to 1440", s.MaxIdleMinutes)
	}
	return nil
}
