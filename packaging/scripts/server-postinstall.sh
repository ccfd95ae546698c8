#!/bin/sh
# annexa-server post-install: a system user, its data directory, the unit.
set -e
if ! getent passwd annexa >/dev/null; then
  if command -v useradd >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/annexa-server --no-create-home --shell /usr/sbin/nologin annexa
  else
    adduser --system --home /var/lib/annexa-server --no-create-home --group annexa
  fi
fi
chown annexa:annexa /var/lib/annexa-server
chmod 0700 /var/lib/annexa-server
chgrp annexa /etc/annexa/server.env 2>/dev/null || true
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload
  systemctl enable annexa-server.service >/dev/null 2>&1 || true
  systemctl restart annexa-server.service || true
  echo "annexa-server: the bootstrap admin token is in /var/lib/annexa-server/admin.token"
else
  echo "annexa-server: systemd is not running here; start it with: runuser -u annexa -- annexa-server serve --data /var/lib/annexa-server"
fi
exit 0
