#!/bin/sh
# annexa-agent pre-remove: stop the service if systemd runs it.
set -e
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl stop annexa-agent.service >/dev/null 2>&1 || true
  case "$1" in remove|purge|0) systemctl disable annexa-agent.service >/dev/null 2>&1 || true ;; esac
fi
exit 0
