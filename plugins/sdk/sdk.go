// Package sdk is how a third party writes an Annexa plugin: implement
// plugins.Collector (or fill a Plugin), and call Serve from main.
package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-plugin"

	"github.com/annexa-dev/annexa/internal/buildinfo"
	"github.com/annexa-dev/annexa/plugins"
)

// Plugin is a Collector built from functions, for plugins that need no type
// of their own.
type Plugin struct {
	Info plugins.Description
	// Run collects with the settings from the agent's config.
	Run func(ctx context.Context, settings map[string]any) ([]plugins.AssetResults, error)
}

// Describe implements plugins.Collector.
func (p Plugin) Describe(context.Context, plugins.Request) (*plugins.Description, error) {
	return &p.Info, nil
}

// Collect implements plugins.Collector.
func (p Plugin) Collect(ctx context.Context, req plugins.Request) (*plugins.CollectResponse, error) {
	assets, err := p.Run(ctx, req.Settings)
	if err != nil {
		return nil, err
	}
	return &plugins.CollectResponse{Assets: assets}, nil
}

// Serve runs c as a plugin until the agent is done with it. It is the whole
// of a plugin's main.
func Serve(c plugins.Collector) {
	if len(os.Args) > 1 && (os.Args[1] == "--version" || os.Args[1] == "--help" || os.Args[1] == "-h") {
		// A person at a terminal, not the agent: say what this is.
		fmt.Println(buildinfo.String(filepath.Base(os.Args[0])))
		fmt.Println("An Annexa plugin: annexa-agent runs it through annexa-plugin-host, pinned by its sha256 in agent.yaml.")
		return
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugins.Handshake,
		Plugins:         map[string]plugin.Plugin{plugins.PluginName: &plugins.GRPCPlugin{Impl: c}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}

// realStderr is the process's stderr before plugin.Serve redirects it: the
// agent reads structured log lines from it.
var realStderr = os.Stderr

// Logger is the plugin's log: lines go to the agent's own log, tagged with
// the plugin's name, at their level.
func Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(realStderr, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		// go-plugin reads hclog's JSON keys.
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.LevelKey:
				return slog.String("@level", strings.ToLower(a.Value.String()))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			case slog.TimeKey:
				return slog.Attr{Key: "@timestamp", Value: a.Value}
			}
			return a
		},
	}))
}
