#!/usr/bin/env bash
# Issue 5 performance: a 3-node kv-server cluster (3 processes, release, fsync on) next to
# a 3-member etcd cluster (Debian's etcd-server 3.4, fsync on) and a single redis-server
# with `appendonly yes`, `appendfsync always`, all on 127.0.0.1, in one run.
#
# Load: `redis-benchmark -t set,get -d 128 -c C` for kv-server (against the leader's
# client port) and redis-server; `bench/etcd-load` (gRPC KV Put / linearizable Range,
# 128-byte values, C clients each with one request outstanding, sharing ETCD_CONNS HTTP/2
# connections: default 1, the default of etcd's own benchmark tool and etcd's faster
# setting here; ETCD_CONNS=0 gives each client its own) for etcd, against the leader.
# Same single key everywhere (`key:__rand_int__`, what redis-benchmark uses without -r).
#
# Usage (from the workspace root):
#   examples/scripts/kv-server-bench.sh [ROUNDS] [CLIENTS] [REQUESTS]
#   ROUNDS    rounds (default 1); in each, fresh clusters of all systems run side by
#             side and every test (op, client count) runs on each system in turn
#   CLIENTS   client counts (default "1 16 64")
#   REQUESTS  requests per test at 16+ clients (default 100000; 1 client: a fifth)
#
# KV_SERVER_ARGS adds flags to every kv-server (e.g. KV_SERVER_ARGS=--no-pipelined-sync).
# SYSTEMS picks which systems run (default "kv-server etcd redis"; e.g. SYSTEMS=kv-server
# while iterating on kv-server alone).
#
# Needs: redis-benchmark, redis-server, redis-cli (redis-tools, redis-server),
# etcd and etcdctl (etcd-server, etcd-client). Prints one Markdown table per round and
# the raw CSV (system,op,clients,requests,ops_per_s,p50_ms,p99_ms) in $WORK/results.csv.
set -euo pipefail

rounds=${1:-1}
clients=${2:-1 16 64}
requests=${3:-100000}
etcd_conns=${ETCD_CONNS:-1}
systems=${SYSTEMS:-kv-server etcd redis}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

cargo build --release -q -p stepwise-examples --bin kv-server
cargo build --release -q --manifest-path bench/etcd-load/Cargo.toml \
    --target-dir /tmp/etcd-load-target
kv="$root/target/release/kv-server"
etcd_load=/tmp/etcd-load-target/release/etcd-load

work=$(mktemp -d /tmp/kv-server-bench.XXXXXX)
results="$work/results.csv"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}

requests_for() { if [ "$1" -le 1 ]; then echo $((requests / 5)); else echo "$requests"; fi; }

# redis_one SYSTEM PORT OP CLIENTS: one redis-benchmark test (op set or get).
redis_one() {
    local system=$1 port=$2 op=$3 c=$4 n
    n=$(requests_for "$c")
    redis-benchmark -p "$port" -t "$op" -d 128 -c "$c" -n "$n" --csv |
        tr -d '"' | awk -F, -v s="$system" -v c="$c" -v n="$n" \
        '$1 == "SET" || $1 == "GET" { printf "%s,%s,%s,%s,%.0f,%s,%s\n", s, tolower($1), c, n, $2, $5, $7 }' \
        >>"$results"
}

# etcd_one LEADER OP CLIENTS: one etcd-load test (op set or get).
etcd_one() {
    local leader=$1 op=$2 c=$3 n
    n=$(requests_for "$c")
    [ "$op" = set ] && op=put
    "$etcd_load" --endpoint "$leader" --op "$op" --clients "$c" --requests "$n" \
        --conns "$etcd_conns" --size 128 | awk -F, '{ o = $1 == "put" ? "set" : "get";
            printf "etcd,%s,%s,%s,%s,%s,%s\n", o, $2, $3, $4, $5, $6 }' >>"$results"
}

# start_kv ROUND: starts 3 kv-server processes; sets kv_port to the leader's client port.
start_kv() {
    local round=$1 i peers cpeers leader=0 tries=0
    peers="1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103"
    cpeers="1=127.0.0.1:6391,2=127.0.0.1:6392,3=127.0.0.1:6393"
    for i in 1 2 3; do
        # shellcheck disable=SC2086 # KV_SERVER_ARGS: extra flags, split on spaces
        "$kv" --id "$i" --peers "$peers" --client-peers "$cpeers" \
            --client "127.0.0.1:639$i" --data "$work/kv-$round/$i" ${KV_SERVER_ARGS:-} \
            >"$work/kv-$round-$i.log" 2>&1 &
        pids+=($!)
    done
    while [ "$leader" = 0 ] || [ -z "$leader" ]; do
        tries=$((tries + 1))
        [ "$tries" -le 100 ] || { echo "kv-server: no leader" >&2; exit 1; }
        sleep 0.1
        leader=$(redis-cli -p 6391 info 2>/dev/null | tr -d '\r' |
            awk -F: '$1 == "stepwise_leader" { print $2 }') || leader=0
    done
    kv_port="639$leader"
}

# start_etcd ROUND: starts a 3-member etcd cluster; sets etcd_leader to the leader's URL.
start_etcd() {
    local round=$1 i cluster="" tries=0 eps=""
    etcd_leader=""
    for i in 1 2 3; do
        cluster+="${cluster:+,}e$i=http://127.0.0.1:2380$i"
        eps+="${eps:+,}http://127.0.0.1:2379$i"
    done
    for i in 1 2 3; do
        etcd --name "e$i" --data-dir "$work/etcd-$round/$i" \
            --listen-client-urls "http://127.0.0.1:2379$i" \
            --advertise-client-urls "http://127.0.0.1:2379$i" \
            --listen-peer-urls "http://127.0.0.1:2380$i" \
            --initial-advertise-peer-urls "http://127.0.0.1:2380$i" \
            --initial-cluster "$cluster" --initial-cluster-token "bench-$round" \
            --initial-cluster-state new >"$work/etcd-$round-$i.log" 2>&1 &
        pids+=($!)
    done
    while [ -z "$etcd_leader" ]; do
        tries=$((tries + 1))
        [ "$tries" -le 100 ] || { echo "etcd: no leader" >&2; exit 1; }
        sleep 0.2
        # endpoint status (simple): URL, id, version, size, is-leader, ...
        etcd_leader=$(ETCDCTL_API=3 etcdctl --endpoints="$eps" endpoint status 2>/dev/null |
            awk -F', ' '$5 == "true" { print $1 }') || etcd_leader=""
    done
}

# start_redis ROUND: starts redis-server (appendfsync always) on port 6399.
start_redis() {
    local round=$1 tries=0
    mkdir -p "$work/redis-$round"
    redis-server --port 6399 --bind 127.0.0.1 --dir "$work/redis-$round" --save "" \
        --appendonly yes --appendfsync always >"$work/redis-$round.log" 2>&1 &
    pids+=($!)
    until redis-cli -p 6399 ping >/dev/null 2>&1; do
        tries=$((tries + 1))
        [ "$tries" -le 100 ] || { echo "redis-server did not start" >&2; exit 1; }
        sleep 0.1
    done
}

table() {
    local round=$1
    echo
    echo "Round $round ($(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg))"
    echo
    echo "| op | clients | kv-server ops/s | p50 ms | p99 ms | etcd ops/s | p50 ms | p99 ms | redis ops/s | p50 ms | p99 ms | kv-server / etcd |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk -F, '
        { k = $2 "," $3; rps[$1 "," k] = $5; p50[$1 "," k] = $6; p99[$1 "," k] = $7;
                  if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
        END {
            for (i = 1; i <= n; i++) {
                k = order[i]; split(k, f, ",");
                kv = rps["kv-server," k]; et = rps["etcd," k];
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", toupper(f[1]), f[2],
                    kv, p50["kv-server," k], p99["kv-server," k],
                    et, p50["etcd," k], p99["etcd," k],
                    rps["redis," k], p50["redis," k], p99["redis," k],
                    (et > 0 ? sprintf("%.1fx", kv / et) : "-")
            }
        }' "$work/round-$round.csv"
}

echo "work dir: $work; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
    : >"$results"
    # All systems run at once (idle while another is loaded), and each test alternates
    # between them, so the numbers compared were taken seconds apart.
    for system in $systems; do
        case $system in
            kv-server) start_kv "$round" ;;
            etcd) start_etcd "$round" ;;
            redis) start_redis "$round" ;;
            *) echo "unknown system $system (kv-server, etcd, redis)" >&2; exit 2 ;;
        esac
    done
    for c in $clients; do
        for op in set get; do
            for system in $systems; do
                echo "== round $round: $system $op, $c clients; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
                case $system in
                    kv-server) redis_one kv-server "$kv_port" "$op" "$c" ;;
                    etcd) etcd_one "$etcd_leader" "$op" "$c" ;;
                    redis) redis_one redis 6399 "$op" "$c" ;;
                esac
            done
        done
    done
    stop_all
    cp "$results" "$work/round-$round.csv"
    table "$round"
done
cat "$work"/round-*.csv >"$results"
echo
echo "raw results: $results"
