#!/usr/bin/env bash
# Writes the Debian copyright file of the contactd binary to stdout, in the
# machine-readable format: contactd's own entry, then the licence of the Go
# standard library and of every module compiled into ./cmd/contactd, read
# from the module cache (scripts/package.sh builds first, so every module
# is there).
set -euo pipefail
cd "$(dirname "$0")/.."

# indent prints a licence text as a field's continuation lines.
indent() { sed -e 's/[[:space:]]*$//' -e 's/^$/./' -e 's/^/ /'; }

# licence_file DIR prints the licence file of a module directory.
licence_file() {
  local f
  for f in "$1"/LICENSE "$1"/LICENSE.md "$1"/LICENSE.txt "$1"/LICENCE "$1"/COPYING "$1"/License "$1"/license; do
    [ -f "$f" ] && { echo "$f"; return 0; }
  done
  return 1
}

cat <<'HEAD'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: contactd
Comment: contactd is one statically linked binary. The stanzas after the
 first name the Go standard library and each Go module compiled into it,
 with the licence text that module ships.

Files: *
Copyright: the contactd authors
License: contactd
 The contactd authors have not published a licence for contactd yet;
 until they do, ask them before redistributing it.
HEAD

printf '\nFiles: Go standard library (runtime and packages linked in)\nCopyright: The Go Authors\nLicense: go\n'
indent <"$(go env GOROOT)/LICENSE"

go list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' ./cmd/contactd |
  sort -u | while read -r path ver dir; do
    [ -n "$path" ] || continue
    f=$(licence_file "$dir") || { echo "copyright.sh: no licence file in $path $ver ($dir)" >&2; exit 1; }
    printf '\nFiles: Go module %s %s\nCopyright: the authors of %s\nLicense: %s\n' "$path" "$ver" "$path" "$path"
    indent <"$f"
    if [ -f "$dir/NOTICE" ]; then
      printf 'Comment: the NOTICE file of %s:\n' "$path"
      indent <"$dir/NOTICE"
    fi
  done
