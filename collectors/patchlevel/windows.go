package patchlevel

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

const (
	// psPending asks the Windows Update agent what is applicable and not installed.
	// The search's answer is wrapped in an object with its ResultCode, so
	// "nothing pending" is {"Updates": []} and never the empty output an
	// empty pipeline gives, which would be indistinguishable from no answer.
	psPending = "$s=(New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher(); $r=$s.Search('IsInstalled=0 and IsHidden=0'); [pscustomobject]@{ResultCode=[int]$r.ResultCode; Updates=@($r.Updates | ForEach-Object { [pscustomobject]@{Title=$_.Title; MsrcSeverity=$_.MsrcSeverity; Categories=@($_.Categories | ForEach-Object { $_.Name }); RebootRequired=$_.RebootRequired} })} | ConvertTo-Json -Depth 4"
	// Every hotfix with InstalledOn as the raw string CIM keeps: Get-HotFix
	// converts it to a date and throws on the entries some machines hold
	// (Server 2012 R2), losing the whole list.
	psHotfix  = "@(Get-CimInstance -ClassName Win32_QuickFixEngineering | Select-Object HotFixID,Description,InstalledOn) | ConvertTo-Json"
	regAU     = `HKLM\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU`
	regReboot = `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired`
	regCBS    = `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending`
	regNT     = `HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`
)

// windowsEnd: end of servicing by build, for Home/Pro and for
// Enterprise/Education (Microsoft's lifecycle pages); servers by build.
// The build decides: Windows 11's registry ProductName still says
// "Windows 10".
var windowsEnd = map[string][2]string{
	"19045": {"2025-10-14", "2025-10-14"}, // Windows 10 22H2
	"22621": {"2024-10-08", "2025-10-14"}, // Windows 11 22H2
	"22631": {"2025-11-11", "2026-11-10"}, // Windows 11 23H2
	"26100": {"2026-10-13", "2027-10-12"}, // Windows 11 24H2
}

var windowsServerEnd = map[string]string{
	"17763": "2029-01-09", // Server 2019
	"20348": "2031-10-14", // Server 2022
	"26100": "2034-11-14", // Server 2025
}

func collectWindows(ctx context.Context, h *host.Host, s *Settings) []evidence.Result {
	now := h.Now()
	out := []evidence.Result{releaseWindows(ctx, h, now)}
	out = append(out, pendingWindows(ctx, h, s.MaxPending)...)
	out = append(out, automaticWindows(ctx, h), ageWindows(ctx, h, now, s.MaxDays), rebootWindows(ctx, h))
	return out
}

func pendingWindows(ctx context.Context, h *host.Host, maxPending int) []evidence.Result {
	out, err := h.Run(ctx, "powershell", "-NoProfile", "-NonInteractive", "-Command", psPending)
	if err != nil {
		reason := "Windows Update search: " + err.Error()
		return []evidence.Result{{Check: checkPending, Status: evidence.Error, Reason: reason}, {Check: checkSecurity, Status: evidence.Error, Reason: reason}}
	}
	type wu struct {
		Title          string
		MsrcSeverity   *string
		Categories     []string
		RebootRequired bool
	}
	var answer struct {
		ResultCode *int
		Updates    []wu
	}
	fail := func(reason string) []evidence.Result {
		return []evidence.Result{{Check: checkPending, Status: evidence.Error, Reason: reason}, {Check: checkSecurity, Status: evidence.Error, Reason: reason}}
	}
	if err := json.Unmarshal(out, &answer); err != nil {
		return fail(fmt.Sprintf("Windows Update search: %d bytes that are not its JSON answer: %v", len(out), err))
	}
	// OperationResultCode: 2 succeeded, 3 succeeded with errors.
	if answer.ResultCode == nil || (*answer.ResultCode != 2 && *answer.ResultCode != 3) || answer.Updates == nil {
		code := "none"
		if answer.ResultCode != nil {
			code = fmt.Sprint(*answer.ResultCode)
		}
		return fail("Windows Update search did not succeed (ResultCode " + code + "): no list of pending updates to decide on")
	}
	var ups, sec []update
	for _, u := range answer.Updates {
		sev := ""
		if u.MsrcSeverity != nil {
			sev = *u.MsrcSeverity
		}
		isSec := sev != ""
		for _, c := range u.Categories {
			if c == "Security Updates" || c == "Critical Updates" {
				isSec = true
			}
		}
		up := update{Package: u.Title, Origin: strings.Join(u.Categories, ", "), Security: isSec}
		if sev != "" {
			up.Origin += " (" + sev + ")"
		}
		ups = append(ups, up)
		if isSec {
			sec = append(sec, up)
		}
	}
	return []evidence.Result{pendingResult(ups, sec, maxPending), securityResult(sec)}
}

// automaticWindows: Group Policy's AU key; without it Windows installs
// updates automatically (the default for unmanaged Windows 10 and 11).
func automaticWindows(ctx context.Context, h *host.Host) evidence.Result {
	r := evidence.Result{Check: checkAuto}
	au, found, err := h.RegQuery(ctx, regAU)
	if err != nil {
		r.Status, r.Reason = evidence.Error, err.Error()
		return r
	}
	r.Observations = evidence.Observe(map[string]any{"policy_key_present": found, "values": au})
	if !found {
		r.Status, r.Reason = evidence.Pass, "no Windows Update policy: Windows downloads and installs updates automatically (the default)"
		return r
	}
	if v, ok := host.RegInt(au["NoAutoUpdate"]); ok && v == 1 {
		r.Status, r.Reason = evidence.Fail, "automatic updates are turned off by policy (NoAutoUpdate = 1)"
		return r
	}
	opt, ok := host.RegInt(au["AUOptions"])
	switch {
	case !ok || opt == 4 || opt == 5:
		r.Status, r.Reason = evidence.Pass, fmt.Sprintf("policy installs updates automatically (AUOptions = %s)", au["AUOptions"])
	default:
		r.Status, r.Reason = evidence.Fail, fmt.Sprintf("policy only notifies or downloads (AUOptions = %d): updates wait for a person", opt)
	}
	return r
}

// ageWindows: the newest hotfix's InstalledOn.
func ageWindows(ctx context.Context, h *host.Host, now time.Time, maxDays int) evidence.Result {
	r := evidence.Result{Check: checkAge}
	out, err := h.Run(ctx, "powershell", "-NoProfile", "-NonInteractive", "-Command", psHotfix)
	if err != nil {
		r.Status, r.Reason = evidence.Error, "Win32_QuickFixEngineering: "+err.Error()
		return r
	}
	type hotfix struct {
		HotFixID    string
		Description string
		InstalledOn string
	}
	list, err := host.PowerShellList[hotfix](out)
	if err != nil {
		r.Status, r.Reason = evidence.Error, fmt.Sprintf("Win32_QuickFixEngineering: %d bytes that are not its JSON list: %v", len(out), err)
		return r
	}
	// The newest hotfix whose install date can be read decides; the ones
	// that cannot are counted, not fatal.
	var best *hotfix
	var last time.Time
	var unreadable []string
	for i, hf := range list {
		t, ok := hotfixDate(hf.InstalledOn)
		if !ok {
			unreadable = append(unreadable, hf.HotFixID)
			continue
		}
		if t.After(last) {
			best, last = &list[i], t
		}
	}
	if best == nil {
		r.Status, r.Reason = evidence.Error, fmt.Sprintf("none of %d hotfixes has an install date this reads", len(list))
		r.Observations = evidence.Observe(map[string]any{"hotfixes": len(list), "unreadable_dates": evidence.NonNil(unreadable)})
		return r
	}
	days := int(now.Sub(last).Hours() / 24)
	r.Observations = evidence.Observe(map[string]any{"last_hotfix": best.HotFixID, "description": best.Description, "installed_on": last, "days": days,
		"max_days": maxDays, "hotfixes": len(list), "unreadable_dates": evidence.NonNil(unreadable)})
	if days > maxDays {
		r.Status, r.Reason = evidence.Fail, fmt.Sprintf("last update %s installed %d days ago (more than %d)", best.HotFixID, days, maxDays)
	} else {
		r.Status, r.Reason = evidence.Pass, fmt.Sprintf("last update %s installed %d days ago", best.HotFixID, days)
	}
	return r
}

// hotfixDate reads Win32_QuickFixEngineering's InstalledOn: "10/15/2026"
// (month first, whatever the display language), "20261015", or a
// FILETIME in hexadecimal ("01db1f2a3c4d5e60"), which some machines hold.
func hotfixDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"1/2/2006", "20060102", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	if len(s) == 16 {
		if ft, err := strconv.ParseUint(s, 16, 64); err == nil {
			// 100-nanosecond intervals since 1601-01-01.
			const epochDiff = 116444736000000000
			if ft > epochDiff {
				return time.Unix(0, int64(ft-epochDiff)*100).UTC(), true
			}
		}
	}
	return time.Time{}, false
}

func rebootWindows(ctx context.Context, h *host.Host) evidence.Result {
	r := evidence.Result{Check: checkReboot}
	_, wu, err1 := h.RegQuery(ctx, regReboot)
	_, cbs, err2 := h.RegQuery(ctx, regCBS)
	if err1 != nil || err2 != nil {
		r.Status, r.Reason = evidence.Error, fmt.Sprintf("reboot markers: %v %v", err1, err2)
		return r
	}
	r.Observations = evidence.Observe(map[string]bool{"WindowsUpdate RebootRequired": wu, "CBS RebootPending": cbs})
	if wu || cbs {
		r.Status, r.Reason = evidence.Fail, "a reboot is required to finish installing updates"
	} else {
		r.Status, r.Reason = evidence.Pass, "no reboot pending (no RebootRequired or RebootPending key)"
	}
	return r
}

func releaseWindows(ctx context.Context, h *host.Host, now time.Time) evidence.Result {
	r := evidence.Result{Check: checkRelease}
	nt, found, err := h.RegQuery(ctx, regNT)
	if err != nil || !found {
		r.Status, r.Reason = evidence.Error, fmt.Sprintf("cannot read %s: %v", regNT, err)
		return r
	}
	build, edition, name := nt["CurrentBuild"], nt["EditionID"], nt["ProductName"]
	r.Observations = evidence.Observe(map[string]string{"ProductName": name, "EditionID": edition, "CurrentBuild": build, "DisplayVersion": nt["DisplayVersion"], "InstallationType": nt["InstallationType"]})
	var end string
	if nt["InstallationType"] == "Server" || strings.Contains(name, "Server") {
		end = windowsServerEnd[build]
	} else if e, ok := windowsEnd[build]; ok {
		end = e[0]
		if strings.HasPrefix(edition, "Enterprise") || strings.HasPrefix(edition, "Education") {
			end = e[1]
		}
	}
	if end == "" {
		r.Status, r.Reason = evidence.Error, fmt.Sprintf("no support dates known for %s build %s", name, build)
		return r
	}
	t, _ := time.Parse("2006-01-02", end)
	label := fmt.Sprintf("%s %s (build %s)", name, nt["DisplayVersion"], build)
	if now.After(t.Add(24 * time.Hour)) {
		r.Status, r.Reason = evidence.Fail, label+" has been out of servicing since "+end
	} else {
		r.Status, r.Reason = evidence.Pass, label+" is serviced until "+end
	}
	return r
}
