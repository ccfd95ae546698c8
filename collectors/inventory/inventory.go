// Package inventory records what a host is and what is installed on it: the
// asset inventory (5.9) and the software base (8.19) an auditor samples.
package inventory

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	gohost "github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

func init() { collectors.Register(Collector{}) }

// Collector is the inventory collector.
type Collector struct{}

// Name implements collectors.Collector.
func (Collector) Name() string { return "inventory" }

// Version implements collectors.Collector.
func (Collector) Version() string { return "1.0.0" }

const (
	checkHost     = "inventory.host"
	checkSoftware = "inventory.software"
)

// Checks implements collectors.Collector.
func (Collector) Checks() []evidence.Check {
	return []evidence.Check{
		{ID: checkHost, Title: "Host identified: OS, version, kernel, hardware, serial", Controls: []string{"5.9"},
			Platforms: []string{"linux", "darwin", "windows"}, Freshness: evidence.Duration(8 * 24 * time.Hour)},
		{ID: checkSoftware, Title: "Installed software inventoried", Controls: []string{"5.9", "8.19"},
			Platforms: []string{"linux", "darwin", "windows"}, Freshness: evidence.Duration(8 * 24 * time.Hour)},
	}
}

// Facts are the host facts reported at enrollment and in inventory.host.
type Facts map[string]string

// Collect implements collectors.Collector.
func (c Collector) Collect(ctx context.Context, h *host.Host, settings collectors.Settings) ([]evidence.Result, error) {
	return []evidence.Result{hostResult(ctx, h), software(ctx, h, collectors.SettingsOf(settings, defaults).MaxPackages)}, nil
}

// HostFacts reads the host's identity. On the live machine it asks
// gopsutil; on a fixture tree it reads os-release.
func HostFacts(ctx context.Context, h *host.Host) (Facts, error) {
	f := Facts{}
	if h.Root == "/" || h.Root == "" {
		info, err := gohost.InfoWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("host info: %w", err)
		}
		f["hostname"], f["os"], f["platform"], f["platform_family"] = info.Hostname, info.OS, info.Platform, info.PlatformFamily
		f["platform_version"], f["kernel"], f["kernel_arch"] = info.PlatformVersion, info.KernelVersion, info.KernelArch
		f["host_id"], f["virtualization"] = info.HostID, info.VirtualizationSystem
		f["uptime_seconds"] = fmt.Sprint(info.Uptime)
		if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
			f["memory_bytes"] = fmt.Sprint(vm.Total)
		}
		f["cpus"] = fmt.Sprint(runtime.NumCPU())
		// What a replay of this machine reads instead (a capture keeps
		// the files a collector touches).
		_, _, _ = h.Exists("/etc/os-release"), h.Exists("/proc/sys/kernel/osrelease"), h.Exists("/etc/debian_version")
	} else {
		b, err := h.ReadFile("/etc/os-release")
		if err != nil {
			return nil, fmt.Errorf("os-release: %w", err)
		}
		osr := parseOSRelease(b)
		f["os"], f["platform"], f["platform_version"] = h.OS, osr["ID"], osr["VERSION_ID"]
		if osr["ID"] == "debian" {
			// Debian's point release, as gopsutil reads it live.
			if b, err := h.ReadFile("/etc/debian_version"); err == nil && strings.TrimSpace(string(b)) != "" {
				f["platform_version"] = strings.TrimSpace(string(b))
			}
		}
		if k, err := h.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
			f["kernel"] = strings.TrimSpace(string(k))
		}
	}
	if h.OS == "linux" {
		// The serial number is readable by root only; its absence is noted, not fatal.
		if b, err := h.ReadFile("/sys/class/dmi/id/product_serial"); err == nil {
			f["serial"] = strings.TrimSpace(string(b))
		}
		if b, err := h.ReadFile("/sys/class/dmi/id/product_name"); err == nil {
			f["hardware"] = strings.TrimSpace(string(b))
		}
	}
	return f, nil
}

func hostResult(ctx context.Context, h *host.Host) evidence.Result {
	r := evidence.Result{Check: checkHost}
	f, err := HostFacts(ctx, h)
	if err != nil {
		r.Status, r.Reason = evidence.Error, err.Error()
		return r
	}
	r.Observations = evidence.Observe(f)
	if f["os"] == "" || f["platform"] == "" {
		r.Status, r.Reason = evidence.Error, "could not identify the operating system"
		return r
	}
	r.Status = evidence.Pass
	r.Reason = strings.TrimSpace(fmt.Sprintf("%s %s %s", f["platform"], f["platform_version"], f["kernel"]))
	if f["serial"] == "" {
		r.Reason += " (serial number not readable)"
	}
	return r
}

func parseOSRelease(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if ok && !strings.HasPrefix(k, "#") {
			out[k] = strings.Trim(v, `"'`)
		}
	}
	return out
}

// Package is one installed package.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch,omitempty"`
}

func software(ctx context.Context, h *host.Host, max int) evidence.Result {
	r := evidence.Result{Check: checkSoftware}
	var pkgs []Package
	var source string
	switch h.OS {
	case "darwin", "windows":
		var err error
		source, pkgs, err = softwareOther(ctx, h)
		if err != nil {
			r.Status, r.Reason = evidence.Error, err.Error()
			return r
		}
		return listResult(r, source, pkgs, max)
	case "linux":
	default:
		r.Status, r.Reason = evidence.Error, "software inventory: no reader for "+h.OS
		return r
	}
	out, err := h.Run(ctx, "dpkg-query", "-W", "-f=${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n")
	bad := 0
	switch {
	case err == nil:
		source = "dpkg-query"
		pkgs, bad = parseDpkg(out)
	case host.IsNotExist(err):
		out, err = h.Run(ctx, "rpm", "-qa", "--qf", "%{NAME}\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\t%{ARCH}\n")
		if err != nil {
			r.Status, r.Reason = evidence.Error, "no package database readable: dpkg-query is absent and rpm: "+err.Error()
			return r
		}
		source = "rpm -qa"
		pkgs, bad = parseRPM(out)
	default:
		r.Status, r.Reason = evidence.Error, "dpkg-query: "+err.Error()
		return r
	}
	if bad > 0 {
		// The query's format is fixed: a line that does not fit it means
		// the output is not the package list.
		r.Status, r.Reason = evidence.Error, fmt.Sprintf("%s: %d lines are not package lines (%d packages read): not an inventory to report", source, bad, len(pkgs))
		return r
	}
	return listResult(r, source, pkgs, max)
}

func listResult(r evidence.Result, source string, pkgs []Package, max int) evidence.Result {
	if len(pkgs) == 0 {
		r.Status, r.Reason = evidence.Error, source+" listed no installed package: an empty inventory is not evidence"
		return r
	}
	obs := map[string]any{"source": source, "count": len(pkgs)}
	if len(pkgs) > max {
		obs["truncated_to"] = max
		pkgs = pkgs[:max]
	}
	obs["packages"] = pkgs
	r.Observations = evidence.Observe(obs)
	r.Status, r.Reason = evidence.Pass, fmt.Sprintf("%d packages installed (%s)", obs["count"], source)
	return r
}

// parseDpkg keeps packages whose status is installed ("ii"); half-removed
// ones ("rc": config files only) are not installed software. It counts the
// lines that are not dpkg-query's four tab-separated fields.
func parseDpkg(b []byte) ([]Package, int) {
	var out []Package
	bad := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 4 || !token(f[0]) || !token(f[1]) || !token(f[2]) || len(strings.TrimSpace(f[3])) < 2 {
			bad++
			continue
		}
		if !strings.HasPrefix(strings.TrimSpace(f[3]), "ii") {
			continue
		}
		out = append(out, Package{Name: f[0], Version: f[1], Arch: f[2]})
	}
	return out, bad
}

func parseRPM(b []byte) ([]Package, int) {
	var out []Package
	bad := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 || !token(f[0]) || !token(f[1]) || !token(f[2]) {
			bad++
			continue
		}
		if f[0] == "gpg-pubkey" {
			continue
		}
		out = append(out, Package{Name: f[0], Version: strings.TrimPrefix(f[1], "0:"), Arch: f[2]})
	}
	return out, bad
}

// token: a package name, version or architecture is printable ASCII
// without spaces.
func token(s string) bool {
	if s == "" || len(s) > 512 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
