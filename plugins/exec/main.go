// Command annexa-plugin-exec runs a customer's own check (a script or a
// program) and turns the JSON it prints into Annexa results: the quickest
// way to add a check of your own. See README.md for the settings and the
// output schema.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/plugins"
	"github.com/annexa-dev/annexa/plugins/sdk"
)

const version = "1.0.0"

func main() { sdk.Serve(execPlugin{}) }

// settings are the plugin's part of agent.yaml.
type settings struct {
	Name    string           `json:"name"`
	Command string           `json:"command"`
	Args    []string         `json:"args"`
	Timeout string           `json:"timeout"`
	Checks  []evidence.Check `json:"checks"`
}

func parseSettings(m map[string]any) (*settings, error) {
	b, _ := json.Marshal(m)
	var s settings
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	if s.Name == "" || s.Command == "" || len(s.Checks) == 0 {
		return nil, errors.New("settings: name, command and checks are required")
	}
	for _, c := range s.Checks {
		if !strings.HasPrefix(c.ID, s.Name+".") {
			return nil, fmt.Errorf("settings: check %q must start with %q", c.ID, s.Name+".")
		}
	}
	return &s, nil
}

type execPlugin struct{}

func (execPlugin) Describe(_ context.Context, req plugins.Request) (*plugins.Description, error) {
	s, err := parseSettings(req.Settings)
	if err != nil {
		return nil, err
	}
	return &plugins.Description{Name: s.Name, Version: version, Checks: s.Checks}, nil
}

// output is what the program prints on stdout.
type output struct {
	Asset   string            `json:"asset,omitempty"`
	Results []evidence.Result `json:"results"`
}

func (execPlugin) Collect(ctx context.Context, req plugins.Request) (*plugins.CollectResponse, error) {
	s, err := parseSettings(req.Settings)
	if err != nil {
		return nil, err
	}
	timeout := time.Minute
	if s.Timeout != "" {
		if timeout, err = time.ParseDuration(s.Timeout); err != nil {
			return nil, fmt.Errorf("settings: timeout: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, s.Command, s.Args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	out, reason := decide(s, stdout.Bytes(), stderr.String(), runErr)
	if reason != "" {
		// Never a guess: every declared check is an error saying why.
		var errs []evidence.Result
		for _, c := range s.Checks {
			errs = append(errs, evidence.Result{Check: c.ID, Status: evidence.Error, Reason: reason})
		}
		return &plugins.CollectResponse{Assets: []plugins.AssetResults{{Results: errs}}}, nil
	}
	return &plugins.CollectResponse{Assets: []plugins.AssetResults{{Asset: evidence.Asset(out.Asset), Results: out.Results}}}, nil
}

// decide validates the program's output against the declared checks. It
// returns the output, or a reason why it cannot be evidence.
func decide(s *settings, stdout []byte, stderr string, runErr error) (*output, string) {
	if runErr != nil {
		msg := strings.TrimSpace(stderr)
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		return nil, fmt.Sprintf("%s failed: %v %s", s.Command, runErr, msg)
	}
	var out output
	dec := json.NewDecoder(bytes.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Sprintf("%s printed no valid result JSON: %v", s.Command, err)
	}
	if out.Asset != "" {
		if _, err := evidence.ParseAsset(out.Asset); err != nil {
			return nil, fmt.Sprintf("%s printed a bad asset: %v", s.Command, err)
		}
	}
	declared := map[string]bool{}
	for _, c := range s.Checks {
		declared[c.ID] = true
	}
	seen := map[string]bool{}
	for _, r := range out.Results {
		if !declared[r.Check] {
			return nil, fmt.Sprintf("%s reported an undeclared check %q", s.Command, r.Check)
		}
		if err := r.Validate(); err != nil {
			return nil, fmt.Sprintf("%s printed a bad result: %v", s.Command, err)
		}
		if r.Reason == "" {
			return nil, fmt.Sprintf("%s printed check %s without a reason", s.Command, r.Check)
		}
		seen[r.Check] = true
	}
	for _, c := range s.Checks {
		if !seen[c.ID] {
			return nil, fmt.Sprintf("%s printed no result for check %s", s.Command, c.ID)
		}
	}
	return &out, ""
}
