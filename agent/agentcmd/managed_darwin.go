//go:build darwin

package agentcmd

import "github.com/annexa-dev/annexa/agent/config"

// On macOS the agent reads the configuration profile an MDM installed.
func defaultManagedPath() string { return config.ManagedPath }
