// Package agentcmd is the annexa-agent command line.
package agentcmd

import (
	"github.com/spf13/cobra"

	"github.com/annexa-dev/annexa/internal/buildinfo"
)

// New returns the annexa-agent command tree.
func New() *cobra.Command {
	root := &cobra.Command{
		Use:           "annexa-agent",
		Short:         "Annexa agent: collects signed ISO/IEC 27001 evidence from this host",
		Version:       buildinfo.String("annexa-agent"),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	return root
}
