#!/bin/sh
# annexa-agent post-install: works with or without a running systemd.
set -e
chmod 0700 /var/lib/annexa
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload
  systemctl enable annexa-agent.service >/dev/null 2>&1 || true
  # Start once there is something to run as: an identity, or an enrollment
  # file / environment for the unattended first start.
  if [ -f /var/lib/annexa/agent.json ] || [ -f /etc/annexa/enroll.env ]; then
    systemctl restart annexa-agent.service || true
  else
    echo "annexa-agent: enrol with 'annexa-agent enroll --server URL --token TOKEN' (or write /etc/annexa/enroll.env), then 'systemctl start annexa-agent'"
  fi
else
  echo "annexa-agent: systemd is not running here; start 'annexa-agent run' under your service manager"
fi
exit 0
