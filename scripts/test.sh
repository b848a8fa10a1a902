#!/usr/bin/env bash
# The one command that runs every test of contactd on a fresh machine.
#
# It installs the servers the integration tests need when they are missing
# (Debian packages, when run as root), starts them on private loopback
# ports, checks that go.mod is tidy, runs gofmt, go vet and go test -race
# over the whole module, then stops what it started, by PID. Extra
# arguments go to go test.
#
# A server that cannot be installed or started is named. With CI=true that
# fails the run before any test; elsewhere the tests that need it skip, and
# the list of what was skipped is printed again at the end of the run.
set -euo pipefail
cd "$(dirname "$0")/.."

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/contactd-test.XXXXXX")
pids=()
unavailable_servers=()

# report_unavailable prints, last thing in the run, every server the run
# went without.
report_unavailable() {
  [ "${#unavailable_servers[@]}" -gt 0 ] || return 0
  echo >&2
  echo "!!! ${#unavailable_servers[@]} server(s) or step(s) were unavailable; what needs them was SKIPPED:" >&2
  printf '!!!   %s\n' "${unavailable_servers[@]}" >&2
}

cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$run_dir"
  report_unavailable
  exit "$status"
}
trap cleanup EXIT

# unavailable NAME REASON: record that the server NAME cannot be had.
# Returns 1, so a start function can end with it.
unavailable() {
  local seen
  for seen in "${unavailable_servers[@]}"; do [ "$seen" != "$1: $2" ] || return 1; done
  unavailable_servers+=("$1: $2")
  echo "!!! $1: $2" >&2
  return 1
}

# fail_if_ci_lacks_servers ends the run when CI=true and a server is
# missing: there a skipped integration test is a failure.
fail_if_ci_lacks_servers() {
  [ "${CI:-}" = true ] && [ "${#unavailable_servers[@]}" -gt 0 ] || return 0
  echo "error: CI=true and the tests need every server; unavailable:" >&2
  printf '  %s\n' "${unavailable_servers[@]}" >&2
  unavailable_servers=()
  exit 1
}

apt_updated=
# need PACKAGE COMMAND: install PACKAGE when COMMAND is missing; when that
# cannot be done, record PACKAGE as unavailable and return 1.
need() {
  if command -v "$2" >/dev/null 2>&1 || [ -x "$2" ]; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    unavailable "$1" "$2 is missing and this is not root, so it cannot be installed"
    return 1
  fi
  if [ -z "$apt_updated" ]; then apt-get update -qq >/dev/null || true; apt_updated=1; fi
  echo "installing $1" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null 2>&1; then
    unavailable "$1" "could not be installed with apt-get"
    return 1
  fi
}

# Ports. Servers get ports outside the kernel's ephemeral range (where an
# outgoing connection may hold the port at any moment), and so does
# port + 10000, a Redis Cluster node's bus port.
read -r ephemeral_lo ephemeral_hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null ||
  { ephemeral_lo=32768 ephemeral_hi=60999; }
ports_given=" "

# port_busy PORT: something listens on PORT, or a socket is bound to it.
port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ] && return 0
  fi
  return 1
}

# port_usable PORT: PORT and PORT+10000 are valid, outside the ephemeral
# range, not given before in this run, and free now.
port_usable() {
  local p
  for p in "$1" $(($1 + 10000)); do
    [ "$p" -le 65535 ] || return 1
    [ "$p" -lt "$ephemeral_lo" ] || [ "$p" -gt "$ephemeral_hi" ] || return 1
    case $ports_given in *" $p "*) return 1 ;; esac
    ! port_busy "$p" || return 1
  done
}

# free_port sets $free to a usable loopback port (see port_usable).
free_port() {
  local tries
  for tries in $(seq 2000); do
    free=$((10000 + ((RANDOM << 15) | RANDOM) % (55535 - 10000)))
    if port_usable "$free"; then
      ports_given+="$free "
      return 0
    fi
  done
  echo "error: no free port outside the ephemeral range $ephemeral_lo-$ephemeral_hi" >&2
  exit 1
}

# wait_port PORT PID: wait until something accepts connections on PORT
# while the process PID is alive; fail as soon as PID has exited.
wait_port() {
  for _ in $(seq 100); do
    kill -0 "$2" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
      kill -0 "$2" 2>/dev/null
      return
    fi
    sleep 0.1
  done
  return 1
}

# stop_pid PID: stop a server this script started and forget it.
stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local kept=() pid
  for pid in "${pids[@]}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
  pids=("${kept[@]}")
}

# start_server NAME FN: run "FN PORT" on fresh ports until the server it
# starts in the background (FN sets server_pid, and server_log to its log
# file) accepts connections, up to three ports; a server that fails to
# bind is retried on another port. Sets server_port, or records NAME as
# unavailable (with the end of its log) and returns 1.
start_server() {
  local name=$1 fn=$2 try
  for try in 1 2 3; do
    free_port
    server_pid= server_log=
    "$fn" "$free"
    pids+=("$server_pid")
    if wait_port "$free" "$server_pid"; then
      server_port=$free
      return 0
    fi
    echo "$name did not start on port $free (try $try of 3)" >&2
    [ -n "$server_log" ] && tail -n 5 "$server_log" >&2 2>/dev/null || true
    stop_pid "$server_pid"
  done
  unavailable "$name" "did not start on three different ports (its log is above)"
}

# redis_on PORT DIR [ARGS...]: start redis-server in the background.
redis_on() {
  local port=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --dir "$dir" --logfile "$dir/log" "$@" &
  server_pid=$! server_log=$dir/log
}

run_redis() { redis_on "$1" "$run_dir/redis"; }

start_redis() {
  need redis-server redis-server || return 0
  start_server redis-server run_redis || return 0
  export CONTACTD_TEST_REDIS=127.0.0.1:$server_port
  echo "redis-server on $CONTACTD_TEST_REDIS" >&2
}

for f in scripts/test.d/*.sh; do [ -e "$f" ] && . "$f"; done

start_redis
for fn in $(compgen -A function | grep '^start_extra_' || true); do "$fn" || true; done
fail_if_ci_lacks_servers

if ! go mod tidy -diff; then
  echo "error: go.mod or go.sum is not tidy: run go mod tidy (the difference is above)" >&2
  exit 1
fi
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed on: $unformatted" >&2; exit 1; fi
go vet ./...
for fn in $(compgen -A function | grep '^check_extra_' || true); do "$fn"; done
fail_if_ci_lacks_servers
go test -race -count=1 -timeout 20m "$@" ./...
