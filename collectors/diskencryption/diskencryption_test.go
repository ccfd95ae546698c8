package diskencryption

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/collectors/capture"
	"github.com/annexa-dev/annexa/collectors/collectortest"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

const lsblkNew = "lsblk -J -b -o NAME,KNAME,PATH,TYPE,FSTYPE,FSVER,MOUNTPOINTS,SIZE,RM,RO"
const lsblkOld = "lsblk -J -b -o NAME,KNAME,PATH,TYPE,FSTYPE,MOUNTPOINT,SIZE,RM,RO"

func collect(t *testing.T, osName, root string, outputs map[string]string) map[string]evidence.Result {
	t.Helper()
	h := &host.Host{Root: root, OS: osName, Runner: &host.Replay{Dir: "testdata", Outputs: outputs}, Clock: time.Now}
	return collectortest.Collect(t, Collector{}, h, nil)
}

func status(rs map[string]evidence.Result) [3]evidence.Status {
	return [3]evidence.Status{rs[checkSystem].Status, rs[checkData].Status, rs[checkSwap].Status}
}

// The real Debian 12 VM's fixture, kept as a capture.
func TestLinuxCapture(t *testing.T) {
	h := &host.Host{Root: "testdata/vm-plain", OS: "linux", Runner: &host.Replay{Dir: "testdata", Outputs: map[string]string{lsblkNew: "vm-plain/lsblk.json"}}, Clock: time.Now}
	collectortest.Capture(t, Collector{}, h, "testdata/captures/debian12-vm-plain", collectortest.CaptureMeta{
		OSVersion: "Debian GNU/Linux 12 (bookworm), util-linux 2.38.1", Locale: "C", Provenance: capture.Captured,
		Source: "this project's Debian 12 build VM: a virtio disk, unencrypted, no swap"})
}

func TestLinux(t *testing.T) {
	P, F, E := evidence.Pass, evidence.Fail, evidence.Error
	for _, tc := range []struct {
		dir     string
		outputs map[string]string
		want    [3]evidence.Status
		reasons [3]string
	}{
		// Real: this VM's virtio disk, unencrypted, no swap; /run/netns is a bind mount of /.
		{"vm-plain", map[string]string{lsblkNew: "vm-plain/lsblk.json"}, [3]evidence.Status{F, P, P},
			[3]string{"/ is not encrypted (vda disk)", "no fixed data volumes besides the system volume", "no swap in use"}},
		// Ubuntu's "encrypt the disk + LVM": LVM on LUKS2, a LUKS2 data disk, a USB stick and snaps (not fixed).
		{"luks2-lvm", map[string]string{lsblkNew: "luks2-lvm/lsblk.json"}, [3]evidence.Status{P, P, P},
			[3]string{"/ is encrypted (LUKS2)", "all 1 fixed data volumes are encrypted", "all 1 swap areas are encrypted or in RAM"}},
		// LUKS on LVM for /, but /home and a swap partition plain.
		{"luks-on-lvm", map[string]string{lsblkNew: "luks-on-lvm/lsblk.json"}, [3]evidence.Status{P, F, F},
			[3]string{"/ is encrypted (LUKS2)", "not encrypted: /home (/dev/mapper/vg0-home)", "swap not encrypted: /dev/sda4"}},
		// ZFS native encryption on the root dataset, not on rpool/home; zram swap.
		{"zfs", map[string]string{lsblkNew: "zfs/lsblk.json",
			"zfs get -H -o value encryption,keystatus rpool/ROOT/debian": "zfs/zfs-root.txt",
			"zfs get -H -o value encryption,keystatus rpool/home":        "zfs/zfs-home.txt",
			"zfs get -H -o value encryption,keystatus rpool/docker":      "zfs/zfs-docker.txt"}, [3]evidence.Status{P, F, P},
			[3]string{"/ is encrypted (ZFS native aes-256-gcm)", "not encrypted: /home (rpool/home)", "all 1 swap areas are encrypted or in RAM"}},
		// RHEL 8's older lsblk, and swap on plain dm-crypt with a random key per boot.
		{"rhel8", map[string]string{lsblkNew: "!exit 1", lsblkOld: "rhel8/lsblk-old.json"}, [3]evidence.Status{P, P, P},
			[3]string{"/ is encrypted (LUKS)", "no fixed data volumes besides the system volume", "all 1 swap areas are encrypted or in RAM"}},
		// No lsblk, or garbage from it: an error with the reason, never a guess.
		{"vm-plain", map[string]string{}, [3]evidence.Status{E, E, E}, [3]string{"cannot list block devices: lsblk: command not found"}},
		{"vm-plain", map[string]string{lsblkNew: "macos/fdesetup-on.txt"}, [3]evidence.Status{E, E, E}, [3]string{"lsblk: not lsblk JSON"}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			rs := collect(t, "linux", "testdata/"+tc.dir, tc.outputs)
			require.Equal(t, tc.want, status(rs), "%v", rs)
			for i, id := range []string{checkSystem, checkData, checkSwap} {
				if tc.reasons[i] != "" {
					require.True(t, strings.HasPrefix(rs[id].Reason, tc.reasons[i]), "%s: %q", id, rs[id].Reason)
				}
			}
		})
	}
}

// The observations show the layers each decision rests on.
func TestLayersObserved(t *testing.T) {
	rs := collect(t, "linux", "testdata/luks2-lvm", map[string]string{lsblkNew: "luks2-lvm/lsblk.json"})
	var o struct {
		Volume   volume   `json:"volume"`
		Crypttab []string `json:"crypttab"`
	}
	require.NoError(t, json.Unmarshal(rs[checkSystem].Observations, &o))
	require.Equal(t, []string{"nvme0n1 disk", "nvme0n1p3 part crypto_LUKS 2", "dm_crypt-0 crypt LVM2_member LVM2 001", "ubuntu--vg-ubuntu--lv lvm ext4 1.0"}, o.Volume.Layers)
	require.Len(t, o.Crypttab, 2)
	var swap struct {
		Swaps []map[string]any `json:"swaps"`
	}
	require.NoError(t, json.Unmarshal(rs[checkSwap].Observations, &swap))
	require.Contains(t, swap.Swaps[0]["how"], "LUKS2: nvme0n1 disk > nvme0n1p3 part crypto_LUKS 2")

	rs = collect(t, "linux", "testdata/luks-on-lvm", map[string]string{lsblkNew: "luks-on-lvm/lsblk.json"})
	require.NoError(t, json.Unmarshal(rs[checkSwap].Observations, &swap))
	require.Len(t, swap.Swaps, 2)
	require.Equal(t, "/swapfile", swap.Swaps[1]["name"])
	require.Equal(t, true, swap.Swaps[1]["encrypted"], "a swap file on the encrypted /")
}

func TestMacOS(t *testing.T) {
	base := map[string]string{"diskutil apfs list": "macos/apfs-list.txt", "sysctl vm.swapusage": "macos/swapusage.txt"}
	with := func(fde string) map[string]string {
		m := map[string]string{"fdesetup status": fde}
		for k, v := range base {
			m[k] = v
		}
		return m
	}
	rs := collect(t, "darwin", "", with("macos/fdesetup-on.txt"))
	require.Equal(t, evidence.Pass, rs[checkSystem].Status)
	require.Equal(t, evidence.Fail, rs[checkData].Status)
	require.Equal(t, "APFS volumes without encryption: Projects", rs[checkData].Reason)
	require.Equal(t, evidence.Pass, rs[checkSwap].Status)

	rs = collect(t, "darwin", "", with("macos/fdesetup-encrypting.txt"))
	require.Equal(t, evidence.Fail, rs[checkSystem].Status)
	require.Equal(t, "FileVault is still encrypting the disk: Encryption in progress: Percent completed = 42.5", rs[checkSystem].Reason)

	rs = collect(t, "darwin", "", with("macos/fdesetup-off.txt"))
	require.Equal(t, "FileVault is off", rs[checkSystem].Reason)

	rs = collect(t, "darwin", "", map[string]string{})
	require.Equal(t, [3]evidence.Status{evidence.Error, evidence.Error, evidence.Error}, status(rs))
}

func TestWindows(t *testing.T) {
	mm := "reg query " + regMemory
	rs := collect(t, "windows", "", map[string]string{"manage-bde -status": "windows/manage-bde-encrypted.txt", mm: "windows/mm-system-managed.txt"})
	require.Equal(t, [3]evidence.Status{evidence.Pass, evidence.Pass, evidence.Pass}, status(rs), "%v", rs)
	require.Equal(t, "all 1 paging files are on BitLocker-protected volumes", rs[checkSwap].Reason)
	// A second paging file on the removable E:, which BitLocker does not protect.
	rs = collect(t, "windows", "", map[string]string{"manage-bde -status": "windows/manage-bde-encrypted.txt", mm: "windows/mm-two-files.txt"})
	require.Equal(t, `paging files on volumes BitLocker does not protect: E:\pagefile.sys`, rs[checkSwap].Reason)
	require.Equal(t, "C: is BitLocker-encrypted (XTS-AES 128, Fully Encrypted), protection on", rs[checkSystem].Reason)
	require.Equal(t, "all 1 fixed data volumes are BitLocker-encrypted", rs[checkData].Reason, "the USB stick is removable")

	rs = collect(t, "windows", "", map[string]string{"manage-bde -status": "windows/manage-bde-suspended.txt", mm: "windows/mm-system-managed.txt"})
	require.Equal(t, [3]evidence.Status{evidence.Fail, evidence.Fail, evidence.Fail}, status(rs))
	require.Equal(t, "C: is encrypted but BitLocker is suspended (Protection Off (1 reboots left))", rs[checkSystem].Reason)
	require.Equal(t, "D:: Fully Decrypted, 0.0% encrypted, Protection Off", rs[checkData].Reason)

	rs = collect(t, "windows", "", map[string]string{"manage-bde -status": "!exit 1"})
	require.Equal(t, evidence.Error, rs[checkSystem].Status)
	require.Contains(t, rs[checkSystem].Reason, "elevated")
}

func TestLive(t *testing.T) { collectortest.Live(t, Collector{}) }

func FuzzManageBDE(f *testing.F) {
	for _, p := range []string{"testdata/windows/manage-bde-encrypted.txt", "testdata/windows/manage-bde-suspended.txt"} {
		b, _ := readFile(p)
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) { _, _ = parseManageBDE(s) })
}

func FuzzAPFSList(f *testing.F) {
	b, _ := readFile("testdata/macos/apfs-list.txt")
	f.Add(string(b))
	f.Fuzz(func(t *testing.T, s string) { _, _ = parseAPFSList(s) })
}

func FuzzLsblk(f *testing.F) {
	for _, p := range []string{"testdata/luks2-lvm/lsblk.json", "testdata/rhel8/lsblk-old.json", "testdata/vm-plain/lsblk.json"} {
		b, _ := readFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var tree struct {
			Blockdevices []blockdev `json:"blockdevices"`
		}
		if json.Unmarshal(b, &tree) == nil {
			walk(tree.Blockdevices, nil, map[string]*volume{}, map[string]*volume{})
		}
	})
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }

// Several LUKS layers (LUKS inside LUKS, as some hardened installs do)
// name both.
func TestNestedLUKS(t *testing.T) {
	s := func(v string) *string { return &v }
	v := describe([]blockdev{
		{Name: "sda", Type: "disk"},
		{Name: "sda2", Type: "part", FSType: s("crypto_LUKS"), FSVer: s("1")},
		{Name: "outer", Type: "crypt", FSType: s("crypto_LUKS"), FSVer: s("2")},
		{Name: "inner", Type: "crypt", FSType: s("ext4")},
	})
	require.True(t, v.Encrypted)
	require.Equal(t, "LUKS1 + LUKS2", v.Method)
}

// "Used Space Only Encrypted" with protection on is encrypted: what
// Windows 11 device encryption and Intune set up (a real published output).
func TestWindowsUsedSpaceOnly(t *testing.T) {
	mm := "reg query " + regMemory
	outputs := map[string]string{"manage-bde -status": "windows/manage-bde-used-space-only.txt", mm: "windows/mm-system-managed.txt"}
	collectortest.Capture(t, Collector{}, &host.Host{OS: "windows", Runner: &host.Replay{Dir: "testdata", Outputs: outputs}, Clock: time.Now},
		"testdata/captures/windows11-22h2-used-space-only", collectortest.CaptureMeta{
			OSVersion: "Windows 11 22H2 (build 22621)", Provenance: capture.Mixed,
			Source: "manage-bde -status of a Windows 11 22H2 laptop with BitLocker (password protector, Used Space Only Encrypted), published in a public how-to; the paging file's registry key composed",
			Sources: map[string]string{"manage-bde -status": "published: a public BitLocker how-to's manage-bde -status C: (Windows 11 22H2, build 22621), CRLF, decimal commas of its author's locale",
				mm: "composed: reg query of Memory Management with a system-managed paging file, as reg prints REG_MULTI_SZ"}})
	rs := collect(t, "windows", "", outputs)
	require.Equal(t, evidence.Pass, rs[checkSystem].Status, rs[checkSystem].Reason)
	require.Equal(t, "C: is BitLocker-encrypted (AES 256, Used Space Only Encrypted), protection on", rs[checkSystem].Reason)
}

// A volume without a drive letter is its own volume, not merged into the
// one before it: C: stays as it is, and the letterless one is listed.
func TestWindowsLetterlessVolume(t *testing.T) {
	mm := "reg query " + regMemory
	rs := collect(t, "windows", "", map[string]string{"manage-bde -status": "windows/manage-bde-letterless.txt", mm: "windows/mm-system-managed.txt"})
	require.Equal(t, evidence.Pass, rs[checkSystem].Status, rs[checkSystem].Reason)
	require.Equal(t, "C: is BitLocker-encrypted (XTS-AES 256, Fully Encrypted), protection on", rs[checkSystem].Reason)
	require.Equal(t, evidence.Pass, rs[checkData].Status)
	require.Contains(t, string(rs[checkData].Observations), `"volume":"\\\\?\\Volume{7d1a5b5e-3a40-4c2b-9d71-0b5e7f2e8a11}\\"`)
	vols, err := parseManageBDE(readFixture(t, "windows/manage-bde-letterless.txt"))
	require.NoError(t, err)
	require.Len(t, vols, 2)
	require.Equal(t, "Fully Encrypted", vols[0].Conversion, "C: keeps its own status")
	require.Equal(t, "BEK VOLUME", vols[1].Label)
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	return string(b)
}

// A Time Machine (Backup role) volume holds data and is judged; on Mojave
// the boot volume (no role, mounted at /) is FileVault's, not a second
// data volume.
func TestMacOSBackupAndMojave(t *testing.T) {
	rs := collect(t, "darwin", "", map[string]string{"fdesetup status": "macos/fdesetup-on.txt", "diskutil apfs list": "macos/apfs-list-backup.txt", "sysctl vm.swapusage": "macos/swapusage.txt"})
	require.Equal(t, evidence.Fail, rs[checkData].Status)
	require.Equal(t, "APFS volumes without encryption: Projects, Time Machine", rs[checkData].Reason)

	rs = collect(t, "darwin", "", map[string]string{"fdesetup status": "macos/fdesetup-on.txt", "diskutil apfs list": "macos/apfs-list-mojave.txt", "sysctl vm.swapusage": "macos/swapusage.txt"})
	require.Equal(t, evidence.Pass, rs[checkData].Status)
	require.Equal(t, "no APFS data volumes besides the system's", rs[checkData].Reason)
}

// Win32_EncryptableVolume's numeric states decide first: no language in
// them. manage-bde is the fallback.
func TestWindowsEncryptableVolume(t *testing.T) {
	mm := "reg query " + regMemory
	ps := "powershell -NoProfile -NonInteractive -Command " + psEncryptable
	rs := collect(t, "windows", "", map[string]string{ps: "windows/encryptable-volume.json", mm: "windows/mm-system-managed.txt"})
	require.Equal(t, [3]evidence.Status{evidence.Pass, evidence.Pass, evidence.Pass}, status(rs), "%v", rs)
	require.Equal(t, "C: is BitLocker-encrypted (XTS-AES 256, Fully Encrypted), protection on", rs[checkSystem].Reason)
	require.Equal(t, "all 1 fixed data volumes are BitLocker-encrypted (1 volumes without a drive letter listed, not judged)", rs[checkData].Reason,
		"the stick is removable, the key volume has no letter")
}
