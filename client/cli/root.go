// Package cli is the annexa command line used by security teams and
// auditors: it queries the server and verifies evidence bundles.
package cli

import (
	"github.com/spf13/cobra"

	"github.com/annexa-dev/annexa/internal/buildinfo"
)

// New returns the annexa command tree.
func New() *cobra.Command {
	root := &cobra.Command{
		Use:           "annexa",
		Short:         "Query an Annexa server and verify evidence bundles",
		Version:       buildinfo.String("annexa"),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	return root
}
