#!/bin/bash
# GETs at the leader and at a follower of a local 3-node kv-cluster (release build, fsync
# on), with redis-benchmark (16 and 64 clients, 128-byte values, twice each). Flags are
# passed to kv-cluster; compare a run without and one with --follower-reads:
#   cargo build --release -p stepwise-examples --bin kv-cluster
#   examples/scripts/kv-follower-reads-bench.sh
#   examples/scripts/kv-follower-reads-bench.sh --follower-reads
# Uses ports 26381-26383 and 27001-27003. Ends with how many GETs each node answered itself
# (INFO stepwise_reads_served).
set -u
dir=$(mktemp -d /tmp/frb.XXXX)
"$(cd "$(dirname "$0")/../.." && pwd)/target/release/kv-cluster" --raft-port 27001 --client-port 26381 --data-dir $dir "$@" > $dir/out.txt 2>&1 &
pid=$!
for i in $(seq 1 100); do redis-cli -p 26381 SET warm up >/dev/null 2>&1 && break; sleep 0.1; done
leader=$(redis-cli -p 26381 INFO | tr -d '\r' | awk -F: '/stepwise_leader/{print $2}')
lport=$((26380 + leader)); fport=$((26380 + leader % 3 + 1))
redis-benchmark -p $lport -t set -n 20000 -c 16 -d 128 -q >/dev/null 2>&1
for rep in 1 2; do
for who in leader follower; do
  port=$lport; [ $who = follower ] && port=$fport
  for c in 16 64; do
    r=$(redis-benchmark -p $port -t get -n 100000 -c $c -d 128 -q 2>/dev/null | tr '\r' '\n' | grep "GET:" | tail -1)
    echo "$* $who c=$c $r"
  done
done
done
echo "reads served: leader $(redis-cli -p $lport INFO | tr -d '\r' | awk -F: '/stepwise_reads_served/{print $2}') follower $(redis-cli -p $fport INFO | tr -d '\r' | awk -F: '/stepwise_reads_served/{print $2}')"
kill -INT $pid; wait $pid 2>/dev/null; rm -rf $dir
