package diskencryption

import (
	"context"
	"fmt"
	"strings"

	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

// bitlockerVolume is one volume of `manage-bde -status`.
type bitlockerVolume struct {
	Letter     string `json:"volume"`
	Label      string `json:"label"`
	Kind       string `json:"kind"` // OS Volume, Data Volume, Removable Data Volume
	Conversion string `json:"conversion_status"`
	Percentage string `json:"percentage_encrypted"`
	Method     string `json:"encryption_method"`
	Protection string `json:"protection_status"`
	Lock       string `json:"lock_status"`
	Protectors string `json:"key_protectors,omitempty"`
}

// ok: encrypted with protection on. "Used Space Only Encrypted" is what
// Windows 11 device encryption and Intune/Azure set up: everything ever
// written is encrypted, free space never held data. "Protection Off" on an
// encrypted volume is BitLocker suspended: the key sits in clear on the
// disk.
func (v bitlockerVolume) ok() bool {
	return v.encrypted() && v.Protection == "Protection On"
}

func (v bitlockerVolume) encrypted() bool {
	return v.Conversion == "Fully Encrypted" || v.Conversion == "Used Space Only Encrypted"
}

// lettered: a volume mounted at a drive letter. A volume manage-bde names
// by its GUID path (\\?\Volume{…}\) has none: Azure Disk Encryption's key
// volume, recovery partitions.
func (v bitlockerVolume) lettered() bool { return len(v.Letter) == 2 && v.Letter[1] == ':' }

func (v bitlockerVolume) why() string {
	if v.encrypted() && v.Protection != "Protection On" {
		return v.Letter + " is encrypted but BitLocker is suspended (" + v.Protection + ")"
	}
	return fmt.Sprintf("%s: %s, %s encrypted, %s", v.Letter, v.Conversion, v.Percentage, v.Protection)
}

// parseManageBDE reads `manage-bde -status` (English output, as the agent
// runs it).
func parseManageBDE(s string) ([]bitlockerVolume, error) {
	var vols []bitlockerVolume
	var cur *bitlockerVolume
	lastKey := ""
	for _, raw := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		line := strings.TrimSpace(raw)
		if rest, ok := strings.CutPrefix(line, "Volume "); ok && (len(rest) >= 2 && rest[1] == ':' || strings.HasPrefix(rest, `\\?\Volume{`)) {
			name := rest
			if i := strings.Index(rest, " ["); i >= 0 {
				name = rest[:i]
			}
			v := bitlockerVolume{Letter: strings.TrimSpace(name)}
			if len(rest) >= 2 && rest[1] == ':' {
				v.Letter = rest[:2]
			}
			if i := strings.Index(rest, "["); i >= 0 {
				v.Label = strings.Trim(rest[i:], "[]")
			}
			vols = append(vols, v)
			cur = &vols[len(vols)-1]
			continue
		}
		if cur == nil {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") && cur.Kind == "" {
			cur.Kind = strings.Trim(line, "[]")
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			if lastKey == "Key Protectors" && line != "" {
				cur.Protectors = strings.TrimSpace(cur.Protectors + ", " + line)
				cur.Protectors = strings.TrimPrefix(cur.Protectors, ", ")
			}
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		lastKey = k
		switch k {
		case "Conversion Status":
			cur.Conversion = v
		case "Percentage Encrypted":
			cur.Percentage = v
		case "Encryption Method":
			cur.Method = v
		case "Protection Status":
			cur.Protection = v
		case "Lock Status":
			cur.Lock = v
		case "Key Protectors":
			cur.Protectors = v
		}
	}
	if len(vols) == 0 {
		return nil, fmt.Errorf("manage-bde -status: no volumes in the output")
	}
	return vols, nil
}

// psEncryptable reads BitLocker's volumes from WMI with numeric states,
// the same in every display language (manage-bde's output is translated:
// a German one reads "Konvertierungsstatus").
const psEncryptable = "@(Get-CimInstance -Namespace root/cimv2/Security/MicrosoftVolumeEncryption -ClassName Win32_EncryptableVolume | Select-Object DeviceID,DriveLetter,VolumeType,ConversionStatus,ProtectionStatus,EncryptionMethod) | ConvertTo-Json"

// parseEncryptable reads Win32_EncryptableVolume as JSON into the volume
// form manage-bde's reading gives.
func parseEncryptable(b []byte) ([]bitlockerVolume, error) {
	type wmiVol struct {
		DeviceID, DriveLetter                                            string
		VolumeType, ConversionStatus, ProtectionStatus, EncryptionMethod *int
	}
	list, err := host.PowerShellList[wmiVol](b)
	if err != nil {
		return nil, fmt.Errorf("Win32_EncryptableVolume: %d bytes that are not its JSON list: %v", len(b), err)
	}
	pick := func(names []string, v *int) string {
		if v == nil || *v < 0 || *v >= len(names) {
			return ""
		}
		return names[*v]
	}
	var vols []bitlockerVolume
	for _, w := range list {
		if w.VolumeType == nil || w.ConversionStatus == nil || w.ProtectionStatus == nil {
			return nil, fmt.Errorf("Win32_EncryptableVolume: volume %q without VolumeType, ConversionStatus or ProtectionStatus (before Windows 8?)", w.DeviceID)
		}
		v := bitlockerVolume{Letter: w.DriveLetter,
			Kind:       pick([]string{"OS Volume", "Data Volume", "Removable Data Volume"}, w.VolumeType),
			Conversion: pick([]string{"Fully Decrypted", "Fully Encrypted", "Encryption in Progress", "Decryption in Progress", "Encryption Paused", "Decryption Paused"}, w.ConversionStatus),
			Protection: pick([]string{"Protection Off", "Protection On", "Protection Unknown"}, w.ProtectionStatus),
			Method:     pick([]string{"None", "AES 128 with Diffuser", "AES 256 with Diffuser", "AES 128", "AES 256", "Hardware Encryption", "XTS-AES 128", "XTS-AES 256"}, w.EncryptionMethod),
		}
		if v.Letter == "" {
			v.Letter = w.DeviceID
		}
		vols = append(vols, v)
	}
	if len(vols) == 0 {
		return nil, fmt.Errorf("Win32_EncryptableVolume lists no volumes")
	}
	return vols, nil
}

func collectWindows(ctx context.Context, h *host.Host) []evidence.Result {
	var vols []bitlockerVolume
	out, err := h.Run(ctx, "powershell", "-NoProfile", "-NonInteractive", "-Command", psEncryptable)
	if err == nil {
		vols, err = parseEncryptable(out)
	}
	if err != nil {
		// Without the WMI class (no BitLocker feature, not elevated),
		// manage-bde, which the agent reads in English.
		mbde, merr := h.Run(ctx, "manage-bde", "-status")
		if merr != nil {
			return errorAll("Win32_EncryptableVolume: " + err.Error() + "; manage-bde -status (needs an elevated agent): " + merr.Error())
		}
		if vols, merr = parseManageBDE(string(mbde)); merr != nil {
			return errorAll(merr.Error())
		}
	}
	system := evidence.Result{Check: checkSystem}
	data := evidence.Result{Check: checkData}
	var osVol *bitlockerVolume
	var checked, unlettered []bitlockerVolume
	var bad []string
	for i, v := range vols {
		switch {
		case strings.HasPrefix(v.Kind, "OS"):
			osVol = &vols[i]
		case strings.HasPrefix(v.Kind, "Removable"):
		case !v.lettered():
			// Not mounted where users or programs write: listed, not judged.
			unlettered = append(unlettered, v)
		default:
			checked = append(checked, v)
			if !v.ok() {
				bad = append(bad, v.why())
			}
		}
	}
	if osVol == nil {
		system.Status, system.Reason = evidence.Error, "manage-bde -status lists no OS volume"
	} else {
		system.Observations = evidence.Observe(osVol)
		if osVol.ok() {
			system.Status, system.Reason = evidence.Pass, fmt.Sprintf("%s is BitLocker-encrypted (%s, %s), protection on", osVol.Letter, osVol.Method, osVol.Conversion)
		} else {
			system.Status, system.Reason = evidence.Fail, osVol.why()
		}
	}
	data.Observations = evidence.Observe(map[string]any{"volumes": evidence.NonNil(checked), "volumes_without_letter": evidence.NonNil(unlettered)})
	switch {
	case len(bad) > 0:
		data.Status, data.Reason = evidence.Fail, strings.Join(bad, "; ")
	case len(checked) == 0:
		data.Status, data.Reason = evidence.Pass, "no fixed data volumes besides the OS volume"
	default:
		data.Status, data.Reason = evidence.Pass, fmt.Sprintf("all %d fixed data volumes are BitLocker-encrypted", len(checked))
	}
	if len(unlettered) > 0 && data.Status == evidence.Pass {
		data.Reason += fmt.Sprintf(" (%d volumes without a drive letter listed, not judged)", len(unlettered))
	}
	return []evidence.Result{system, data, pagefile(ctx, h, vols, osVol)}
}

const regMemory = `HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management`

// pagefile: every paging file must be on a protected volume. PagingFiles
// lists them ("C:\pagefile.sys 0 0\0D:\pagefile.sys"); "?:" is the
// system-managed one on the OS volume.
func pagefile(ctx context.Context, h *host.Host, vols []bitlockerVolume, osVol *bitlockerVolume) evidence.Result {
	r := evidence.Result{Check: checkSwap}
	mm, found, err := h.RegQuery(ctx, regMemory)
	if err != nil {
		r.Status, r.Reason = evidence.Error, err.Error()
		return r
	}
	spec := mm["PagingFiles"]
	if !found || spec == "" {
		spec = "?:\\pagefile.sys"
	}
	byLetter := map[string]bitlockerVolume{}
	for _, v := range vols {
		byLetter[strings.ToUpper(v.Letter)] = v
	}
	type page struct {
		File   string `json:"file"`
		Volume string `json:"volume"`
		OK     bool   `json:"protected"`
	}
	var pages []page
	var bad []string
	for _, entry := range strings.Split(spec, "\\0") {
		entry = strings.TrimSpace(entry)
		if len(entry) < 2 || entry[1] != ':' {
			continue
		}
		letter := strings.ToUpper(entry[:2])
		v, ok := byLetter[letter]
		if letter == "?:" && osVol != nil {
			v, ok = *osVol, true
		}
		p := page{File: strings.Fields(entry)[0], Volume: v.Letter, OK: ok && v.ok()}
		pages = append(pages, p)
		if !p.OK {
			bad = append(bad, p.File)
		}
	}
	r.Observations = evidence.Observe(map[string]any{"PagingFiles": spec, "page_files": pages})
	switch {
	case len(pages) == 0:
		r.Status, r.Reason = evidence.Pass, "no paging file"
	case len(bad) > 0:
		r.Status, r.Reason = evidence.Fail, "paging files on volumes BitLocker does not protect: "+strings.Join(bad, ", ")
	default:
		r.Status, r.Reason = evidence.Pass, fmt.Sprintf("all %d paging files are on BitLocker-protected volumes", len(pages))
	}
	return r
}
