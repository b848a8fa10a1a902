#!/usr/bin/env bash
# The one command that runs every test of contactd on a fresh machine.
#
# It installs the servers the integration tests need when they are missing
# (Debian packages, when run as root), starts them on private loopback
# ports, runs gofmt, go vet and go test -race over the whole module, then
# stops what it started, by PID. Extra arguments go to go test.
set -euo pipefail
cd "$(dirname "$0")/.."

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/contactd-test.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$run_dir"
}
trap cleanup EXIT

apt_updated=
# need PACKAGE COMMAND: install PACKAGE when COMMAND is missing.
need() {
  if command -v "$2" >/dev/null 2>&1 || [ -x "$2" ]; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    echo "!!! $2 is missing and this is not root: tests that need $1 will be SKIPPED" >&2
    return 1
  fi
  if [ -z "$apt_updated" ]; then apt-get update -qq >/dev/null; apt_updated=1; fi
  echo "installing $1" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null 2>&1 ||
    { echo "!!! could not install $1: tests that need it will be SKIPPED" >&2; return 1; }
}

# free_port prints a loopback TCP port nobody listens on, below 50000 so
# that a Redis Cluster node's bus port (port + 10000) is valid too. Start
# the server on it before asking for the next one.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
       ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 10000))") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
}

# wait_port PORT: wait until something accepts connections on PORT.
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

start_redis() {
  need redis-server redis-server || return 0
  local port; port=$(free_port)
  mkdir -p "$run_dir/redis"
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --dir "$run_dir/redis" --logfile "$run_dir/redis/log" &
  pids+=($!)
  wait_port "$port" || { echo "!!! redis-server did not start" >&2; return 0; }
  export CONTACTD_TEST_REDIS=127.0.0.1:$port
  echo "redis-server on $CONTACTD_TEST_REDIS" >&2
}

for f in scripts/test.d/*.sh; do [ -e "$f" ] && . "$f"; done

start_redis
for fn in $(compgen -A function | grep '^start_extra_' || true); do "$fn"; done

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed on: $unformatted" >&2; exit 1; fi
go vet ./...
go test -race -count=1 -timeout 20m "$@" ./...
