// Package pluginapi holds the plugin protocol's plain types, without the
// gRPC machinery, so that the agent can run plugins through
// annexa-plugin-host without linking gRPC itself (its idle memory stays
// small).
package pluginapi

import (
	"time"

	"github.com/annexa-dev/annexa/evidence"
)

// Description is what a plugin says about itself.
type Description struct {
	Name    string           `json:"name"`
	Version string           `json:"version"`
	Checks  []evidence.Check `json:"checks"`
}

// Request carries the plugin's settings from the agent's config.
type Request struct {
	Settings map[string]any `json:"settings,omitempty"`
}

// AssetResults are one asset's results. An empty asset means the host the
// agent runs on.
type AssetResults struct {
	Asset   evidence.Asset    `json:"asset,omitempty"`
	Results []evidence.Result `json:"results"`
}

// CollectResponse is what Collect returns.
type CollectResponse struct {
	Assets []AssetResults `json:"assets"`
}

// Spec is a plugin as the agent's config names it.
type Spec struct {
	Name     string         `json:"name"`
	Path     string         `json:"path"`
	SHA256   string         `json:"sha256"` // expected hex sha256 of the binary: a changed binary is refused
	Timeout  time.Duration  `json:"timeout"`
	Settings map[string]any `json:"settings,omitempty"`
	// DescribeOnly asks the plugin for its description only: what the
	// agent does at start to have each plugin check its settings.
	DescribeOnly bool `json:"describe_only,omitempty"`
}

// Outcome is a plugin run: what it said it checks, and its results.
type Outcome struct {
	Description *Description   `json:"description,omitempty"`
	Assets      []AssetResults `json:"assets,omitempty"`
}

// HostReply is what annexa-plugin-host prints: the outcome, and the error
// that stopped the run, if any (the outcome may still carry the plugin's
// description).
type HostReply struct {
	Outcome *Outcome `json:"outcome,omitempty"`
	Error   string   `json:"error,omitempty"`
	// RefusedSettings says the error is the plugin refusing its settings
	// (a configuration mistake), not a failure to run it.
	RefusedSettings bool `json:"refused_settings,omitempty"`
}
