// Command annexa-plugin-host runs one plugin for the agent: it reads a
// pluginapi.Spec as JSON on stdin, runs the plugin over go-plugin (checksum
// pinned, with a timeout), logs as JSON lines on stderr, and prints a
// pluginapi.HostReply on stdout. It is a separate binary so that the agent,
// which idles most of its life, does not carry gRPC in its memory.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/annexa-dev/annexa/internal/buildinfo"
	"github.com/annexa-dev/annexa/plugins"
	"github.com/annexa-dev/annexa/plugins/pluginapi"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "--version" || os.Args[1] == "--help") {
		fmt.Println(buildinfo.String("annexa-plugin-host"))
		fmt.Println("Runs one Annexa plugin for annexa-agent: a pluginapi.Spec as JSON on stdin, a reply on stdout.")
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var spec pluginapi.Spec
	reply := pluginapi.HostReply{}
	if err := json.NewDecoder(os.Stdin).Decode(&spec); err != nil {
		reply.Error = "annexa-plugin-host: bad request: " + err.Error()
	} else {
		log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		out, err := plugins.Run(ctx, spec, log)
		reply.Outcome = out
		if err != nil {
			reply.Error = err.Error()
			reply.RefusedSettings = errors.Is(err, plugins.ErrSettings)
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(reply); err != nil {
		os.Exit(1)
	}
}
