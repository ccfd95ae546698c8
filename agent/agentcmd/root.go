// Package agentcmd is the annexa-agent command line.
package agentcmd

import (
	"errors"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/annexa-dev/annexa/agent/config"
	"github.com/annexa-dev/annexa/collectors"
	_ "github.com/annexa-dev/annexa/collectors/all" // the built-in collectors
	"github.com/annexa-dev/annexa/internal/buildinfo"
)

// common are the flags that locate the config and state.
type common struct {
	configPath string
	stateDir   string
}

func (c *common) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.configPath, "config", "", "config file (default "+config.DefaultPath+" if it exists)")
	cmd.Flags().StringVar(&c.stateDir, "state", "", "state directory: key, identity, outbox (default from the config, else "+config.DefaultStateDir()+")")
}

// load reads the config (or the defaults) and applies --state.
func (c *common) load() (*config.Config, error) {
	var cfg *config.Config
	var err error
	switch {
	case c.configPath != "":
		cfg, err = config.Load(c.configPath, collectors.SettingsFactories())
	default:
		if _, statErr := os.Stat(config.DefaultPath); statErr == nil {
			cfg, err = config.Load(config.DefaultPath, collectors.SettingsFactories())
		} else {
			cfg = config.Default()
		}
	}
	if err != nil {
		return nil, err
	}
	if c.stateDir != "" {
		cfg.StateDir = c.stateDir
	}
	return cfg, nil
}

func logger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode is the process exit code for err.
func ExitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// New returns the annexa-agent command tree.
func New() *cobra.Command {
	root := &cobra.Command{
		Use:   "annexa-agent",
		Short: "Annexa agent: collects signed ISO/IEC 27001 evidence from this host",
		Long: `annexa-agent runs collectors on this host, signs every record with a key that
never leaves it, keeps records in a crash-safe outbox and ships them to an
Annexa server.

First run ` + "`annexa-agent collect`" + ` to see what it finds, then
` + "`annexa-agent enroll --server URL --token TOKEN`" + ` and ` + "`annexa-agent service install`" + `.`,
		Version:       buildinfo.String("annexa-agent"),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(newEnroll(), newRun(), newCollect(), newCapture(), newStatus(), newRotate(), newService())
	return root
}

// configPathOrDefault names the config file in messages.
func (c *common) configPathOrDefault() string {
	if c.configPath != "" {
		return c.configPath
	}
	return config.DefaultPath
}
