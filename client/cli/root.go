// Package cli is the annexa command line used by security teams and
// auditors: it queries the server and verifies evidence bundles.
package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/internal/buildinfo"
)

// globals are the connection flags every server command shares.
type globals struct {
	server, token, ca, output string
}

func (g *globals) client() (*client.Client, error) {
	return client.New(client.Options{Server: g.server, Credential: g.token, CAFile: g.ca, UserAgent: buildinfo.String("annexa")})
}

// New returns the annexa command tree.
func New() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "annexa",
		Short: "Query an Annexa server and verify evidence bundles",
		Long: `annexa queries an Annexa server's compliance state and manages its tokens and agents.

The server URL, API token and CA certificate come from --server, --token and
--ca, or from ANNEXA_SERVER, ANNEXA_TOKEN and ANNEXA_CA.`,
		Version:       buildinfo.String("annexa"),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", os.Getenv("ANNEXA_SERVER"), "server URL, e.g. https://annexa.example:8443 (ANNEXA_SERVER)")
	pf.StringVar(&g.token, "token", os.Getenv("ANNEXA_TOKEN"), "API token (ANNEXA_TOKEN)")
	pf.StringVar(&g.ca, "ca", os.Getenv("ANNEXA_CA"), "CA certificate to trust for the server (ANNEXA_CA)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table, json or csv")
	root.AddCommand(newHosts(g), newHost(g), newControls(g), newControl(g), newEvidence(g), newHistory(g),
		newToken(g), newAgent(g), newLog(g), newExport(g), newVerify(g))
	return root
}
