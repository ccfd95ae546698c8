// Command msi builds the Annexa agent's Windows installers on Linux with
// Debian's msitools: wixl compiles annexa-agent.wxs (beside this file),
// then msibuild adds what wixl cannot author. `make package` runs it once
// per architecture:
//
//	go run ./packaging/msi -arch x64 -version 0.1.42 -bin bin/windows-amd64 -out dist
package main

import (
	"bytes"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"github.com/annexa-dev/annexa/agent/agentcmd"
)

//go:embed annexa-agent.wxs
var wxsTemplate string

// UpgradeCode ties every version of the agent's MSI together: an install
// of a newer one upgrades an older one in place. It never changes.
const UpgradeCode = "5A7D3E1C-2B4F-4E8A-9C61-0D3B7F2A9E54"

// Component GUIDs never change either: Windows Installer counts a
// component by its GUID across versions.
var componentGUIDs = map[string]string{
	"AgentExe":      "0E2D6A3B-71C4-4F0E-8B5A-3C9D2E7F1A60",
	"PluginHostExe": "6B1F4C8D-2A3E-4D7B-9E05-8F6C1A2B3D71",
	"StateDir":      "9C3E5A7B-4D6F-4A1C-8E2B-7D9F0C1E2A82",
	"Config":        "2D4F6B8A-5C7E-4B2D-9F3A-6E8C0D2F4B93",
	"Enroll":        "7E5A9C1D-6B8F-4C3E-8A4B-5F7D9E1C3A04",
}

// Where the MSI puts things, in Windows Installer's formatted syntax. The
// paths carry no trailing backslash: inside quotes on a command line, `\"`
// would escape the quote.
const (
	stateDir   = `[CommonAppDataFolder]Annexa`
	configPath = `[CommonAppDataFolder]Annexa\agent.yaml`
)

// StateDirSDDL is the state directory's ACL: protected from inheritance,
// full control for SYSTEM and Administrators, inherited by what the agent
// writes there (its key, the outbox, the enrollment file), nobody else.
const StateDirSDDL = "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

// SecureProperties pass from the msiexec command line to the install's
// server side (the IniFile values and the purge condition need them).
var SecureProperties = []string{"ANNEXA_SERVER", "ANNEXA_ENROLL_TOKEN", "ANNEXA_CA", "PURGE"}

func main() {
	arch := flag.String("arch", "x64", "x64 or arm64")
	version := flag.String("version", "0.1.0", "MSI version: major.minor.build (≤255.255.65535), increasing with each build for upgrades")
	bin := flag.String("bin", "", "folder holding annexa-agent.exe and annexa-plugin-host.exe for -arch")
	config := flag.String("config", "packaging/windows/agent.yaml", "the agent.yaml the MSI installs (once, never overwritten)")
	out := flag.String("out", "dist", "output folder")
	flag.Parse()
	path, err := Build(Options{Arch: *arch, Version: *version, Bin: *bin, Config: *config, Out: *out})
	if err != nil {
		fmt.Fprintln(os.Stderr, "msi:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}

// Options are what one MSI is built from.
type Options struct {
	Arch, Version, Bin, Config, Out string
}

var msiVersion = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)$`)

// Build makes dist/annexa-agent-<version>-<arch>.msi and returns its path.
func Build(o Options) (string, error) {
	if o.Arch != "x64" && o.Arch != "arm64" {
		return "", fmt.Errorf("arch %q: want x64 or arm64", o.Arch)
	}
	m := msiVersion.FindStringSubmatch(o.Version)
	if m == nil {
		return "", fmt.Errorf("version %q: an MSI version is major.minor.build", o.Version)
	}
	for i, limit := range []int{255, 255, 65535} {
		if n, _ := strconv.Atoi(m[i+1]); n > limit {
			return "", fmt.Errorf("version %q: field %d is over %d", o.Version, i+1, limit)
		}
	}
	for _, tool := range []string{"wixl", "msibuild", "msiinfo"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s not found: install Debian's msitools and wixl (scripts/msitools.sh does)", tool)
		}
	}
	for _, f := range []string{filepath.Join(o.Bin, "annexa-agent.exe"), filepath.Join(o.Bin, "annexa-plugin-host.exe"), o.Config} {
		if _, err := os.Stat(f); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp("", "annexa-msi")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	// wixl takes sources relative to where it runs: the inputs are copied
	// into the work folder under the names the MSI gives them.
	for src, dst := range map[string]string{
		filepath.Join(o.Bin, "annexa-agent.exe"):       "annexa-agent.exe",
		filepath.Join(o.Bin, "annexa-plugin-host.exe"): "annexa-plugin-host.exe",
		o.Config: "agent.yaml",
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(work, dst), b, 0o644); err != nil {
			return "", err
		}
	}

	svc := agentcmd.Service(configPath, stateDir)
	wxs, err := render(map[string]any{
		"Generated": "packaging/msi/annexa-agent.wxs", "Version": o.Version, "Arch": o.Arch, "UpgradeCode": UpgradeCode,
		"Guids": componentGUIDs, "Service": svc, "ServiceArgs": CommandLine(svc.Arguments),
	})
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(work, "annexa-agent.wxs"), wxs, 0o644); err != nil {
		return "", err
	}
	msi, err := filepath.Abs(filepath.Join(o.Out, fmt.Sprintf("annexa-agent-%s-%s.msi", o.Version, o.Arch)))
	if err != nil {
		return "", err
	}
	// wixl knows x86 and x64; an Arm64 package is the x64 one retargeted
	// (64-bit components, Program Files), below.
	wixl := exec.Command("wixl", "-a", "x64", "-o", msi, "annexa-agent.wxs")
	wixl.Dir = work
	if out, err := wixl.CombinedOutput(); err != nil {
		return "", fmt.Errorf("wixl: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if err := finish(msi, o.Arch); err != nil {
		return "", fmt.Errorf("%s: %w", msi, err)
	}
	return msi, nil
}

func render(data map[string]any) ([]byte, error) {
	t, err := template.New("wxs").Funcs(template.FuncMap{}).Option("missingkey=error").Parse(wxsTemplate)
	if err != nil {
		return nil, err
	}
	// Every value goes into an XML attribute: escape it.
	esc := map[string]any{}
	for k, v := range data {
		switch x := v.(type) {
		case string:
			esc[k] = xmlEscape(x)
		case agentcmd.ServiceSpec:
			esc[k] = agentcmd.ServiceSpec{Name: xmlEscape(x.Name), DisplayName: xmlEscape(x.DisplayName), Description: xmlEscape(x.Description)}
		default:
			esc[k] = v
		}
	}
	var b bytes.Buffer
	err = t.Execute(&b, esc)
	return b.Bytes(), err
}

func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// CommandLine joins arguments for a Windows command line: an argument with
// a space, a tab, a quote or a bracket (an unresolved MSI property, which
// may resolve to a path with spaces) is quoted. Arguments never end in a
// backslash here (see stateDir).
func CommandLine(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"[") {
			a = `"` + strings.ReplaceAll(a, `"`, `\"`) + `"`
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// finish adds to the wixl output what wixl cannot author.
func finish(msi, arch string) error {
	components, err := exportTable(msi, "Component")
	if err != nil {
		return err
	}
	attrs := map[string]int{}
	for _, row := range components {
		n, _ := strconv.Atoi(row["Attributes"])
		attrs[row["Component"]] = n
	}
	props, err := exportTable(msi, "Property")
	if err != nil {
		return err
	}
	secure := SecureProperties
	for _, row := range props {
		if row["Property"] == "SecureCustomProperties" {
			secure = append(strings.Split(row["Value"], ";"), secure...)
		}
	}
	const (
		permanent      = 16  // msidbComponentAttributesPermanent
		neverOverwrite = 128 // msidbComponentAttributesNeverOverwrite
	)
	queries := []string{
		// The state directory and the config outlive an uninstall (the
		// purge below removes them when asked); an upgrade never
		// overwrites an edited config.
		fmt.Sprintf("UPDATE `Component` SET `Attributes` = %d WHERE `Component` = 'StateDir'", attrs["StateDir"]|permanent),
		fmt.Sprintf("UPDATE `Component` SET `Attributes` = %d WHERE `Component` = 'Config'", attrs["Config"]|permanent|neverOverwrite),
		// The enrollment file is written only when a token is given.
		"UPDATE `Component` SET `Condition` = 'ANNEXA_ENROLL_TOKEN' WHERE `Component` = 'Enroll'",
		"DELETE FROM `Property` WHERE `Property` = 'SecureCustomProperties'",
		fmt.Sprintf("INSERT INTO `Property` (`Property`, `Value`) VALUES ('SecureCustomProperties', '%s')", strings.Join(dedupe(secure), ";")),

		"CREATE TABLE `MsiLockPermissionsEx` (`MsiLockPermissionsEx` CHAR(72) NOT NULL, `LockObject` CHAR(72) NOT NULL, `Table` CHAR(32) NOT NULL, " +
			"`SDDLText` LONGCHAR NOT NULL, `Condition` CHAR(255) PRIMARY KEY `MsiLockPermissionsEx`)",
		fmt.Sprintf("INSERT INTO `MsiLockPermissionsEx` (`MsiLockPermissionsEx`, `LockObject`, `Table`, `SDDLText`) VALUES ('StateDirAcl', 'STATEDIR', 'CreateFolder', '%s')", StateDirSDDL),

		// The enrollment file: the agent's first start enrols from it and
		// deletes it (agentcmd.DefaultEnrollFile).
		"CREATE TABLE `IniFile` (`IniFile` CHAR(72) NOT NULL, `FileName` CHAR(255) NOT NULL, `DirProperty` CHAR(72), `Section` CHAR(96) NOT NULL, " +
			"`Key` CHAR(128) NOT NULL, `Value` CHAR(255) NOT NULL, `Action` INT NOT NULL, `Component_` CHAR(72) NOT NULL PRIMARY KEY `IniFile`)",
		"INSERT INTO `IniFile` (`IniFile`, `FileName`, `DirProperty`, `Section`, `Key`, `Value`, `Action`, `Component_`) VALUES ('EnrollServer', 'enroll.env', 'STATEDIR', 'annexa', 'ANNEXA_ENROLL_SERVER', '[ANNEXA_SERVER]', 0, 'Enroll')",
		"INSERT INTO `IniFile` (`IniFile`, `FileName`, `DirProperty`, `Section`, `Key`, `Value`, `Action`, `Component_`) VALUES ('EnrollToken', 'enroll.env', 'STATEDIR', 'annexa', 'ANNEXA_ENROLL_TOKEN', '[ANNEXA_ENROLL_TOKEN]', 0, 'Enroll')",
		"INSERT INTO `IniFile` (`IniFile`, `FileName`, `DirProperty`, `Section`, `Key`, `Value`, `Action`, `Component_`) VALUES ('EnrollCA', 'enroll.env', 'STATEDIR', 'annexa', 'ANNEXA_ENROLL_CA', '[ANNEXA_CA]', 0, 'Enroll')",
		"INSERT INTO `InstallExecuteSequence` (`Action`, `Sequence`) VALUES ('RemoveIniValues', 3800)",
		"INSERT INTO `InstallExecuteSequence` (`Action`, `Sequence`) VALUES ('WriteIniValues', 5100)",

		// PURGE=1 on uninstall (not on an upgrade's removal of the old
		// version) removes the state directory: key, identity, outbox,
		// config. Deferred, as SYSTEM, before the files go.
		"INSERT INTO `CustomAction` (`Action`, `Type`, `Source`, `Target`) VALUES ('AnnexaPurgeState', 3170, 'TARGETDIR', " +
			"'\"[SystemFolder]cmd.exe\" /c rmdir /s /q \"" + stateDir + "\"')",
		"INSERT INTO `InstallExecuteSequence` (`Action`, `Condition`, `Sequence`) VALUES ('AnnexaPurgeState', 'REMOVE=\"ALL\" AND PURGE=\"1\" AND NOT UPGRADINGPRODUCTCODE', 3490)",
	}
	args := []string{msi}
	for _, q := range queries {
		args = append(args, "-q", q)
	}
	if err := run("msibuild", args...); err != nil {
		return err
	}
	if arch == "arm64" {
		info, err := output("msiinfo", "suminfo", msi)
		if err != nil {
			return err
		}
		m := regexp.MustCompile(`(?m)^Revision number \(UUID\): (\S+)`).FindStringSubmatch(info)
		if m == nil {
			return errors.New("no package code in the summary information")
		}
		if err := run("msibuild", msi, "-s", "Annexa agent", "Annexa", "Arm64;1033", m[1]); err != nil {
			return err
		}
	}
	return nil
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// exportTable reads a table as msiinfo exports it (IDT: names, types,
// key line, then rows, tab-separated).
func exportTable(msi, table string) ([]map[string]string, error) {
	out, err := output("msiinfo", "export", msi, table)
	if err != nil {
		return nil, err
	}
	return ParseIDT(out)
}

// ParseIDT reads an exported table into rows by column name.
func ParseIDT(idt string) ([]map[string]string, error) {
	lines := strings.Split(strings.ReplaceAll(idt, "\r\n", "\n"), "\n")
	if len(lines) < 3 {
		return nil, fmt.Errorf("not an exported table: %d lines", len(lines))
	}
	cols := strings.Split(lines[0], "\t")
	var rows []map[string]string
	for _, l := range lines[3:] {
		if l == "" {
			continue
		}
		vals := strings.Split(l, "\t")
		row := map[string]string{}
		for i, c := range cols {
			if i < len(vals) {
				row[c] = vals[i]
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func run(name string, args ...string) error {
	_, err := output(name, args...)
	return err
}

func output(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
