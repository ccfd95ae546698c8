// Package all registers every built-in collector. The agent imports it;
// a new collector adds its import here.
package all

import (
	_ "github.com/annexa-dev/annexa/collectors/accesslogs"     // authentication events since the last run
	_ "github.com/annexa-dev/annexa/collectors/accounts"       // local accounts, sudo, password policy
	_ "github.com/annexa-dev/annexa/collectors/antimalware"    // ClamAV, Defender, EDR agents, XProtect
	_ "github.com/annexa-dev/annexa/collectors/diskencryption" // LUKS, ZFS, FileVault, BitLocker
	_ "github.com/annexa-dev/annexa/collectors/firewall"       // nftables and iptables
	_ "github.com/annexa-dev/annexa/collectors/inventory"      // host facts and installed software
	_ "github.com/annexa-dev/annexa/collectors/patchlevel"     // updates, automatic updates, reboot, release support
	_ "github.com/annexa-dev/annexa/collectors/screenlock"     // idle lock per logged-in user
	_ "github.com/annexa-dev/annexa/collectors/ssh"            // sshd configuration
	_ "github.com/annexa-dev/annexa/collectors/timesync"       // clock synchronisation
)
