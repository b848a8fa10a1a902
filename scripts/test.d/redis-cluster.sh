# A three-node Redis Cluster on loopback, so the store's tests also run
# where every script must keep to one hash slot. Needs redis-server and
# redis-cli (Debian's redis-server pulls in redis-tools). Each node's bus
# port is its port + 10000, which free_port keeps valid and free.
cluster_node=0
run_cluster_node() {
  redis_on "$1" "$run_dir/cluster-$cluster_node" --cluster-enabled yes \
    --cluster-config-file "$run_dir/cluster-$cluster_node/nodes.conf"
}

start_extra_redis_cluster() {
  need redis-server redis-server || return 0
  need redis-tools redis-cli || return 0
  local addrs=()
  for cluster_node in 1 2 3; do
    start_server "redis cluster node $cluster_node" run_cluster_node || return 0
    addrs+=("127.0.0.1:$server_port")
  done
  if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$run_dir/cluster-create.log" 2>&1; then
    tail -n 5 "$run_dir/cluster-create.log" >&2
    unavailable "redis cluster" "redis-cli --cluster create failed (its output is above)"
    return 0
  fi
  local ok=
  for _ in $(seq 100); do
    if redis-cli -p "${addrs[0]##*:}" cluster info 2>/dev/null | grep -q 'cluster_state:ok'; then ok=1; break; fi
    sleep 0.1
  done
  if [ -z "$ok" ]; then
    unavailable "redis cluster" "formed, but cluster_state did not become ok within 10s"
    return 0
  fi
  export CONTACTD_TEST_REDIS_CLUSTER=$(IFS=,; echo "${addrs[*]}")
  echo "redis cluster on $CONTACTD_TEST_REDIS_CLUSTER" >&2
}
