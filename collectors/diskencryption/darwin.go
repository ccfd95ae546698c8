package diskencryption

import (
	"context"
	"fmt"
	"strings"

	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

// collectDarwin: FileVault protects the Data volume of the boot volume
// group (`fdesetup status`); other APFS volumes are reported by `diskutil
// apfs list` with their own "FileVault:" line; macOS always encrypts swap
// (`sysctl vm.swapusage` says "(encrypted)").
func collectDarwin(ctx context.Context, h *host.Host) []evidence.Result {
	system := evidence.Result{Check: checkSystem}
	out, err := h.Run(ctx, "fdesetup", "status")
	if err != nil {
		system.Status, system.Reason = evidence.Error, "fdesetup status: "+err.Error()
	} else {
		st := strings.TrimSpace(string(out))
		system.Observations = evidence.Observe(map[string]any{"fdesetup_status": st})
		switch {
		case strings.Contains(st, "Encryption in progress"):
			system.Status, system.Reason = evidence.Fail, "FileVault is still encrypting the disk: "+lastLine(st)
		case strings.Contains(st, "Decryption in progress"):
			system.Status, system.Reason = evidence.Fail, "FileVault is decrypting the disk: "+lastLine(st)
		case strings.HasPrefix(st, "FileVault is On."):
			system.Status, system.Reason = evidence.Pass, "FileVault is on"
		case strings.HasPrefix(st, "FileVault is Off."):
			system.Status, system.Reason = evidence.Fail, "FileVault is off"
		default:
			system.Status, system.Reason = evidence.Error, "fdesetup status: unrecognised answer: "+firstLine(st)
		}
	}

	data := evidence.Result{Check: checkData}
	if out, err := h.Run(ctx, "diskutil", "apfs", "list"); err != nil {
		data.Status, data.Reason = evidence.Error, "diskutil apfs list: "+err.Error()
	} else if vols, err := parseAPFSList(string(out)); err != nil {
		data.Status, data.Reason = evidence.Error, err.Error()
	} else {
		var checked []apfsVolume
		var plain []string
		for _, v := range vols {
			// The sealed system volume, Preboot, Recovery, VM and Update
			// hold no user data; the boot Data volume, and before
			// Catalina the boot volume itself (no role, mounted at /), is
			// what FileVault protects (the system check above). Every
			// other volume holds data: no role, and Backup (Time Machine).
			if systemRole[v.Role] || v.Mount == "/" {
				continue
			}
			checked = append(checked, v)
			if !strings.HasPrefix(v.FileVault, "Yes") {
				plain = append(plain, v.Name)
			}
		}
		data.Observations = evidence.Observe(map[string]any{"apfs_volumes": vols})
		switch {
		case len(plain) > 0:
			data.Status, data.Reason = evidence.Fail, "APFS volumes without encryption: "+strings.Join(plain, ", ")
		case len(checked) == 0:
			data.Status, data.Reason = evidence.Pass, "no APFS data volumes besides the system's"
		default:
			data.Status, data.Reason = evidence.Pass, fmt.Sprintf("all %d other APFS volumes are encrypted", len(checked))
		}
	}

	swap := evidence.Result{Check: checkSwap}
	if out, err := h.Run(ctx, "sysctl", "vm.swapusage"); err != nil {
		swap.Status, swap.Reason = evidence.Error, "sysctl vm.swapusage: "+err.Error()
	} else {
		s := strings.TrimSpace(string(out))
		swap.Observations = evidence.Observe(map[string]any{"vm.swapusage": s})
		switch {
		case strings.Contains(s, "(encrypted)"):
			swap.Status, swap.Reason = evidence.Pass, "swap is encrypted"
		case strings.HasPrefix(s, "vm.swapusage:"):
			swap.Status, swap.Reason = evidence.Fail, "swap is not encrypted"
		default:
			swap.Status, swap.Reason = evidence.Error, "sysctl vm.swapusage: unrecognised answer: "+firstLine(s)
		}
	}
	return []evidence.Result{system, data, swap}
}

type apfsVolume struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	FileVault string `json:"filevault"`
	Disk      string `json:"disk"`
	Mount     string `json:"mount_point,omitempty"`
}

// systemRole are the APFS roles of the boot volume group and its helpers.
var systemRole = map[string]bool{"System": true, "Data": true, "Preboot": true, "Recovery": true, "VM": true, "Update": true,
	"Hardware": true, "xART": true, "Prelogin": true, "iSCPreboot": true}

// parseAPFSList reads `diskutil apfs list`: each volume's block starts with
// "+-> Volume diskXsY UUID" and has "Name:", "Role" ... lines and
// "FileVault: Yes (Unlocked)" / "No".
func parseAPFSList(s string) ([]apfsVolume, error) {
	var vols []apfsVolume
	var cur *apfsVolume
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimLeft(line, " |+-")
		t = strings.TrimSpace(t)
		if rest, ok := strings.CutPrefix(t, "> Volume "); ok || strings.HasPrefix(t, "Volume disk") {
			if !ok {
				rest = strings.TrimPrefix(t, "Volume ")
			}
			vols = append(vols, apfsVolume{Disk: strings.Fields(rest)[0]})
			cur = &vols[len(vols)-1]
			continue
		}
		if cur == nil {
			continue
		}
		k, v, ok := strings.Cut(t, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch {
		case strings.HasPrefix(k, "APFS Volume Disk (Role)"):
			if i := strings.Index(v, "("); i >= 0 {
				cur.Role = strings.Trim(v[i:], "()")
			}
		case k == "Name":
			cur.Name = strings.TrimSpace(strings.Split(v, "(Case")[0])
		case k == "FileVault":
			cur.FileVault = v
		case k == "Mount Point":
			cur.Mount = v
		}
	}
	if len(vols) == 0 {
		return nil, fmt.Errorf("diskutil apfs list: no APFS volumes found")
	}
	return vols, nil
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
