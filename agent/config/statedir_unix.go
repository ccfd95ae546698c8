//go:build !windows

package config

// DefaultStateDir is where the agent keeps its key, identity and outbox.
func DefaultStateDir() string { return "/var/lib/annexa" }
