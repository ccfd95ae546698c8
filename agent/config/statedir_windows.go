//go:build windows

package config

import (
	"os"
	"path/filepath"
)

// DefaultStateDir is where the agent keeps its key, identity and outbox.
func DefaultStateDir() string {
	if pd := os.Getenv("ProgramData"); pd != "" {
		return filepath.Join(pd, "Annexa")
	}
	return `C:\ProgramData\Annexa`
}
