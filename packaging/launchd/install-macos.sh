#!/bin/sh
# Install the Annexa agent on macOS (run as root, e.g. from Jamf or an MDM):
#
#   sudo ./install-macos.sh ./annexa-agent-darwin-arm64 [SERVER_URL TOKEN [CA_FILE]]
#
# (annexa-plugin-host-darwin-* beside the agent binary is installed too, for plugins.)
#
# With a server and token it enrols on first start (through
# /etc/annexa/enroll.env, deleted once used). Idempotent: re-running
# upgrades the binary and restarts the daemon.
set -eu
bin=${1:?usage: install-macos.sh AGENT_BINARY [SERVER TOKEN [CA]]}
here=$(cd "$(dirname "$0")" && pwd)
install -d -m 0755 /usr/local/bin /etc/annexa
install -d -m 0700 /var/lib/annexa
install -m 0755 "$bin" /usr/local/bin/annexa-agent
hostbin=$(echo "$bin" | sed 's/annexa-agent/annexa-plugin-host/')
[ -f "$hostbin" ] && install -m 0755 "$hostbin" /usr/local/bin/annexa-plugin-host
[ -f /etc/annexa/agent.yaml ] || install -m 0644 "$here/../../configs/agent.yaml" /etc/annexa/agent.yaml
if [ $# -ge 3 ]; then
  umask 077
  {
    echo "ANNEXA_ENROLL_SERVER=$2"
    echo "ANNEXA_ENROLL_TOKEN=$3"
    [ $# -ge 4 ] && echo "ANNEXA_ENROLL_CA=$4"
  } > /etc/annexa/enroll.env
fi
install -m 0644 "$here/com.annexa.agent.plist" /Library/LaunchDaemons/com.annexa.agent.plist
launchctl bootout system/com.annexa.agent 2>/dev/null || true
launchctl bootstrap system /Library/LaunchDaemons/com.annexa.agent.plist
echo "annexa-agent installed; 'sudo annexa-agent status --config /etc/annexa/agent.yaml' shows how it is doing"
