package inventory

import (
	"fmt"

	"github.com/annexa-dev/annexa/collectors"
)

// Settings are the inventory collector's part of agent.yaml.
type Settings struct {
	// MaxPackages bounds the software list a record carries.
	MaxPackages int `yaml:"max_packages"`
}

// DefaultSettings implements collectors.Configurable.
func (Collector) DefaultSettings() collectors.Settings { return defaults() }

func defaults() *Settings { return &Settings{MaxPackages: 20000} }

// Validate implements collectors.Settings.
func (s *Settings) Validate() error {
	if s.MaxPackages < 1 {
		return fmt.Errorf("max_packages: %d, want at least 1", s.MaxPackages)
	}
	return nil
}
