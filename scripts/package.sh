#!/usr/bin/env bash
# Builds the Debian package of contactd into dist/ and prints its path.
#
#   scripts/package.sh [VERSION]
#
# VERSION defaults to the latest v* tag (without the v) when it names the
# commit checked out, else 0.0.0+git.TIME.COMMIT. The binary has the version
# stamped in (contactd version prints it), and nfpm, a tool dependency in
# go.mod, packs it with the systemd unit, the sysusers.d entry, the
# configuration, the copyright file and the operator's documents
# (packaging/nfpm.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:-}
if [ -z "$version" ]; then
  version=$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null | sed 's/^v//' || true)
fi
if [ -z "$version" ]; then
  version=0.0.0+git.$(git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S 2>/dev/null || date -u +%Y%m%d%H%M%S).$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
fi
case $version in
  [0-9]*) ;;
  *) echo "package.sh: version $version must start with a digit" >&2; exit 2 ;;
esac

mkdir -p dist

# -buildvcs=auto records the commit in the binary when git is at hand,
# whatever GOFLAGS says.
CGO_ENABLED=0 go build -trimpath -buildvcs=auto -ldflags "-s -w -X main.version=$version" \
  -o dist/contactd ./cmd/contactd

# The Debian copyright file: contactd's entry and the licence of every Go
# module compiled in.
bash packaging/copyright.sh >dist/copyright

export CONTACTD_VERSION=$version CONTACTD_ARCH=$(go env GOARCH)
target=dist/contactd_${version}_${CONTACTD_ARCH}.deb
go tool nfpm package --config packaging/nfpm.yaml --packager deb --target "$target" >&2
echo "$target"
