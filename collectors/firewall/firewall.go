// Package firewall checks the host firewall (8.20): that one is on, and
// that inbound traffic is denied unless allowed. Linux reads the nftables
// ruleset (`nft -j list ruleset`), else iptables (`iptables-save`);
// iptables-nft rules show in both, and so do the rules ufw and firewalld
// load. Reading rulesets needs root. macOS reads the application firewall
// (socketfilterfw), Windows Defender Firewall's profiles
// (Get-NetFirewallProfile).
package firewall

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

func init() { collectors.Register(Collector{}) }

// Collector is the firewall collector.
type Collector struct{}

// Name implements collectors.Collector.
func (Collector) Name() string { return "firewall" }

// Version implements collectors.Collector.
func (Collector) Version() string { return "1.0.0" }

const (
	checkEnabled = "firewall.enabled"
	checkDeny    = "firewall.inbound_default_deny"
)

// Checks implements collectors.Collector.
func (Collector) Checks() []evidence.Check {
	fresh := evidence.Duration(26 * time.Hour)
	return []evidence.Check{
		{ID: checkEnabled, Title: "Host firewall on", Controls: []string{"8.20"}, Platforms: []string{"linux", "darwin", "windows"}, Freshness: fresh},
		{ID: checkDeny, Title: "Inbound traffic denied by default", Controls: []string{"8.20"}, Platforms: []string{"linux", "darwin", "windows"}, Freshness: fresh},
	}
}

// inputChain is what matters of one input-hook base chain.
type inputChain struct {
	Family      string `json:"family"`
	Table       string `json:"table"`
	Name        string `json:"name"`
	Policy      string `json:"policy"`
	Rules       int    `json:"rules"`
	DropsLast   bool   `json:"ends_in_unconditional_drop"`
	DropsAnyway bool   `json:"has_drop_or_reject"`
}

// Collect implements collectors.Collector.
func (c Collector) Collect(ctx context.Context, h *host.Host, _ collectors.Settings) ([]evidence.Result, error) {
	switch h.OS {
	case "darwin":
		return collectDarwin(ctx, h), nil
	case "windows":
		return collectWindows(ctx, h), nil
	case "linux":
	default:
		return collectors.ErrorResults(c, "firewall: no reader for "+h.OS), nil
	}
	var tried []string
	missing := 0
	if out, err := h.Run(ctx, "nft", "-j", "list", "ruleset"); err == nil {
		chains, err := parseNft(out)
		if err == nil {
			return decide("nft -j list ruleset", chains), nil
		}
		tried = append(tried, "nft -j list ruleset: "+err.Error())
	} else {
		tried = append(tried, cause("nft -j list ruleset", err))
		missing += btoi(host.IsNotExist(err))
	}
	if out, err := h.Run(ctx, "iptables-save"); err == nil {
		return decide("iptables-save", parseIptables(out)), nil
	} else {
		tried = append(tried, cause("iptables-save", err))
		missing += btoi(host.IsNotExist(err))
	}
	if missing == 2 {
		return collectors.ErrorResults(c, "cannot read the firewall rules: neither nft nor iptables-save is installed"), nil
	}
	return collectors.ErrorResults(c, "cannot read the firewall rules: "+strings.Join(tried, "; ")), nil
}

// cause names why a command gave no ruleset: not installed, denied (and
// what it said), or failed otherwise, instead of guessing "root needed".
func cause(cmd string, err error) string {
	var xe *host.ExitError
	switch {
	case host.IsNotExist(err):
		return strings.Fields(cmd)[0] + " is not installed"
	case errors.As(err, &xe):
		msg := xe.Stderr
		low := strings.ToLower(msg)
		if strings.Contains(low, "operation not permitted") || strings.Contains(low, "permission denied") || strings.Contains(low, "must be root") {
			return fmt.Sprintf("%s was denied (exit %d: %s): reading the ruleset needs CAP_NET_ADMIN", cmd, xe.Code, msg)
		}
		if msg == "" {
			msg = "no message"
		}
		return fmt.Sprintf("%s exited %d: %s", cmd, xe.Code, msg)
	}
	return fmt.Sprintf("%s: %v", cmd, err)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// parseNft reads nft's JSON: base chains on the input hook, their policy
// and whether a rule drops or rejects (at the end, unconditionally).
func parseNft(out []byte) ([]inputChain, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("not nft JSON: %w", err)
	}
	if len(doc.Nftables) == 0 {
		return nil, fmt.Errorf("empty nft output")
	}
	type chain struct {
		Family, Table, Name, Hook, Policy string
	}
	type rule struct {
		Family, Table, Chain string
		Expr                 []map[string]json.RawMessage
	}
	var chains []*inputChain
	byKey := map[string]*inputChain{}
	for _, obj := range doc.Nftables {
		if raw, ok := obj["chain"]; ok {
			var c chain
			if json.Unmarshal(raw, &c) == nil && c.Hook == "input" {
				ic := &inputChain{Family: c.Family, Table: c.Table, Name: c.Name, Policy: c.Policy}
				chains = append(chains, ic)
				byKey[c.Family+"/"+c.Table+"/"+c.Name] = ic
			}
		}
		if raw, ok := obj["rule"]; ok {
			var r rule
			if json.Unmarshal(raw, &r) != nil {
				continue
			}
			ic := byKey[r.Family+"/"+r.Table+"/"+r.Chain]
			if ic == nil {
				continue
			}
			ic.Rules++
			verdict, conditional := "", false
			for _, e := range r.Expr {
				for k := range e {
					switch k {
					case "drop", "reject":
						verdict = k
					case "accept":
						verdict = ""
					case "match", "jump", "goto":
						conditional = true
					}
				}
			}
			ic.DropsAnyway = ic.DropsAnyway || verdict != ""
			ic.DropsLast = verdict != "" && !conditional
		}
	}
	out2 := make([]inputChain, len(chains))
	for i, c := range chains {
		out2[i] = *c
	}
	return out2, nil
}

// parseIptables reads iptables-save's filter table INPUT chain.
func parseIptables(out []byte) []inputChain {
	var chains []inputChain
	var cur *inputChain
	var last string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "*filter":
			chains = append(chains, inputChain{Family: "ip", Table: "filter", Name: "INPUT", Policy: "accept"})
			cur = &chains[len(chains)-1]
		case strings.HasPrefix(line, "*"):
			cur = nil
		case cur != nil && strings.HasPrefix(line, ":INPUT "):
			if f := strings.Fields(line); len(f) >= 2 {
				cur.Policy = strings.ToLower(f[1])
			}
		case cur != nil && strings.HasPrefix(line, "-A INPUT "):
			cur.Rules++
			last = line
			if strings.Contains(line, "-j DROP") || strings.Contains(line, "-j REJECT") {
				cur.DropsAnyway = true
			}
			cur.DropsLast = (last == "-A INPUT -j DROP" || strings.HasPrefix(last, "-A INPUT -j REJECT"))
		}
	}
	return chains
}

func decide(source string, chains []inputChain) []evidence.Result {
	obs := evidence.Observe(map[string]any{"source": source, "input_chains": chains})
	enabled := evidence.Result{Check: checkEnabled, Observations: obs}
	deny := evidence.Result{Check: checkDeny, Observations: obs}
	var denying, active []string
	for _, c := range chains {
		name := c.Family + " " + c.Table + " " + c.Name
		if c.Policy == "drop" || c.DropsLast {
			denying = append(denying, name)
		}
		if c.Policy == "drop" || c.DropsAnyway {
			active = append(active, name)
		}
	}
	switch {
	case len(chains) == 0:
		enabled.Status, enabled.Reason = evidence.Fail, "no input filtering is loaded ("+source+" shows no input chain)"
	case len(active) == 0:
		enabled.Status, enabled.Reason = evidence.Fail, fmt.Sprintf("%d input chain(s), but none drops anything: every policy is accept", len(chains))
	default:
		enabled.Status, enabled.Reason = evidence.Pass, "input filtering in "+strings.Join(active, ", ")
	}
	if len(denying) > 0 {
		deny.Status, deny.Reason = evidence.Pass, "inbound denied by default in "+strings.Join(denying, ", ")
	} else {
		deny.Status, deny.Reason = evidence.Fail, "no input chain denies by default (policy drop or a final unconditional drop)"
	}
	return []evidence.Result{enabled, deny}
}
