// Package agentcmd is the annexa-agent command line.
package agentcmd

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/annexa-dev/annexa/agent/config"
	"github.com/annexa-dev/annexa/collectors"
	_ "github.com/annexa-dev/annexa/collectors/all" // the built-in collectors
	"github.com/annexa-dev/annexa/internal/atomicfile"
	"github.com/annexa-dev/annexa/internal/buildinfo"
)

// common are the flags that locate the config and state, and what
// loading them found.
type common struct {
	configPath  string
	stateDir    string
	managedPath string
	// managed is the configuration profile's settings, if one is
	// installed; sources says where each setting in force came from.
	managed *config.Managed
	sources config.Sources
}

func (c *common) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.configPath, "config", "", "config file (default "+config.DefaultPath+" if it exists)")
	cmd.Flags().StringVar(&c.stateDir, "state", "", "state directory: key, identity, outbox (default from the config, else "+config.DefaultStateDir()+")")
	cmd.Flags().StringVar(&c.managedPath, "managed-prefs", defaultManagedPath(), "managed preferences plist an MDM profile installs (macOS); its settings take precedence over the config file's")
}

// load reads the config (or the defaults), lays a configuration profile's
// settings over it, and applies --state.
func (c *common) load() (*config.Config, error) {
	path := c.configPath
	if path == "" {
		if _, err := os.Stat(config.DefaultPath); err == nil {
			path = config.DefaultPath
		}
	}
	var err error
	if c.managedPath != "" {
		if c.managed, err = config.ReadManaged(c.managedPath); err != nil {
			return nil, err
		}
	}
	cfg, sources, err := config.LoadLayered(path, c.managed, collectors.SettingsFactories())
	if err != nil {
		return nil, err
	}
	c.sources = sources
	if c.stateDir != "" {
		cfg.StateDir = c.stateDir
		sources["state_dir"] = "--state"
	}
	if c.managed != nil && c.managed.CACertificate != "" && cfg.CA == "" {
		// A profile's CA is kept beside the agent's state, where the
		// client reads CA files from.
		ca, err := keepManagedCA(cfg.StateDir, c.managed.CACertificate)
		if err != nil {
			return nil, err
		}
		cfg.CA = ca
		sources["ca"] = config.SourceManaged
	}
	return cfg, nil
}

// describeSources says where the settings in force came from, by source:
// what the profile set, what the file set, and that the rest are defaults.
func (c *common) describeSources() string {
	by := map[string][]string{}
	for k, src := range c.sources {
		if src != config.SourceDefault {
			by[src] = append(by[src], k)
		}
	}
	var parts []string
	label := func(src string) string {
		switch src {
		case config.SourceManaged:
			return "managed preferences (" + c.managed.Path + ")"
		case config.SourceFile:
			path := c.configPath
			if path == "" {
				path = config.DefaultPath
			}
			return "agent.yaml (" + path + ")"
		}
		return src
	}
	srcs := make([]string, 0, len(by))
	for src := range by {
		srcs = append(srcs, src)
	}
	sort.Strings(srcs)
	for _, src := range srcs {
		keys := by[src]
		sort.Strings(keys)
		parts = append(parts, label(src)+": "+strings.Join(keys, ", "))
	}
	parts = append(parts, "everything else: defaults")
	return strings.Join(parts, "; ")
}

// keepManagedCA writes a profile's CA certificate into the state directory
// (when it is not there already as it is) and returns its path.
func keepManagedCA(stateDir, pem string) (string, error) {
	path := filepath.Join(stateDir, "managed-ca.crt")
	if b, err := os.ReadFile(path); err == nil && string(b) == pem {
		return path, nil
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", fmt.Errorf("the profile's CA certificate: %w", err)
	}
	if err := atomicfile.Write(path, []byte(pem), 0o600); err != nil {
		return "", fmt.Errorf("the profile's CA certificate: %w", err)
	}
	return path, nil
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
