package agentcmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/template"

	"github.com/kardianos/service"
	"github.com/spf13/cobra"

	"github.com/annexa-dev/annexa/agent"
	"github.com/annexa-dev/annexa/agent/config"
)

// serviceName is the unit / launchd label / SCM service name.
const serviceName = "annexa-agent"

// unitTemplate is the systemd unit `service install` writes: restart on
// failure, low CPU and I/O priority, and the filesystem read-only but for
// the state directory (collectors only read; the outbox writes).
const unitTemplate = `[Unit]
Description=Annexa evidence agent (ISO/IEC 27001 Annex A)
Documentation=https://github.com/annexa-dev/annexa
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
# Unattended enrollment, outside the sandbox ("+"): reads /etc/annexa/enroll.env
# (or the environment) and deletes the file once enrolled; a no-op after that.
ExecStartPre=+{{.Exec}} enroll --unattended --config {{.Config}} --state {{.State}}
ExecStart={{.Exec}} run --config {{.Config}} --state {{.State}}
Restart=on-failure
RestartSec=30
Nice=10
IOSchedulingClass=idle
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={{.State}}
ProtectHome=read-only
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes
UMask=0077

[Install]
WantedBy=multi-user.target
`

type unitParams struct{ Exec, Config, State string }

// SystemdUnit renders the unit for the given binary, config and state.
func SystemdUnit(exec, configPath, stateDir string) (string, error) {
	t, err := template.New("unit").Parse(unitTemplate)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	err = t.Execute(&b, unitParams{Exec: exec, Config: configPath, State: stateDir})
	return b.String(), err
}

// program adapts the agent to kardianos/service.
type program struct {
	cfg    *config.Config
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *program) Start(service.Service) error {
	a, err := agent.Open(p.cfg, p.log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		defer a.Close()
		_ = a.Run(ctx)
	}()
	return nil
}

func (p *program) Stop(service.Service) error {
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
	return nil
}

func interactive() bool { return service.Interactive() }

// ServiceSpec is the agent's service as every installer registers it:
// `service install` (systemd, launchd, the Windows SCM) and the Windows MSI's
// ServiceInstall table are both made from it, so they cannot drift apart.
type ServiceSpec struct {
	Name        string
	DisplayName string
	Description string
	Arguments   []string
}

// Service is the service definition for a config file and state directory.
func Service(configPath, stateDir string) ServiceSpec {
	return ServiceSpec{
		Name:        serviceName,
		DisplayName: "Annexa agent",
		Description: "Collects signed ISO/IEC 27001 Annex A evidence and ships it to an Annexa server",
		Arguments:   []string{"run", "--config", configPath, "--state", stateDir},
	}
}

func serviceConfig(configPath, stateDir string) (*service.Config, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	exe, _ = filepath.EvalSymlinks(exe)
	spec := Service(configPath, stateDir)
	sc := &service.Config{
		Name:        spec.Name,
		DisplayName: spec.DisplayName,
		Description: spec.Description,
		Executable:  exe,
		Arguments:   spec.Arguments,
		Option:      service.KeyValue{},
	}
	if runtime.GOOS == "linux" {
		unit, err := SystemdUnit(exe, configPath, stateDir)
		if err != nil {
			return nil, err
		}
		sc.Option["SystemdScript"] = unit
	}
	if runtime.GOOS == "darwin" {
		sc.Option["RunAtLoad"] = true
		sc.Option["KeepAlive"] = true
	}
	return sc, nil
}

func runAsService(cfg *config.Config, c common, log *slog.Logger) error {
	sc, err := serviceConfig(orDefault(c.configPath, config.DefaultPath), cfg.StateDir)
	if err != nil {
		return err
	}
	s, err := service.New(&program{cfg: cfg, log: log}, sc)
	if err != nil {
		return err
	}
	return s.Run()
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// serviceManagerRunning refuses to "install" into an init system nobody
// runs: kardianos/service falls back to writing a SysV script on any Linux,
// which on a container or a machine without an init would look installed
// and never start.
func serviceManagerRunning() error {
	if runtime.GOOS != "linux" {
		return nil
	}
	comm, _ := os.ReadFile("/proc/1/comm")
	pid1 := strings.TrimSpace(string(comm))
	switch service.ChosenSystem().String() {
	case "linux-systemd":
		if _, err := os.Stat("/run/systemd/system"); err == nil {
			return nil
		}
	case "linux-openrc", "linux-upstart", "linux-rcs", "linux-procd":
		return nil
	case "unix-systemv":
		if pid1 == "init" {
			return nil
		}
	}
	return fmt.Errorf("no service manager is running on this machine (PID 1 is %q; systemd, OpenRC and SysV init are absent): run `annexa-agent run` under your own supervisor, or print the systemd unit with `annexa-agent service unit`", pid1)
}

func newService() *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use:       "service install|uninstall|start|stop|status|unit",
		Short:     "Manage the agent as a system service (systemd, launchd, Windows SCM, SysV/OpenRC)",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"install", "uninstall", "start", "stop", "status", "unit"},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := c.load()
			if err != nil {
				return err
			}
			configPath := orDefault(c.configPath, config.DefaultPath)
			if abs, err := filepath.Abs(configPath); err == nil {
				configPath = abs
			}
			stateDir, _ := filepath.Abs(cfg.StateDir)
			sc, err := serviceConfig(configPath, stateDir)
			if err != nil {
				return err
			}
			if args[0] == "unit" {
				fmt.Fprint(cmd.OutOrStdout(), sc.Option["SystemdScript"])
				if runtime.GOOS != "linux" {
					unit, err := SystemdUnit(sc.Executable, configPath, stateDir)
					if err != nil {
						return err
					}
					fmt.Fprint(cmd.OutOrStdout(), unit)
				}
				return nil
			}
			s, err := service.New(&program{cfg: cfg, log: logger(cfg.LogLevel)}, sc)
			if err != nil {
				return err
			}
			switch args[0] {
			case "status":
				st, err := s.Status()
				if errors.Is(err, service.ErrNotInstalled) {
					fmt.Fprintln(cmd.OutOrStdout(), "not installed")
					return &exitError{code: 3, err: errors.New("service not installed")}
				}
				if err != nil {
					return fmt.Errorf("service status (%s): %w", service.ChosenSystem().String(), err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), map[service.Status]string{service.StatusRunning: "running", service.StatusStopped: "stopped"}[st])
				return nil
			case "install", "uninstall", "start", "stop":
				if err := serviceManagerRunning(); err != nil {
					return fmt.Errorf("service %s: %w", args[0], err)
				}
				if args[0] == "install" {
					if _, err := os.Stat(configPath); err != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "note: %s does not exist yet; the agent will use its defaults until it does\n", configPath)
					}
				}
				if err := service.Control(s, args[0]); err != nil {
					return fmt.Errorf("service %s (%s): %w", args[0], service.ChosenSystem().String(), err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "service %s: done (%s)\n", args[0], service.ChosenSystem().String())
				return nil
			}
			return fmt.Errorf("unknown action %q: want install, uninstall, start, stop, status or unit", args[0])
		},
	}
	c.register(cmd)
	return cmd
}
