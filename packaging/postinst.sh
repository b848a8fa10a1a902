#!/bin/sh
# After the files are in place: the contactd user, the configuration
# readable by its group only, systemd told about the unit, and, on an
# upgrade, the daemon restarted if it was running, so that the new version
# is the one that runs. A first install starts nothing: the configuration
# must be edited first.
set -e

# systemd_running: systemd manages this machine (the test Debian's own
# packaging tools write into maintainer scripts). CONTACTD_SYSTEMD_DIR
# stands in for the directory in the package's own test.
systemd_running() { [ -d "${CONTACTD_SYSTEMD_DIR:-/run/systemd/system}" ]; }

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

if systemd_running; then
  systemctl daemon-reload || true
  # "configure OLD-VERSION" is an upgrade: restart a running daemon (it
  # stops cleanly on SIGTERM, its emails in flight finished or handed
  # back); a stopped one stays stopped.
  if [ "$1" = configure ] && [ -n "$2" ]; then
    systemctl try-restart contactd.service || true
  fi
fi
