package plugins

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/plugins/pluginapi"
)

// Spec and Outcome are the runner's input and output; see package pluginapi.
type (
	Spec    = pluginapi.Spec
	Outcome = pluginapi.Outcome
)

// ErrChecksum is wrapped when the binary is not the one the config pins.
var ErrChecksum = errors.New("plugin binary checksum mismatch")

// Run starts the plugin, asks it to describe itself and collect, and stops
// it. Everything it returns is validated: a result for an undeclared check,
// a bad status or asset, is an error naming the plugin. The plugin is a new
// process each run, so one that crashed or hung last time starts clean.
func Run(ctx context.Context, spec Spec, log *slog.Logger) (*Outcome, error) {
	sum, err := hex.DecodeString(spec.SHA256)
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("plugin %s: sha256 %q is not a hex sha256", spec.Name, spec.SHA256)
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	logw := &logForwarder{log: log.With("plugin", spec.Name)}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          map[string]plugin.Plugin{PluginName: &GRPCPlugin{}},
		Cmd:              exec.Command(spec.Path),
		SecureConfig:     &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     spec.Timeout,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: spec.Name, Output: logw, JSONFormat: true, Level: hclog.Debug}),
		Stderr:           logw,
		SyncStderr:       logw,
		SyncStdout:       logw,
	})
	defer client.Kill()
	type res struct {
		out *Outcome
		err error
	}
	done := make(chan res, 1)
	go func() {
		out, err := talk(ctx, client, spec)
		done <- res{out, err}
	}()
	select {
	case r := <-done:
		if r.err != nil && errors.Is(r.err, plugin.ErrChecksumsDoNotMatch) {
			return nil, fmt.Errorf("plugin %s: %w: %s is not the binary the config pins", spec.Name, ErrChecksum, spec.Path)
		}
		return r.out, r.err
	case <-ctx.Done():
		client.Kill()
		return nil, fmt.Errorf("plugin %s did not finish within %s", spec.Name, spec.Timeout)
	}
}

// ErrSettings is a plugin refusing the settings agent.yaml gives it.
var ErrSettings = errors.New("settings refused")

func talk(ctx context.Context, client *plugin.Client, spec Spec) (*Outcome, error) {
	rpc, err := client.Client()
	if err != nil {
		return nil, fmt.Errorf("plugin %s: start: %w", spec.Name, err)
	}
	raw, err := rpc.Dispense(PluginName)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", spec.Name, err)
	}
	c, ok := raw.(Collector)
	if !ok {
		return nil, fmt.Errorf("plugin %s: does not serve a collector", spec.Name)
	}
	req := Request{Settings: spec.Settings}
	desc, err := c.Describe(ctx, req)
	if err != nil {
		// Describe only states what the plugin checks and checks its
		// settings: a plugin that will not describe itself refuses them.
		return nil, fmt.Errorf("plugin %s: %w: %w", spec.Name, ErrSettings, err)
	}
	if err := validateDescription(desc); err != nil {
		return nil, fmt.Errorf("plugin %s: bad description: %w", spec.Name, err)
	}
	if spec.DescribeOnly {
		return &Outcome{Description: desc}, nil
	}
	resp, err := c.Collect(ctx, req)
	if err != nil {
		return &Outcome{Description: desc}, fmt.Errorf("plugin %s: %w", spec.Name, err)
	}
	if err := validateResults(desc, resp); err != nil {
		return &Outcome{Description: desc}, fmt.Errorf("plugin %s returned garbage: %w", spec.Name, err)
	}
	return &Outcome{Description: desc, Assets: resp.Assets}, nil
}

func validateDescription(d *Description) error {
	if d == nil || d.Name == "" || d.Version == "" {
		return errors.New("no name or version")
	}
	if len(d.Checks) == 0 {
		return errors.New("declares no checks")
	}
	for _, c := range d.Checks {
		if !strings.HasPrefix(c.ID, d.Name+".") {
			return fmt.Errorf("check %q does not start with the plugin's name %q", c.ID, d.Name+".")
		}
	}
	return nil
}

func validateResults(d *Description, resp *CollectResponse) error {
	if resp == nil || len(resp.Assets) == 0 {
		return errors.New("no results")
	}
	declared := map[string]bool{}
	for _, c := range d.Checks {
		declared[c.ID] = true
	}
	for _, a := range resp.Assets {
		if a.Asset != "" {
			if _, err := evidence.ParseAsset(string(a.Asset)); err != nil {
				return err
			}
		}
		if len(a.Results) == 0 {
			return fmt.Errorf("asset %q: no results", a.Asset)
		}
		for _, r := range a.Results {
			if !declared[r.Check] {
				return fmt.Errorf("result for undeclared check %q", r.Check)
			}
			if err := r.Validate(); err != nil {
				return err
			}
			if r.Reason == "" {
				return fmt.Errorf("check %s: result without a reason", r.Check)
			}
		}
	}
	return nil
}

// logForwarder turns the plugin's log lines (go-plugin's JSON lines, or
// plain stderr) into the agent's structured log. go-plugin writes to it
// from its stderr reader and from its own logger at once, hence the lock.
type logForwarder struct {
	log     *slog.Logger
	mu      sync.Mutex
	partial []byte
}

func (w *logForwarder) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := strings.IndexByte(string(w.partial), '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
		if line == "" {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			msg, _ := m["@message"].(string)
			level, _ := m["@level"].(string)
			attrs := []any{}
			for k, v := range m {
				if !strings.HasPrefix(k, "@") {
					attrs = append(attrs, k, v)
				}
			}
			switch level {
			case "error":
				w.log.Error(msg, attrs...)
			case "warn":
				w.log.Warn(msg, attrs...)
			case "debug", "trace":
				w.log.Debug(msg, attrs...)
			default:
				w.log.Info(msg, attrs...)
			}
			continue
		}
		w.log.Info(line)
	}
	return len(p), nil
}

// FileSHA256 is the hex sha256 of a file: what to put in the config.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, bufio.NewReader(f)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
