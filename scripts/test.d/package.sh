# The Debian package: built with scripts/package.sh, then (as root, with
# dpkg) installed on this machine, its contactd run, its configuration
# checked, its unit verified by systemd-analyze where that exists, upgraded
# to a newer build (the running daemon is restarted, the configuration
# and the secrets kept), and purged (the secrets go with it). A contactd
# package installed before the run is left alone.
#
# The maintainer scripts talk to systemd only where it runs; here they
# are told it does (CONTACTD_SYSTEMD_DIR) and find a systemctl that writes
# down what it was asked, so that what they would do is checked.
check_extra_package() {
  local deb deb2= version
  echo "building the Debian package" >&2
  deb=$(bash scripts/package.sh) || { echo "error: scripts/package.sh failed" >&2; return 1; }
  version=$(dpkg-deb --field "$deb" Version 2>/dev/null || echo "${deb##*/contactd_}" | cut -d_ -f1)
  if [ "$(id -u)" != 0 ] || ! command -v dpkg >/dev/null 2>&1; then
    unavailable "package install" "dpkg -i needs root and dpkg: $deb was built, not installed" || true
    return 0
  fi
  if dpkg-query -W -f '${Status}' contactd 2>/dev/null | grep -q ' installed$'; then
    unavailable "package install" "a contactd package is already installed here; it was not replaced" || true
    return 0
  fi
  package_fake_systemd
  package_dpkg -i "$deb" || return 1
  local status=0
  package_check "$version" || status=1
  package_asked "daemon-reload" || status=1
  ! package_asked "try-restart" || { echo "error: a first install restarted contactd" >&2; status=1; }
  if [ "$status" = 0 ]; then
    deb2=$(bash scripts/package.sh "$version+upgrade") || { echo "error: scripts/package.sh (upgrade) failed" >&2; status=1; }
    [ "$status" = 0 ] && { package_upgrade "$deb2" "$version+upgrade" || status=1; }
  fi
  package_dpkg --purge contactd || return 1
  if [ -e /etc/contactd ]; then
    echo "error: /etc/contactd is still there after purge: $(ls -A /etc/contactd)" >&2
    status=1
  fi
  rm -f "$deb2"
  [ "$status" = 0 ] && echo "package $deb: installed, checked, upgraded and purged" >&2
  return "$status"
}

# package_fake_systemd makes the directory and the systemctl the
# maintainer scripts are given.
package_fake_systemd() {
  mkdir -p "$run_dir/systemd/system" "$run_dir/fakebin"
  cat >"$run_dir/fakebin/systemctl" <<FAKE
#!/bin/sh
echo "\$*" >>"$run_dir/systemctl.log"
FAKE
  chmod +x "$run_dir/fakebin/systemctl"
  : >"$run_dir/systemctl.log"
}

# package_dpkg ARGS...: dpkg with the fake systemd, its output shown on
# failure.
package_dpkg() {
  PATH="$run_dir/fakebin:$PATH" CONTACTD_SYSTEMD_DIR="$run_dir/systemd/system" \
    dpkg "$@" >>"$run_dir/dpkg.log" 2>&1 || { cat "$run_dir/dpkg.log" >&2; echo "error: dpkg $* failed" >&2; return 1; }
}

# package_asked WORDS: the maintainer scripts ran systemctl WORDS.
package_asked() { grep -q "$1" "$run_dir/systemctl.log"; }

# package_check VERSION: what the installed package must do.
package_check() {
  local out f
  out=$(/usr/bin/contactd version) || { echo "error: installed contactd version failed" >&2; return 1; }
  if ! grep -q "\"version\": \"$1\"" <<<"$out"; then
    echo "error: installed contactd version says $out, want version $1" >&2
    return 1
  fi
  if [ "$(stat -c '%a %U:%G' /etc/contactd/config.yaml)" != "640 root:contactd" ]; then
    echo "error: /etc/contactd/config.yaml is $(stat -c '%a %U:%G' /etc/contactd/config.yaml), want 640 root:contactd" >&2
    return 1
  fi
  if ! /usr/bin/contactd config check --config /etc/contactd/config.yaml >/dev/null; then
    echo "error: the installed configuration fails contactd config check" >&2
    return 1
  fi
  for f in copyright README.md operations.md alerts.yml openapi.yaml reference.md redis.md config.example.yaml; do
    [ -s "/usr/share/doc/contactd/$f" ] || { echo "error: the package does not ship /usr/share/doc/contactd/$f" >&2; return 1; }
  done
  grep -q '^License: github.com/redis/go-redis/v9' /usr/share/doc/contactd/copyright ||
    { echo "error: /usr/share/doc/contactd/copyright does not name the licences of the modules compiled in" >&2; return 1; }
  if command -v systemd-analyze >/dev/null 2>&1; then
    systemd-analyze verify /lib/systemd/system/contactd.service ||
      { echo "error: systemd-analyze verify refuses the unit" >&2; return 1; }
  fi
}

# package_upgrade DEB VERSION: install DEB over the installed package, as
# an operator's upgrade: the configuration edited and a secret kept, the
# daemon restarted.
package_upgrade() {
  echo "# edited before the upgrade" >>/etc/contactd/config.yaml
  install -m 0600 /dev/null /etc/contactd/credentials/SMTP_PASSWORD
  echo s3cret >/etc/contactd/credentials/SMTP_PASSWORD
  : >"$run_dir/systemctl.log"
  package_dpkg -i "$1" || return 1
  package_check "$2" || return 1
  package_asked "try-restart contactd.service" || { echo "error: the upgrade did not restart contactd: systemctl was asked $(cat "$run_dir/systemctl.log")" >&2; return 1; }
  grep -q "edited before the upgrade" /etc/contactd/config.yaml || { echo "error: the upgrade lost the edited configuration" >&2; return 1; }
  [ -s /etc/contactd/credentials/SMTP_PASSWORD ] || { echo "error: the upgrade lost /etc/contactd/credentials" >&2; return 1; }
}
