#!/bin/sh
# After the files are gone: systemd forgets the unit. The contactd user
# and, unless purged, /etc/contactd stay, as with other Debian daemons.
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
