package agent

import (
	"context"
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
		rs := []evidence.Result{{Check: p.Name + ".plugin", Status: evidence.Error, Reason: err.Error()}}
		if out != nil && out.Description != nil {
			version, rs = out.Description.Version, nil
			for _, c := range out.Description.Checks {
				rs = append(rs, evidence.Result{Check: c.ID, Status: evidence.Error, Reason: err.Error()})
			}
		}
		entries = append(entries, chain.Entry{Asset: host, Collector: p.Name, CollectorVersion: version, CollectedAt: now, Results: rs})
	} else {
		for _, ar := range out.Assets {
			asset := ar.Asset
			if asset == "" {
				asset = host
			}
			entries = append(entries, chain.Entry{Asset: asset, Collector: p.Name, CollectorVersion: out.Description.Version, CollectedAt: now, Results: ar.Results})
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
