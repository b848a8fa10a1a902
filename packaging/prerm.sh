#!/bin/sh
# Before the files go: stop the daemon on removal. On upgrade it keeps
# running on the old binary until the new version's postinst restarts it.
set -e

systemd_running() { [ -d "${CONTACTD_SYSTEMD_DIR:-/run/systemd/system}" ]; }

if [ "$1" = remove ] && systemd_running; then
  systemctl disable --now contactd.service || true
fi
