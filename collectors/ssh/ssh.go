// Package ssh checks the OpenSSH server's configuration: no root login, no
// password authentication, modern ciphers only.
//
// The effective configuration comes from `sshd -T` when it can run (root);
// otherwise the config files are parsed as sshd reads them: first value
// wins, Include expanded. Match blocks that loosen a setting for some users
// are found in the files either way, because `sshd -T` alone does not show
// them.
package ssh

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

func init() { collectors.Register(Collector{}) }

// Collector is the ssh collector.
type Collector struct{}

// Name implements collectors.Collector.
func (Collector) Name() string { return "ssh" }

// Version implements collectors.Collector.
func (Collector) Version() string { return "1.0.0" }

const (
	checkRoot     = "ssh.root_login"
	checkPassword = "ssh.password_auth"
	checkCiphers  = "ssh.ciphers"
)

// Checks implements collectors.Collector.
func (Collector) Checks() []evidence.Check {
	fresh := evidence.Duration(26 * time.Hour)
	all := []string{"linux", "darwin", "freebsd"}
	return []evidence.Check{
		{ID: checkRoot, Title: "sshd refuses root login", Controls: []string{"8.5", "8.2", "8.9"}, Platforms: all, Freshness: fresh},
		{ID: checkPassword, Title: "sshd refuses password and keyboard-interactive authentication", Controls: []string{"8.5", "8.9"}, Platforms: all, Freshness: fresh},
		{ID: checkCiphers, Title: "sshd offers only modern ciphers, MACs and key exchanges", Controls: []string{"8.20", "8.9"}, Platforms: all, Freshness: fresh},
	}
}

// Weak algorithms, after CIS's OpenSSH guidance: CBC modes, 3DES, RC4,
// Blowfish, CAST; MD5, SHA-1 and 64-bit-tag MACs; SHA-1 key exchanges.
var weakCipher = []string{"-cbc", "3des", "arcfour", "blowfish", "cast128", "rijndael-cbc"}
var weakMAC = []string{"md5", "hmac-sha1", "umac-64", "ripemd160", "-96"}
var weakKex = []string{"diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1", "gss-gex-sha1", "gss-group1-sha1", "gss-group14-sha1"}

// config is the effective global configuration, lower-case keys.
type config struct {
	source   string
	values   map[string]string
	matches  []matchSetting // settings inside Match blocks
	files    []string
	warnings []string
}

type matchSetting struct {
	Match string `json:"match"`
	Line  string `json:"line"`
	File  string `json:"file"`
}

// Collect implements collectors.Collector.
func (c Collector) Collect(ctx context.Context, h *host.Host, settings collectors.Settings) ([]evidence.Result, error) {
	cfgPath := collectors.SettingsOf(settings, defaults).Config
	if !h.Exists(cfgPath) {
		if _, err := h.Run(ctx, "sshd", "-V"); host.IsNotExist(err) {
			return notApplicable(c, "no OpenSSH server: neither "+cfgPath+" nor sshd is present"), nil
		}
	}
	cfg, err := effective(ctx, h, cfgPath)
	if err != nil {
		return collectors.ErrorResults(c, err.Error()), nil
	}
	return []evidence.Result{rootLogin(cfg), passwordAuth(cfg), ciphers(cfg)}, nil
}

func notApplicable(c Collector, reason string) []evidence.Result {
	var out []evidence.Result
	for _, ch := range c.Checks() {
		out = append(out, evidence.Result{Check: ch.ID, Status: evidence.NotApplicable, Reason: reason})
	}
	return out
}

func effective(ctx context.Context, h *host.Host, cfgPath string) (*config, error) {
	files := &config{values: map[string]string{}}
	fileErr := parseFile(h, cfgPath, files, 0, "")
	out, err := h.Run(ctx, "sshd", "-T", "-f", cfgPath)
	if err == nil && len(bytes.TrimSpace(out)) > 0 {
		cfg := &config{source: "sshd -T -f " + cfgPath, values: parseDashT(out), matches: files.matches, files: files.files}
		if _, ok := cfg.values["permitrootlogin"]; ok {
			return cfg, nil
		}
		files.warnings = append(files.warnings, "sshd -T output lacked permitrootlogin; read the files instead")
	} else if err != nil {
		files.warnings = append(files.warnings, "sshd -T: "+err.Error())
	}
	if fileErr != nil {
		return nil, fmt.Errorf("cannot read the sshd configuration: %w (and %s)", fileErr, strings.Join(files.warnings, "; "))
	}
	files.source = "config files " + strings.Join(files.files, ", ")
	// sshd's compiled-in defaults (OpenSSH 7.0 and later) for what no file set.
	for k, v := range map[string]string{"permitrootlogin": "prohibit-password", "passwordauthentication": "yes", "kbdinteractiveauthentication": "yes"} {
		if _, ok := files.values[k]; !ok {
			files.values[k] = v + " (default)"
		}
	}
	return files, nil
}

func parseDashT(out []byte) map[string]string {
	v := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		k, val, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok {
			continue
		}
		k = strings.ToLower(k)
		if _, seen := v[k]; !seen {
			v[k] = strings.TrimSpace(val)
		}
	}
	return v
}

// parseFile reads an sshd_config as sshd does: keywords are
// case-insensitive, the first value obtained wins, Include is expanded in
// place (relative paths under /etc/ssh), and settings after a Match line
// apply only to that match.
func parseFile(h *host.Host, p string, cfg *config, depth int, match string) error {
	if depth > 8 {
		return fmt.Errorf("%s: Include nested too deep", p)
	}
	b, err := h.ReadFile(p)
	if err != nil {
		return err
	}
	cfg.files = append(cfg.files, p)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v := splitKeyword(line)
		switch k {
		case "match":
			match = v
			continue
		case "include":
			for _, pat := range strings.Fields(v) {
				if !path.IsAbs(pat) {
					pat = path.Join("/etc/ssh", pat)
				}
				inc, _ := h.Glob(pat)
				sort.Strings(inc)
				for _, f := range inc {
					if err := parseFile(h, f, cfg, depth+1, match); err != nil {
						cfg.warnings = append(cfg.warnings, err.Error())
					}
				}
			}
			continue
		}
		if match != "" {
			cfg.matches = append(cfg.matches, matchSetting{Match: match, Line: line, File: p})
			continue
		}
		if _, seen := cfg.values[k]; !seen {
			cfg.values[k] = v
		}
	}
	return sc.Err()
}

func splitKeyword(line string) (string, string) {
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return strings.ToLower(line), ""
	}
	v := strings.TrimLeft(line[i:], " \t=")
	return strings.ToLower(line[:i]), strings.TrimSpace(v)
}

func value(cfg *config, k string) string {
	return strings.TrimSuffix(strings.ToLower(cfg.values[k]), " (default)")
}

func (cfg *config) observe(keys ...string) map[string]any {
	obs := map[string]any{"source": cfg.source}
	set := map[string]string{}
	for _, k := range keys {
		if v, ok := cfg.values[k]; ok {
			set[k] = v
		}
	}
	obs["settings"] = set
	var ms []matchSetting
	for _, m := range cfg.matches {
		k, _ := splitKeyword(m.Line)
		for _, want := range keys {
			if k == want {
				ms = append(ms, m)
			}
		}
	}
	if len(ms) > 0 {
		obs["match_blocks"] = ms
	}
	if len(cfg.warnings) > 0 {
		obs["warnings"] = cfg.warnings
	}
	return obs
}

// loosened returns Match-block lines that set key to something other than
// the safe value.
func loosened(cfg *config, key, safe string) []string {
	var out []string
	for _, m := range cfg.matches {
		k, v := splitKeyword(m.Line)
		if k == key && strings.ToLower(v) != safe {
			out = append(out, fmt.Sprintf("%q under Match %s (%s)", m.Line, m.Match, m.File))
		}
	}
	return out
}

func rootLogin(cfg *config) evidence.Result {
	r := evidence.Result{Check: checkRoot, Observations: evidence.Observe(cfg.observe("permitrootlogin"))}
	v := value(cfg, "permitrootlogin")
	switch {
	case v == "":
		r.Status, r.Reason = evidence.Error, "PermitRootLogin not found in "+cfg.source
	case v != "no":
		r.Status, r.Reason = evidence.Fail, fmt.Sprintf("PermitRootLogin is %s (want no)", cfg.values["permitrootlogin"])
	default:
		if l := loosened(cfg, "permitrootlogin", "no"); len(l) > 0 {
			r.Status, r.Reason = evidence.Fail, "root login is re-allowed by "+strings.Join(l, "; ")
		} else {
			r.Status, r.Reason = evidence.Pass, "PermitRootLogin no"
		}
	}
	return r
}

func passwordAuth(cfg *config) evidence.Result {
	keys := []string{"passwordauthentication", "kbdinteractiveauthentication", "challengeresponseauthentication"}
	r := evidence.Result{Check: checkPassword, Observations: evidence.Observe(cfg.observe(keys...))}
	pw := value(cfg, "passwordauthentication")
	kbd := value(cfg, "kbdinteractiveauthentication")
	if kbd == "" {
		kbd = value(cfg, "challengeresponseauthentication")
	}
	var bad []string
	if pw != "no" {
		bad = append(bad, "PasswordAuthentication is "+orUnset(cfg.values["passwordauthentication"]))
	}
	if kbd != "no" {
		bad = append(bad, "KbdInteractiveAuthentication is "+orUnset(cfg.values["kbdinteractiveauthentication"]))
	}
	bad = append(bad, loosened(cfg, "passwordauthentication", "no")...)
	bad = append(bad, loosened(cfg, "kbdinteractiveauthentication", "no")...)
	if len(bad) > 0 {
		r.Status, r.Reason = evidence.Fail, strings.Join(bad, "; ")
	} else {
		r.Status, r.Reason = evidence.Pass, "password and keyboard-interactive authentication are off"
	}
	return r
}

func orUnset(v string) string {
	if v == "" {
		return "unset (sshd's default: yes)"
	}
	return v
}

func ciphers(cfg *config) evidence.Result {
	keys := []string{"ciphers", "macs", "kexalgorithms"}
	r := evidence.Result{Check: checkCiphers, Observations: evidence.Observe(cfg.observe(keys...))}
	var bad []string
	for _, k := range []struct {
		key  string
		weak []string
	}{{"ciphers", weakCipher}, {"macs", weakMAC}, {"kexalgorithms", weakKex}} {
		v := value(cfg, k.key)
		if v == "" {
			continue // sshd's defaults since OpenSSH 7.4 contain none of the weak ones but MACs: checked via -T
		}
		for _, alg := range strings.Split(v, ",") {
			alg = strings.TrimSpace(alg)
			for _, w := range k.weak {
				if strings.Contains(alg, w) {
					bad = append(bad, alg)
					break
				}
			}
		}
	}
	if value(cfg, "ciphers") == "" && value(cfg, "macs") == "" && strings.HasPrefix(cfg.source, "config files") {
		r.Status, r.Reason = evidence.Error, "algorithms not set in the files and sshd -T could not run (needs root): cannot tell which are offered"
		return r
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		r.Status, r.Reason = evidence.Fail, "weak algorithms offered: "+strings.Join(bad, ", ")
	} else {
		r.Status, r.Reason = evidence.Pass, "only modern ciphers, MACs and key exchanges are offered"
	}
	return r
}
