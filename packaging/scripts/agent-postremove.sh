#!/bin/sh
# annexa-agent post-remove. On purge (deb) the state goes too: the agent's
# key and identity are worthless without the package, and unshipped records
# are explained by the server's view of the chain.
set -e
if [ "$1" = purge ]; then
  rm -rf /var/lib/annexa
  rm -f /etc/annexa/enroll.env
  rmdir /etc/annexa 2>/dev/null || true
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
