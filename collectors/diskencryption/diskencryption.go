// Package diskencryption checks that data at rest is encrypted (8.24, 8.1):
// the system volume, every fixed data volume, and swap.
//
// Linux reads the block device tree (`lsblk -J`), /proc/self/mountinfo,
// /proc/swaps and /etc/crypttab: a volume is encrypted when it, or a device
// under it, is a dm-crypt mapping (LUKS1, LUKS2 or plain), so LVM on LUKS,
// LUKS on LVM and nested layers all count; ZFS datasets are asked for their
// native encryption (`zfs get`). macOS reads `fdesetup status`, `diskutil
// apfs list` and `sysctl vm.swapusage`; Windows `manage-bde -status`.
package diskencryption

import (
	"context"
	"time"

	"github.com/annexa-dev/annexa/collectors"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
)

func init() { collectors.Register(Collector{}) }

// Collector is the disk_encryption collector.
type Collector struct{}

// Name implements collectors.Collector.
func (Collector) Name() string { return "disk_encryption" }

// Version implements collectors.Collector.
func (Collector) Version() string { return "1.0.0" }

const (
	checkSystem = "disk_encryption.system_volume"
	checkData   = "disk_encryption.data_volumes"
	checkSwap   = "disk_encryption.swap"
)

// Checks implements collectors.Collector.
func (Collector) Checks() []evidence.Check {
	fresh := evidence.Duration(26 * time.Hour)
	p := []string{"linux", "darwin", "windows"}
	c := []string{"8.24", "8.1"}
	return []evidence.Check{
		{ID: checkSystem, Title: "System volume encrypted", Controls: c, Platforms: p, Freshness: fresh},
		{ID: checkData, Title: "Every fixed data volume encrypted", Controls: c, Platforms: p, Freshness: fresh},
		{ID: checkSwap, Title: "Swap encrypted", Controls: c, Platforms: p, Freshness: fresh},
	}
}

// Collect implements collectors.Collector.
func (c Collector) Collect(ctx context.Context, h *host.Host, settings collectors.Settings) ([]evidence.Result, error) {
	switch h.OS {
	case "linux":
		return collectLinux(ctx, h, collectors.SettingsOf(settings, defaults)), nil
	case "darwin":
		return collectDarwin(ctx, h), nil
	case "windows":
		return collectWindows(ctx, h), nil
	}
	return collectors.ErrorResults(c, "disk_encryption: no reader for "+h.OS), nil
}

func errorAll(reason string) []evidence.Result {
	return collectors.ErrorResults(Collector{}, reason)
}
