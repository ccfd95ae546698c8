//go:build windows

package agentcmd

import (
	"path/filepath"

	"github.com/annexa-dev/annexa/agent/config"
)

func defaultEnrollFile() string { return filepath.Join(config.DefaultStateDir(), "enroll.env") }
