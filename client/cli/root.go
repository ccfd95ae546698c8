// Package cli is the annexa command line used by security teams and
// auditors: it queries the server and verifies evidence bundles.
package cli

import (
	"fmt"
	"os"
	"strings"

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
	// The environment is read after the flags, not as their defaults:
	// --help would otherwise print the token, a secret, as a default.
	pf.StringVar(&g.server, "server", "", "server URL, e.g. https://annexa.example:8443 (default $ANNEXA_SERVER)")
	pf.StringVar(&g.token, "token", "", "API token (default $ANNEXA_TOKEN)")
	pf.StringVar(&g.ca, "ca", "", "CA certificate to trust for the server (default $ANNEXA_CA)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		for _, f := range []struct {
			dst *string
			env string
		}{{&g.server, "ANNEXA_SERVER"}, {&g.token, "ANNEXA_TOKEN"}, {&g.ca, "ANNEXA_CA"}} {
			if *f.dst == "" {
				*f.dst = os.Getenv(f.env)
			}
		}
		return checkOutput(cmd, g.output)
	}
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table, json or csv")
	root.AddCommand(newPerson(g), newAttest(g), newAttestations(g), newScope(g), newSoA(g), newWebhook(g), newHosts(g), newHost(g), newControls(g), newFrameworks(g), newControl(g), newEvidence(g), newHistory(g),
		newToken(g), newAgent(g), newLog(g), newExport(g), newVerify(g))
	return root
}

// outputs annotates a command with the -o formats it prints; a command
// without the annotation prints all three.
func outputs(formats ...string) map[string]string {
	return map[string]string{"outputs": strings.Join(formats, ",")}
}

// checkOutput refuses an -o the command cannot honour, instead of
// printing something else under its name.
func checkOutput(cmd *cobra.Command, output string) error {
	allowed := "table,json,csv"
	if a, ok := cmd.Annotations["outputs"]; ok {
		allowed = a
	}
	for _, f := range strings.Split(allowed, ",") {
		if output == f {
			return nil
		}
	}
	return fmt.Errorf("-o %s: %s prints %s only", output, cmd.CommandPath(), strings.ReplaceAll(allowed, ",", " or "))
}
