#!/bin/sh
# annexa-server post-remove. Purge keeps /var/lib/annexa-server: it holds
# the log's signing keys and the evidence auditors rely on, and deleting
# them by uninstalling a package would destroy an audit trail. Remove it by
# hand once it is backed up.
set -e
if [ "$1" = purge ]; then
  rm -f /etc/annexa/server.env
  rmdir /etc/annexa 2>/dev/null || true
  echo "annexa-server: /var/lib/annexa-server (keys and evidence) was kept; remove it yourself once it is backed up"
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
