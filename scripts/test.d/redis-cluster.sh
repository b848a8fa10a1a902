# A three-node Redis Cluster on loopback, so the store's tests also run
# where every script must keep to one hash slot. Needs redis-server and
# redis-cli (Debian's redis-server pulls in redis-tools).
start_extra_redis_cluster() {
  command -v redis-server >/dev/null 2>&1 || return 0
  command -v redis-cli >/dev/null 2>&1 || need redis-tools redis-cli || return 0
  local addrs=() port
  for n in 1 2 3; do
    port=$(free_port)
    mkdir -p "$run_dir/cluster-$n"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
      --cluster-enabled yes --cluster-config-file "$run_dir/cluster-$n/nodes.conf" \
      --dir "$run_dir/cluster-$n" --logfile "$run_dir/cluster-$n/log" &
    pids+=($!)
    wait_port "$port" || { echo "!!! a cluster node did not start: cluster tests will be SKIPPED" >&2; return 0; }
    addrs+=("127.0.0.1:$port")
  done
  if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$run_dir/cluster-create.log" 2>&1; then
    echo "!!! could not form the Redis Cluster: cluster tests will be SKIPPED" >&2
    return 0
  fi
  for _ in $(seq 100); do
    redis-cli -p "${addrs[0]##*:}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
    sleep 0.1
  done
  export CONTACTD_TEST_REDIS_CLUSTER=$(IFS=,; echo "${addrs[*]}")
  echo "redis cluster on $CONTACTD_TEST_REDIS_CLUSTER" >&2
}
