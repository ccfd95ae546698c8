package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/agent/agentcmd"
)

// needTools skips without msitools and wixl, unless ANNEXA_TEST_MSI=required
// (make test installs them and sets it), where their absence fails.
func needTools(t *testing.T) {
	for _, tool := range []string{"wixl", "msibuild", "msiinfo", "msiextract"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("ANNEXA_TEST_MSI") == "required" {
				t.Fatalf("%s is not installed (scripts/msitools.sh installs Debian's msitools and wixl)", tool)
			}
			t.Skipf("%s not installed: the MSI is built with Debian's msitools and wixl", tool)
		}
	}
}

// build makes an MSI from stand-in binaries: the tables do not depend on
// what the executables hold.
func build(t *testing.T, arch string) string {
	bin := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bin, "annexa-agent.exe"), []byte("MZ agent"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "annexa-plugin-host.exe"), []byte("MZ plugin host"), 0o644))
	msi, err := Build(Options{Arch: arch, Version: "1.2.345", Bin: bin, Config: "../windows/agent.yaml", Out: t.TempDir()})
	require.NoError(t, err)
	require.Equal(t, "annexa-agent-1.2.345-"+arch+".msi", filepath.Base(msi))
	return msi
}

func table(t *testing.T, msi, name string) []map[string]string {
	t.Helper()
	rows, err := exportTable(msi, name)
	require.NoError(t, err, name)
	return rows
}

func rowBy(t *testing.T, rows []map[string]string, col, key string) map[string]string {
	t.Helper()
	for _, r := range rows {
		if r[col] == key {
			return r
		}
	}
	t.Fatalf("no row with %s = %s", col, key)
	return nil
}

// splitCommandLine splits a Windows command line the way the service's
// process will see it (quotes group, no backslash-quote in these lines).
func splitCommandLine(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, any = !quoted, true
		case r == ' ' && !quoted:
			if any {
				out = append(out, cur.String())
			}
			cur.Reset()
			any = false
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}

func TestMSITables(t *testing.T) {
	needTools(t)
	for _, arch := range []string{"x64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			msi := build(t, arch)

			info, err := output("msiinfo", "suminfo", msi)
			require.NoError(t, err)
			want := map[string]string{"x64": "x64;1033", "arm64": "Arm64;1033"}[arch]
			assert.Contains(t, info, "Template: "+want)

			// The files: the agent, the plugin host, the config; nothing else.
			files := table(t, msi, "File")
			var names []string
			for _, f := range files {
				names = append(names, f["FileName"])
			}
			sort.Strings(names)
			assert.Equal(t, []string{"agent.yaml", "annexa-agent.exe", "annexa-plugin-host.exe"}, names)
			ext := t.TempDir()
			_, err = output("msiextract", "-C", ext, msi)
			require.NoError(t, err)
			var extracted []string
			require.NoError(t, filepath.Walk(ext, func(p string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() {
					rel, _ := filepath.Rel(ext, p)
					extracted = append(extracted, filepath.ToSlash(rel))
				}
				return err
			}))
			sort.Strings(extracted)
			assert.Equal(t, []string{"Annexa/agent.yaml", "Annexa/annexa-agent.exe", "Annexa/annexa-plugin-host.exe"}, extracted)
			b, err := os.ReadFile(filepath.Join(ext, "Annexa", "annexa-agent.exe"))
			require.NoError(t, err)
			assert.Equal(t, "MZ agent", string(b))

			// Where they go: Program Files\Annexa and ProgramData\Annexa.
			dirs := table(t, msi, "Directory")
			assert.Equal(t, "ProgramFiles64Folder", rowBy(t, dirs, "Directory", "INSTALLDIR")["Directory_Parent"])
			assert.Equal(t, "CommonAppDataFolder", rowBy(t, dirs, "Directory", "STATEDIR")["Directory_Parent"])
			comps := table(t, msi, "Component")
			for _, c := range comps {
				attrs, _ := strconv.Atoi(c["Attributes"])
				assert.NotZero(t, attrs&256, "component %s is 64-bit", c["Component"])
			}
			cfg, _ := strconv.Atoi(rowBy(t, comps, "Component", "Config")["Attributes"])
			assert.Equal(t, 16|128, cfg&(16|128), "the config is permanent and never overwritten by an upgrade")
			state, _ := strconv.Atoi(rowBy(t, comps, "Component", "StateDir")["Attributes"])
			assert.NotZero(t, state&16, "the state directory outlives an uninstall")
			assert.Equal(t, "STATEDIR", rowBy(t, table(t, msi, "CreateFolder"), "Component_", "StateDir")["Directory_"])

			// The state directory's ACL: SYSTEM and Administrators only.
			acl := rowBy(t, table(t, msi, "MsiLockPermissionsEx"), "LockObject", "STATEDIR")
			assert.Equal(t, "CreateFolder", acl["Table"])
			assert.Equal(t, "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)", acl["SDDLText"])

			// The service, exactly as `annexa-agent service install` registers
			// it with the same paths.
			svc := rowBy(t, table(t, msi, "ServiceInstall"), "Name", "annexa-agent")
			spec := agentcmd.Service(`C:\ProgramData\Annexa\agent.yaml`, `C:\ProgramData\Annexa`)
			assert.Equal(t, spec.DisplayName, svc["DisplayName"])
			assert.Equal(t, spec.Description, svc["Description"])
			resolved := strings.ReplaceAll(svc["Arguments"], "[CommonAppDataFolder]", `C:\ProgramData\`)
			assert.Equal(t, spec.Arguments, splitCommandLine(resolved))
			assert.Equal(t, "16", svc["ServiceType"], "own process")
			assert.Equal(t, "2", svc["StartType"], "automatic")
			assert.Equal(t, "LocalSystem", svc["StartName"])
			assert.Equal(t, "AgentExe", svc["Component_"])
			ctl := rowBy(t, table(t, msi, "ServiceControl"), "Name", "annexa-agent")
			ev, _ := strconv.Atoi(ctl["Event"])
			assert.Equal(t, 1|2|32|128, ev, "started on install, stopped on install and uninstall, deleted on uninstall")
			assert.Equal(t, "0", ctl["Wait"], "a server out of reach does not fail the install")

			// Unattended enrollment: the properties Intune and GPO pass, the
			// file the agent's first start reads, the token hidden from logs.
			props := table(t, msi, "Property")
			assert.Equal(t, "ANNEXA_ENROLL_TOKEN", rowBy(t, props, "Property", "MsiHiddenProperties")["Value"])
			secure := strings.Split(rowBy(t, props, "Property", "SecureCustomProperties")["Value"], ";")
			for _, p := range []string{"ANNEXA_SERVER", "ANNEXA_ENROLL_TOKEN", "ANNEXA_CA", "PURGE", "WIX_UPGRADE_DETECTED"} {
				assert.Contains(t, secure, p)
			}
			ini := table(t, msi, "IniFile")
			keys := map[string]string{}
			for _, r := range ini {
				assert.Equal(t, "enroll.env", r["FileName"])
				assert.Equal(t, "STATEDIR", r["DirProperty"])
				assert.Equal(t, "Enroll", r["Component_"])
				keys[r["Key"]] = r["Value"]
			}
			assert.Equal(t, map[string]string{"ANNEXA_ENROLL_SERVER": "[ANNEXA_SERVER]", "ANNEXA_ENROLL_TOKEN": "[ANNEXA_ENROLL_TOKEN]", "ANNEXA_ENROLL_CA": "[ANNEXA_CA]"}, keys)
			assert.Equal(t, "ANNEXA_ENROLL_TOKEN", rowBy(t, comps, "Component", "Enroll")["Condition"])
			assert.Empty(t, table(t, msi, "Registry"), "nothing, the token least, goes to the registry")

			// Upgrades in place, downgrades refused.
			up := table(t, msi, "Upgrade")
			require.Len(t, up, 2)
			for _, r := range up {
				assert.Equal(t, "{"+UpgradeCode+"}", r["UpgradeCode"])
			}
			assert.Equal(t, "1.2.345", rowBy(t, up, "ActionProperty", "WIX_UPGRADE_DETECTED")["VersionMax"])
			assert.Equal(t, "1.2.345", rowBy(t, up, "ActionProperty", "WIX_DOWNGRADE_DETECTED")["VersionMin"])
			rowBy(t, table(t, msi, "LaunchCondition"), "Condition", "NOT WIX_DOWNGRADE_DETECTED")

			// PURGE=1 removes the state on uninstall, never on an upgrade.
			seq := table(t, msi, "InstallExecuteSequence")
			purge := rowBy(t, seq, "Action", "AnnexaPurgeState")
			assert.Contains(t, purge["Condition"], `PURGE="1"`)
			assert.Contains(t, purge["Condition"], "NOT UPGRADINGPRODUCTCODE")
			order := map[string]int{}
			for _, r := range seq {
				order[r["Action"]], _ = strconv.Atoi(r["Sequence"])
			}
			assert.Less(t, order["StopServices"], order["AnnexaPurgeState"])
			assert.Less(t, order["AnnexaPurgeState"], order["RemoveFiles"])
			assert.Less(t, order["InstallFiles"], order["WriteIniValues"])
			assert.Less(t, order["WriteIniValues"], order["StartServices"], "the enrollment file is there before the service starts")
			ca := rowBy(t, table(t, msi, "CustomAction"), "Action", "AnnexaPurgeState")
			assert.Equal(t, "3170", ca["Type"], "deferred, as SYSTEM, exit code ignored")
			assert.Contains(t, ca["Target"], `rmdir /s /q "[CommonAppDataFolder]Annexa"`)
		})
	}
}

func TestMSIRefusesBadInput(t *testing.T) {
	for _, o := range []Options{
		{Arch: "ia64", Version: "1.0.0"},
		{Arch: "x64", Version: "0.1.0~gabc"},
		{Arch: "x64", Version: "256.0.0"},
		{Arch: "x64", Version: "1.0.70000"},
	} {
		_, err := Build(o)
		assert.Error(t, err, "%+v", o)
	}
}

func TestCommandLineQuotes(t *testing.T) {
	assert.Equal(t, `run --config "C:\Program Files\a.yaml" --state "[CommonAppDataFolder]Annexa" ""`,
		CommandLine([]string{"run", "--config", `C:\Program Files\a.yaml`, "--state", "[CommonAppDataFolder]Annexa", ""}))
}
