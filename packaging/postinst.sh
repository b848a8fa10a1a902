#!/bin/sh
# After the files are in place: the contactd user, the configuration
# readable by its group only, and systemd told about the unit.
set -e

if command -v systemd-sysusers >/dev/null 2>&1; then
  systemd-sysusers /usr/lib/sysusers.d/contactd.conf
elif ! getent passwd contactd >/dev/null; then
  useradd --system --user-group --no-create-home --home-dir / \
    --shell /usr/sbin/nologin --comment "contactd change-of-contact workflow" contactd
fi

# Owner and mode of the configuration, unless the administrator chose
# others with dpkg-statoverride.
if ! dpkg-statoverride --list /etc/contactd/config.yaml >/dev/null 2>&1; then
  chown root:contactd /etc/contactd/config.yaml
  chmod 0640 /etc/contactd/config.yaml
fi
chmod 0750 /etc/contactd
chown root:contactd /etc/contactd

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
