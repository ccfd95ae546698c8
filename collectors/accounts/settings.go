package accounts

import (
	"errors"
	"fmt"

	"github.com/annexa-dev/annexa/collectors"
)

// Settings are the accounts collector's part of agent.yaml.
type Settings struct {
	// AllowedAdmins are the accounts that may hold administrator rights;
	// empty: every administrator is listed, none fails.
	AllowedAdmins []string `yaml:"allowed_admins"`
	// MinLength is the shortest password the policy may allow.
	MinLength int `yaml:"min_length"`
}

// DefaultSettings implements collectors.Configurable.
func (Collector) DefaultSettings() collectors.Settings { return defaults() }

func defaults() *Settings { return &Settings{MinLength: 12} }

// Validate implements collectors.Settings.
func (s *Settings) Validate() error {
	var errs []error
	if s.MinLength < 1 || s.MinLength > 256 {
		errs = append(errs, fmt.Errorf("min_length: %d, want 1 to 256", s.MinLength))
	}
	for _, a := range s.AllowedAdmins {
		if a == "" {
			errs = append(errs, errors.New("allowed_admins: an empty name"))
		}
	}
	return errors.Join(errs...)
}
