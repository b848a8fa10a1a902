#!/bin/sh
# Before the files go: stop the daemon on removal (not on upgrade, where
# the new version's postinst leaves restarting to the administrator).
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl disable --now contactd.service || true
fi
