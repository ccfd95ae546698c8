package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/annexa-dev/annexa/agent/config"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/plugins/pluginapi"
)

// RunPlugin runs one plugin and appends a record per asset it reports. A
// plugin that crashes, hangs, is not the pinned binary or returns garbage
// costs an error record naming it (for its declared checks if it got as far
// as declaring them); the agent goes on, and the next cycle starts it anew.
func (a *Agent) RunPlugin(ctx context.Context, p *config.Plugin) error {
	a.refreshChecks(ctx)
	sched := a.cfg.PluginSchedule(p)
	out, err := runPluginHost(ctx, pluginapi.Spec{Name: p.Name, Path: p.Path, SHA256: p.SHA256, Timeout: sched.Timeout.Std(), Settings: p.Settings}, a.log)
	now := time.Now().UTC()
	host := evidence.HostAsset(a.id.AgentID)
	st := CollectorStatus{At: now, Results: map[string]string{}}
	var entries []chain.Entry
	if err != nil {
		st.Error = err.Error()
		a.log.Error("plugin failed", "plugin", p.Name, "err", err)
		version := "unknown"
		rs := []evidence.Result{{Check: evidence.PluginFailureCheck(p.Name), Status: evidence.Error, Reason: err.Error()}}
		if out != nil && out.Description != nil {
			version, rs = out.Description.Version, nil
			for _, c := range out.Description.Checks {
				rs = append(rs, evidence.Result{Check: c.ID, Status: evidence.Error, Reason: err.Error()})
			}
		}
		entries = append(entries, chain.Entry{Asset: host, Collector: p.Name, CollectorVersion: version, CollectedAt: now, Results: rs})
	} else {
		var grants map[evidence.Asset]bool
		for _, ar := range out.Assets {
			asset := ar.Asset
			if asset == "" {
				asset = host
			}
			results := ar.Results
			if asset != host {
				if grants == nil {
					grants = a.grants(ctx)
				}
				if !grants[asset] {
					// The server refuses records about assets this agent
					// holds no grant for, and a refused record would stall
					// the chain: say so on the host instead.
					results = notGranted(asset, ar.Results)
					asset = host
				}
			}
			entries = append(entries, chain.Entry{Asset: asset, Collector: p.Name, CollectorVersion: out.Description.Version, CollectedAt: now, Results: results})
		}
	}
	var storeErr error
	for _, e := range entries {
		s, err := a.append(e)
		if err != nil {
			storeErr = err
			a.log.Error("record not stored", "plugin", p.Name, "err", err)
			continue
		}
		st.Seq = s.Record.Predicate.Seq
		for _, r := range e.Results {
			st.Results[r.Check] = string(r.Status)
		}
	}
	if storeErr != nil && st.Error == "" {
		st.Error = storeErr.Error()
	}
	a.saveStatus(p.Name, st)
	return storeErr
}

// GrantsFile caches the external assets the server last said this agent
// may report on, for when the server cannot be asked.
const GrantsFile = "grants.json"

// grants asks the server which external assets this agent may report on,
// keeping the answer; when the server does not answer, the last answer
// kept stands (none, if it never answered).
func (a *Agent) grants(ctx context.Context) map[evidence.Asset]bool {
	path := filepath.Join(a.cfg.StateDir, GrantsFile)
	var list []evidence.Asset
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var resp struct {
		Assets []evidence.Asset `json:"assets"`
	}
	if err := a.client.Do(ctx, http.MethodGet, "/v1/agents/"+url.PathEscape(a.id.AgentID)+"/grants", nil, nil, &resp); err == nil {
		list = resp.Assets
		if err := saveJSON(path, list, 0o600); err != nil {
			a.log.Warn("grants not kept", "err", err)
		}
	} else {
		a.log.Warn("cannot ask the server for this agent's grants: using the last answer", "err", err)
		if b, err := os.ReadFile(path); err == nil {
			_ = json.Unmarshal(b, &list)
		}
	}
	out := make(map[evidence.Asset]bool, len(list))
	for _, x := range list {
		out[x] = true
	}
	return out
}

// notGranted turns a plugin's results about an asset the agent holds no
// grant for into error results on the agent's own host, naming the asset.
func notGranted(asset evidence.Asset, rs []evidence.Result) []evidence.Result {
	out := make([]evidence.Result, len(rs))
	for i, r := range rs {
		out[i] = evidence.Result{Check: r.Check, Status: evidence.Error,
			Reason: fmt.Sprintf("not reported: the plugin reported on %s, which this agent holds no grant for (an admin runs: annexa agent grant <agent-id> %s)", asset, asset)}
	}
	return out
}
