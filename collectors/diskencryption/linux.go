package diskencryption

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

// lsblk's columns: MOUNTPOINTS and FSVER need util-linux 2.37; RHEL 8's
// 2.32 gets the older column set.
var (
	lsblkArgs    = []string{"-J", "-b", "-o", "NAME,KNAME,PATH,TYPE,FSTYPE,FSVER,MOUNTPOINTS,SIZE,RM,RO"}
	lsblkArgsOld = []string{"-J", "-b", "-o", "NAME,KNAME,PATH,TYPE,FSTYPE,MOUNTPOINT,SIZE,RM,RO"}
)

// exempt mountpoints hold what must be readable before unlocking.
var defaultExempt = []string{"/boot", "/boot/efi", "/efi"}

// blockdev is one lsblk node. rm and ro are booleans in lsblk 2.38 and
// "0"/"1" strings in older versions.
type blockdev struct {
	Name        string          `json:"name"`
	KName       string          `json:"kname"`
	Path        string          `json:"path"`
	Type        string          `json:"type"`
	FSType      *string         `json:"fstype"`
	FSVer       *string         `json:"fsver"`
	Mountpoints []*string       `json:"mountpoints"`
	Mountpoint  *string         `json:"mountpoint"`
	RM          json.RawMessage `json:"rm"`
	Children    []blockdev      `json:"children"`
}

func flag(raw json.RawMessage) bool {
	s := strings.Trim(string(raw), `"`)
	return s == "true" || s == "1"
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// volume is a mounted filesystem and the devices it sits on.
type volume struct {
	Mount     string   `json:"mount"`
	Device    string   `json:"device"`
	Layers    []string `json:"layers"` // bottom (disk) to top
	Encrypted bool     `json:"encrypted"`
	Method    string   `json:"method,omitempty"`
	Removable bool     `json:"removable,omitempty"`
	Loop      bool     `json:"loop,omitempty"`
}

// walk lists every mountpoint of the tree with its chain of devices.
func walk(devs []blockdev, chain []blockdev, out map[string]*volume, byDev map[string]*volume) {
	for _, d := range devs {
		c := append(append([]blockdev(nil), chain...), d)
		mps := d.Mountpoints
		if d.Mountpoint != nil {
			mps = append(mps, d.Mountpoint)
		}
		v := describe(c)
		for _, k := range []string{d.Path, "/dev/" + d.KName, "/dev/" + d.Name} {
			if k != "/dev/" {
				byDev[k] = v
			}
		}
		for _, mp := range mps {
			if mp == nil || *mp == "" {
				continue
			}
			vv := *v
			vv.Mount = *mp
			out[*mp] = &vv
		}
		walk(d.Children, c, out, byDev)
	}
}

// describe decides a device chain: encrypted when any layer is a dm-crypt
// mapping; the method comes from the layer under it (a LUKS header, or none
// for plain dm-crypt).
func describe(chain []blockdev) *volume {
	v := &volume{Device: chain[len(chain)-1].Path}
	for i, d := range chain {
		layer := d.Name + " " + d.Type
		if fs := str(d.FSType); fs != "" {
			layer += " " + fs
			if ver := str(d.FSVer); ver != "" {
				layer += " " + ver
			}
		}
		v.Layers = append(v.Layers, layer)
		if flag(d.RM) {
			v.Removable = true
		}
		if d.Type == "loop" || d.Type == "rom" {
			v.Loop = true
		}
		if d.Type == "crypt" {
			v.Encrypted = true
			method := "plain dm-crypt"
			if i > 0 && str(chain[i-1].FSType) == "crypto_LUKS" {
				method = "LUKS"
				if ver := str(chain[i-1].FSVer); ver != "" {
					method += ver
				}
			}
			if v.Method == "" {
				v.Method = method
			} else {
				v.Method += " + " + method
			}
		}
	}
	return v
}

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	Mount, FSType, Source string
}

func readMountinfo(h *host.Host) ([]mountEntry, error) {
	b, err := h.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []mountEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(f) < sep+3 {
			continue
		}
		out = append(out, mountEntry{Mount: unescapeMount(f[4]), FSType: f[sep+1], Source: f[sep+2]})
	}
	return out, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// linuxDisks is what the Linux decisions are made from: the volumes lsblk
// lists (by mount point and by device), the mount table, the ZFS datasets
// mounted (not block devices, so lsblk does not show them) and crypttab.
type linuxDisks struct {
	vols, byDev map[string]*volume
	mounts      []mountEntry
	zfs         map[string]mountEntry
	crypttab    []string
}

func collectLinux(ctx context.Context, h *host.Host, s *Settings) []evidence.Result {
	d, err := gatherLinux(ctx, h)
	if err != nil {
		return errorAll(err.Error())
	}
	system, root := systemVolume(ctx, h, d)
	exempt := s.ExemptMounts
	if exempt == nil {
		exempt = defaultExempt
	}
	return []evidence.Result{system, dataVolumes(ctx, h, d, root, exempt), swapLinux(h, d.mounts, d.vols, d.byDev, d.crypttab)}
}

// gatherLinux reads lsblk (the newer columns, else the older ones), the
// mount table and crypttab. Nothing it cannot read is guessed at.
func gatherLinux(ctx context.Context, h *host.Host) (*linuxDisks, error) {
	out, err := h.Run(ctx, "lsblk", lsblkArgs...)
	if err != nil && !host.IsNotExist(err) {
		out, err = h.Run(ctx, "lsblk", lsblkArgsOld...)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot list block devices: %w", err)
	}
	var tree struct {
		Blockdevices []blockdev `json:"blockdevices"`
	}
	if err := json.Unmarshal(out, &tree); err != nil {
		return nil, fmt.Errorf("lsblk: not lsblk JSON: %w", err)
	}
	if len(tree.Blockdevices) == 0 {
		return nil, errors.New("lsblk listed no block devices")
	}
	d := &linuxDisks{vols: map[string]*volume{}, byDev: map[string]*volume{}, zfs: map[string]mountEntry{}}
	if d.mounts, err = readMountinfo(h); err != nil {
		return nil, fmt.Errorf("cannot read mounts: %w", err)
	}
	walk(tree.Blockdevices, nil, d.vols, d.byDev)
	for _, m := range d.mounts {
		if m.FSType == "zfs" {
			d.zfs[m.Mount] = m
		}
	}
	d.crypttab = readCrypttab(h)
	return d, nil
}

// zfsVolume asks ZFS whether a mounted dataset is encrypted.
func zfsVolume(ctx context.Context, h *host.Host, m mountEntry) (*volume, error) {
	out, err := h.Run(ctx, "zfs", "get", "-H", "-o", "value", "encryption,keystatus", m.Source)
	if err != nil {
		return nil, fmt.Errorf("zfs get encryption %s: %w", m.Source, err)
	}
	f := strings.Fields(string(out))
	if len(f) < 1 {
		return nil, fmt.Errorf("zfs get encryption %s: empty answer", m.Source)
	}
	v := &volume{Mount: m.Mount, Device: m.Source, Layers: []string{m.Source + " zfs encryption=" + f[0]}}
	if f[0] != "off" && f[0] != "-" {
		v.Encrypted, v.Method = true, "ZFS native "+f[0]
	}
	return v, nil
}

// systemVolume decides the root filesystem's volume, and returns it (nil
// when it is on no block device lsblk lists).
func systemVolume(ctx context.Context, h *host.Host, d *linuxDisks) (evidence.Result, *volume) {
	system := evidence.Result{Check: checkSystem}
	var root *volume
	var err error
	if zm, ok := d.zfs["/"]; ok {
		if root, err = zfsVolume(ctx, h, zm); err != nil {
			system.Status, system.Reason = evidence.Error, err.Error()
		}
	} else if v, ok := d.vols["/"]; ok {
		root = v
	} else {
		src := ""
		for _, m := range d.mounts {
			if m.Mount == "/" {
				src = m.FSType + " " + m.Source
			}
		}
		system.Status, system.Reason = evidence.Error, "the root filesystem ("+src+") is on no block device lsblk lists: a container or live system, whose disks are the host's"
	}
	if root != nil {
		system.Observations = evidence.Observe(map[string]any{"volume": root, "crypttab": d.crypttab})
		if root.Encrypted {
			system.Status, system.Reason = evidence.Pass, "/ is encrypted ("+root.Method+")"
		} else {
			system.Status, system.Reason = evidence.Fail, "/ is not encrypted ("+strings.Join(root.Layers, " > ")+")"
		}
	}
	return system, root
}

// dataVolumes decides every other fixed volume: not removable, not a loop
// device, not exempt, each device once (bind mounts).
func dataVolumes(ctx context.Context, h *host.Host, d *linuxDisks, root *volume, exempt []string) evidence.Result {
	data := evidence.Result{Check: checkData}
	var checked, plain []*volume
	var zerr error
	seen := map[string]bool{}
	if root != nil {
		seen[root.Device] = true
	}
	mps := make([]string, 0, len(d.vols)+len(d.zfs))
	for mp := range d.vols {
		mps = append(mps, mp)
	}
	for mp := range d.zfs {
		if _, dup := d.vols[mp]; !dup {
			mps = append(mps, mp)
		}
	}
	sort.Strings(mps)
	for _, mp := range mps {
		if mp == "/" || mp == "[SWAP]" || contains(exempt, mp) || !strings.HasPrefix(mp, "/") {
			continue
		}
		v := d.vols[mp]
		if v == nil {
			zv, err := zfsVolume(ctx, h, d.zfs[mp])
			if err != nil {
				zerr = err
				continue
			}
			v = zv
		}
		if v.Removable || v.Loop || seen[v.Device] {
			continue
		}
		seen[v.Device] = true
		checked = append(checked, v)
		if !v.Encrypted {
			plain = append(plain, v)
		}
	}
	data.Observations = evidence.Observe(map[string]any{"volumes": evidence.NonNil(checked), "exempt": exempt})
	switch {
	case zerr != nil:
		data.Status, data.Reason = evidence.Error, zerr.Error()
	case len(plain) > 0:
		names := make([]string, len(plain))
		for i, v := range plain {
			names[i] = v.Mount + " (" + v.Device + ")"
		}
		data.Status, data.Reason = evidence.Fail, "not encrypted: "+strings.Join(names, ", ")
	case len(checked) == 0:
		data.Status, data.Reason = evidence.Pass, "no fixed data volumes besides the system volume"
	default:
		data.Status, data.Reason = evidence.Pass, fmt.Sprintf("all %d fixed data volumes are encrypted", len(checked))
	}
	return data
}

// swapLinux: every active swap area must be on an encrypted device, in
// RAM (zram), or a file on an encrypted filesystem.
func swapLinux(h *host.Host, mounts []mountEntry, vols, byDev map[string]*volume, crypttab []string) evidence.Result {
	r := evidence.Result{Check: checkSwap}
	b, err := h.ReadFile("/proc/swaps")
	if err != nil {
		r.Status, r.Reason = evidence.Error, "cannot read /proc/swaps: "+err.Error()
		return r
	}
	type area struct {
		Name      string `json:"name"`
		Type      string `json:"type"`
		Encrypted bool   `json:"encrypted"`
		How       string `json:"how"`
	}
	var areas []area
	var plain []string
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		a := area{Name: unescapeMount(f[0]), Type: f[1]}
		switch {
		case strings.HasPrefix(a.Name, "/dev/zram"):
			a.Encrypted, a.How = true, "compressed RAM (zram): never written to disk"
		case a.Type == "partition":
			if v := byDev[a.Name]; v != nil {
				a.Encrypted, a.How = v.Encrypted, strings.Join(v.Layers, " > ")
				if v.Encrypted {
					a.How = v.Method + ": " + a.How
				}
			} else {
				a.How = "device not in lsblk"
			}
		default: // a swap file: encrypted if its filesystem is
			best := ""
			for _, m := range mounts {
				if strings.HasPrefix(a.Name, strings.TrimSuffix(m.Mount, "/")+"/") && len(m.Mount) > len(best) {
					best = m.Mount
				}
			}
			if v := vols[best]; v != nil {
				a.Encrypted, a.How = v.Encrypted, "file on "+best+" ("+strings.Join(v.Layers, " > ")+")"
			} else {
				a.How = "file on " + best + ", whose device is not in lsblk"
			}
		}
		areas = append(areas, a)
		if !a.Encrypted {
			plain = append(plain, a.Name)
		}
	}
	r.Observations = evidence.Observe(map[string]any{"swaps": evidence.NonNil(areas), "crypttab": crypttab})
	switch {
	case len(areas) == 0:
		r.Status, r.Reason = evidence.Pass, "no swap in use"
	case len(plain) > 0:
		r.Status, r.Reason = evidence.Fail, "swap not encrypted: "+strings.Join(plain, ", ")
	default:
		r.Status, r.Reason = evidence.Pass, fmt.Sprintf("all %d swap areas are encrypted or in RAM", len(areas))
	}
	return r
}

// readCrypttab returns /etc/crypttab's entries, for the auditor (which
// mappings exist, with which key source and options).
func readCrypttab(h *host.Host) []string {
	b, err := h.ReadFile("/etc/crypttab")
	if err != nil {
		return []string{}
	}
	out := []string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Join(strings.Fields(line), " "))
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
