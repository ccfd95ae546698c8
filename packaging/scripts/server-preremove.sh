#!/bin/sh
set -e
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl stop annexa-server.service >/dev/null 2>&1 || true
  case "$1" in remove|purge|0) systemctl disable annexa-server.service >/dev/null 2>&1 || true ;; esac
fi
exit 0
