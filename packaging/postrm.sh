#!/bin/sh
# After the files are gone: systemd forgets the unit. The contactd user
# stays, as with other Debian daemons. On purge, the secrets go too: the
# credentials directory and the environment file, which dpkg does not
# know as configuration files, then /etc/contactd if nothing else is left
# in it.
set -e

systemd_running() { [ -d "${CONTACTD_SYSTEMD_DIR:-/run/systemd/system}" ]; }

if systemd_running; then
  systemctl daemon-reload || true
fi
if [ "$1" = purge ]; then
  rm -rf /etc/contactd/credentials
  rm -f /etc/contactd/env
  rmdir /etc/contactd 2>/dev/null || true
fi
