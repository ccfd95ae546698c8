package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/annexa-dev/annexa/collectors/host"
)

const psUninstall = `Get-ItemProperty HKLM:\Software\Microsoft\Windows\CurrentVersion\Uninstall\*, HKLM:\Software\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall\* | Where-Object DisplayName | Select-Object DisplayName,DisplayVersion,Publisher | ConvertTo-Json`

// softwareOther lists installed software on macOS (applications, from
// system_profiler) and Windows (the Uninstall registry keys, 64- and
// 32-bit, which is what Apps & Features shows).
func softwareOther(ctx context.Context, h *host.Host) (string, []Package, error) {
	var pkgs []Package
	if h.OS == "darwin" {
		const src = "system_profiler SPApplicationsDataType -json"
		out, err := h.Run(ctx, "system_profiler", "SPApplicationsDataType", "-json")
		if err != nil {
			return src, nil, fmt.Errorf("%s: %w", src, err)
		}
		var apps struct {
			Items []struct {
				Name    string `json:"_name"`
				Version string `json:"version"`
				Arch    string `json:"arch_kind"`
			} `json:"SPApplicationsDataType"`
		}
		if err := json.Unmarshal(out, &apps); err != nil {
			return src, nil, fmt.Errorf("%s: not JSON: %w", src, err)
		}
		for _, a := range apps.Items {
			pkgs = append(pkgs, Package{Name: a.Name, Version: a.Version, Arch: a.Arch})
		}
		sortPkgs(pkgs)
		return src, pkgs, nil
	}
	const src = "Uninstall registry keys"
	out, err := h.Run(ctx, "powershell", "-NoProfile", "-NonInteractive", "-Command", psUninstall)
	if err != nil {
		return src, nil, fmt.Errorf("%s: %w", src, err)
	}
	type entry struct {
		DisplayName    string
		DisplayVersion *string
		Publisher      *string
	}
	list, err := host.PowerShellList[entry](out)
	if err != nil {
		return src, nil, fmt.Errorf("%s: not JSON: %w", src, err)
	}
	seen := map[string]bool{}
	for _, e := range list {
		v := ""
		if e.DisplayVersion != nil {
			v = *e.DisplayVersion
		}
		if seen[e.DisplayName+"\x00"+v] {
			continue
		}
		seen[e.DisplayName+"\x00"+v] = true
		pkgs = append(pkgs, Package{Name: e.DisplayName, Version: v})
	}
	sortPkgs(pkgs)
	return src, pkgs, nil
}

func sortPkgs(p []Package) {
	sort.Slice(p, func(i, j int) bool {
		return p[i].Name < p[j].Name || (p[i].Name == p[j].Name && p[i].Version < p[j].Version)
	})
}
