# The Debian package: built with scripts/package.sh, then (as root, with
# dpkg) installed on this machine, its contactd run, its configuration
# checked, its unit verified by systemd-analyze where that exists, and
# purged again. A contactd package installed before the run is left alone.
check_extra_package() {
  local deb version
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
  dpkg -i "$deb" >"$run_dir/dpkg.log" 2>&1 || { cat "$run_dir/dpkg.log" >&2; echo "error: dpkg -i $deb failed" >&2; return 1; }
  local status=0
  package_check "$version" || status=1
  dpkg --purge contactd >>"$run_dir/dpkg.log" 2>&1 || { cat "$run_dir/dpkg.log" >&2; echo "error: dpkg --purge contactd failed" >&2; return 1; }
  [ "$status" = 0 ] && echo "package $deb: installed, checked and purged" >&2
  return "$status"
}

# package_check VERSION: what the installed package must do.
package_check() {
  local out
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
  if command -v systemd-analyze >/dev/null 2>&1; then
    systemd-analyze verify /lib/systemd/system/contactd.service ||
      { echo "error: systemd-analyze verify refuses the unit" >&2; return 1; }
  fi
}
