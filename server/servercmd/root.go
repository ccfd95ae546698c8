// Package servercmd is the annexa-server command line.
package servercmd

import (
	"github.com/spf13/cobra"

	"github.com/annexa-dev/annexa/internal/buildinfo"
)

// New returns the annexa-server command tree.
func New() *cobra.Command {
	root := &cobra.Command{
		Use:           "annexa-server",
		Short:         "Annexa ingest server: verifies, logs and aggregates signed evidence",
		Version:       buildinfo.String("annexa-server"),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(newServe())
	return root
}
