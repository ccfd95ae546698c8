package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/agent/config"
	"github.com/annexa-dev/annexa/plugins/pluginapi"
)

// PluginHostName is the helper that speaks go-plugin for the agent. It is
// a separate binary, installed beside annexa-agent, so that the daemon does
// not carry gRPC (about 9 MB of resident pages) while it idles.
const PluginHostName = "annexa-plugin-host"

func pluginHostPath() (string, error) {
	name := PluginHostName
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s is not installed beside annexa-agent nor on PATH: plugins cannot run", name)
	}
	return p, nil
}

// SettingsError is a plugin refusing the settings agent.yaml gives it.
type SettingsError struct {
	Plugin, Reason string
}

func (e *SettingsError) Error() string { return e.Reason }

// CheckPluginSettings has every configured plugin describe itself with its
// settings, as the agent does before it starts: a plugin that refuses its
// settings is a configuration error, named with its line, and the agent
// does not start. A plugin that cannot be run at all (not installed, not
// the pinned binary) is not a configuration error here: its runs record
// why, as error results.
func CheckPluginSettings(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	var errs []string
	for _, p := range cfg.Plugins {
		sched := cfg.PluginSchedule(p)
		_, err := runPluginHost(ctx, pluginapi.Spec{Name: p.Name, Path: p.Path, SHA256: p.SHA256, Timeout: min(sched.Timeout.Std(), 30*time.Second),
			Settings: p.Settings, DescribeOnly: true}, log)
		var se *SettingsError
		if errors.As(err, &se) {
			errs = append(errs, fmt.Sprintf("line %d: plugins.%s.settings: %s", p.Line(), p.Name, se.Reason))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// runPluginHost runs one plugin through annexa-plugin-host.
func runPluginHost(ctx context.Context, spec pluginapi.Spec, log *slog.Logger) (*pluginapi.Outcome, error) {
	host, err := pluginHostPath()
	if err != nil {
		return nil, err
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 2 * time.Minute
	}
	// The host enforces the plugin's timeout; this one only catches a host
	// that hangs itself.
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout+15*time.Second)
	defer cancel()
	req, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, host)
	cmd.Stdin = bytes.NewReader(req)
	var stdout bytes.Buffer
	cmd.Stdout = &limitWriter{w: &stdout, n: 32 << 20}
	cmd.Stderr = &slogForwarder{log: log}
	runErr := cmd.Run()
	var reply pluginapi.HostReply
	if err := json.Unmarshal(stdout.Bytes(), &reply); err != nil {
		if runErr != nil {
			return nil, fmt.Errorf("%s: %w", PluginHostName, runErr)
		}
		return nil, fmt.Errorf("%s: unreadable reply: %w", PluginHostName, err)
	}
	if reply.Error != "" {
		if reply.RefusedSettings {
			return reply.Outcome, &SettingsError{Plugin: spec.Name, Reason: reply.Error}
		}
		return reply.Outcome, errors.New(reply.Error)
	}
	if reply.Outcome == nil || reply.Outcome.Description == nil {
		return nil, fmt.Errorf("%s: empty reply", PluginHostName)
	}
	return reply.Outcome, nil
}

type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, errors.New("plugin host reply too large")
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}

// slogForwarder re-logs the host's JSON log lines into the agent's log.
type slogForwarder struct {
	log     *slog.Logger
	partial []byte
}

func (f *slogForwarder) Write(p []byte) (int, error) {
	f.partial = append(f.partial, p...)
	for {
		i := bytes.IndexByte(f.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := bytes.TrimSpace(f.partial[:i])
		f.partial = f.partial[i+1:]
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if json.Unmarshal(line, &m) != nil {
			f.log.Info(string(line))
			continue
		}
		msg, _ := m["msg"].(string)
		level, _ := m["level"].(string)
		var attrs []any
		for k, v := range m {
			if k != "msg" && k != "level" && k != "time" {
				attrs = append(attrs, k, v)
			}
		}
		var l slog.Level
		_ = l.UnmarshalText([]byte(strings.ToUpper(level)))
		f.log.Log(context.Background(), l, msg, attrs...)
	}
}
