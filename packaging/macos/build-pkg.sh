#!/bin/sh
# Build the Annexa agent's macOS installer package, on a Mac with the Xcode
# command line tools (pkgbuild, productbuild, lipo). One command, from the
# repository root, after `make cross`:
#
#   packaging/macos/build-pkg.sh 0.1.160 ["Developer ID Installer: Example Corp (TEAMID)"]
#
# It makes dist/annexa-agent-VERSION.pkg: a flat package with a universal
# (arm64 + x86_64) agent and plugin host in /usr/local/bin, the launchd
# daemon, and a postinstall that enrols from a configuration profile (or
# /etc/annexa/enroll.env) if one is present and starts the daemon. With a
# signing identity the package is signed, ready for notarisation
# (xcrun notarytool submit dist/annexa-agent-VERSION.pkg --wait …).
set -eu
version=${1:?usage: build-pkg.sh VERSION [INSTALLER_SIGNING_IDENTITY]}
identity=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cross=$top/bin/cross
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

root=$work/root
install -d -m 0755 "$root/usr/local/bin" "$root/usr/local/share/annexa" "$root/Library/LaunchDaemons"
for b in annexa-agent annexa-plugin-host; do
  lipo -create -output "$root/usr/local/bin/$b" "$cross/$b-darwin-arm64" "$cross/$b-darwin-amd64"
  chmod 0755 "$root/usr/local/bin/$b"
done
install -m 0644 "$top/configs/agent.yaml" "$root/usr/local/share/annexa/agent.yaml"
install -m 0644 "$top/packaging/launchd/com.annexa.agent.plist" "$root/Library/LaunchDaemons/com.annexa.agent.plist"

pkgbuild --root "$root" --scripts "$here/scripts" --identifier com.annexa.agent --version "$version" \
  --install-location / --ownership recommended "$work/annexa-agent-component.pkg"
mkdir -p "$top/dist"
if [ -n "$identity" ]; then
  productbuild --package "$work/annexa-agent-component.pkg" --sign "$identity" "$top/dist/annexa-agent-$version.pkg"
else
  productbuild --package "$work/annexa-agent-component.pkg" "$top/dist/annexa-agent-$version.pkg"
fi
echo "$top/dist/annexa-agent-$version.pkg"
