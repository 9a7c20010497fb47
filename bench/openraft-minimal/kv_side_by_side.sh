#!/bin/sh
# Runs stepwise-kv's benchmark (3 replicas, 16-byte keys, 128-byte values, put-heavy and
# get-heavy) interleaved with openraft's minimal benchmark (empty payloads) client count by
# client count, with openraft
# on its default 16 server workers and on 2 (one per core of this machine), so that ratios
# come from one run. Both report operations per wall second and per CPU-second (ours: the
# benchmark thread's CPU time for the one-thread driver, the whole process's for the
# two-thread driver; openraft's: the whole process's), the second being what a shared,
# noisy machine distorts least. stepwise-kv prints every row for its one-thread driver
# (threads = 1) and its pipelined two-thread driver (threads = 2); KV_BENCH_THREADS=1 (or
# 2) in the environment keeps one.
#
# At the end, per round and client count: the ratio of stepwise-kv's best rate (either
# driver) to openraft's best (either worker count), per wall second and per CPU-second.
# Usage (from the repo root):
#   bench/openraft-minimal/kv_side_by_side.sh [ROUNDS] [OPENRAFT_OPS] [KV_SECS]
set -eu
ROUNDS=${1:-2}
OPS=${2:-500000}
SECS=${3:-2}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
cargo bench -p stepwise-kv --bench kv --no-run
cargo build --release --manifest-path bench/openraft-minimal/Cargo.toml --target-dir /tmp/openraft-target
KV=$(ls -t target/release/deps/kv-* | grep -v '\.d$' | head -1)
LOG=$(mktemp)
i=1
while [ "$i" -le "$ROUNDS" ]; do
    # Per client count, both systems back to back (stepwise-kv's two mixes with both
    # drivers, then openraft with 16 and 2 server workers), so a ratio compares runs
    # seconds apart on this machine, whose speed drifts from minute to minute.
    for c in 1 64 256; do
        echo "== round $i, $c clients: stepwise-kv; $(uptime)"
        for mix in put get; do
            KV_BENCH_SECS=$SECS KV_BENCH_ONLY="$c:$mix" "$KV" --bench | grep -- '-heavy ' |
                tee -a /dev/stderr |
                awk -v r="$i" '{ print "KV", r, $1, $2, $3, $4, $5 }' >>"$LOG"
        done
        for w in 16 2; do
            # One process per run, so its CPU time (user + system, all threads, cluster
            # start included) can be divided by the operations: ops per CPU-second.
            line=$(/usr/bin/time -f "cpu-s %U %S" -o /tmp/openraft-cpu.txt \
                /tmp/openraft-target/release/openraft-minimal-bench --clients "$c" --ops "$OPS" --server-workers "$w" | tail -1)
            cpu=$(awk -v ops="$OPS" '{ printf "%.0f", ops / ($2 + $3) }' /tmp/openraft-cpu.txt)
            echo "openraft, $w server workers: $line, ops/cpu-s $cpu" >&2
            echo "$line" | awk -v r="$i" -v w="$w" -v cpu="$cpu" '{ print "OR", r, $1, w, $2, cpu }' >>"$LOG"
        done
    done
    i=$((i + 1))
done
echo "== done; $(uptime)"
echo
echo "ratios (stepwise-kv best driver / openraft best worker count, same round):"
awk '
    $1 == "KV" { k = $2 SUBSEP $3 SUBSEP $4
                 if ($6 > kw[k]) kw[k] = $6
                 if ($7 != "n/a" && $7 > kc[k]) kc[k] = $7 }
    $1 == "OR" { k = $2 SUBSEP $3
                 if ($5 > ow[k]) ow[k] = $5
                 if ($6 > oc[k]) oc[k] = $6 }
    END {
        printf "%6s %8s %10s %12s %12s %12s %12s %9s %9s\n", "round", "clients", "mix",
            "kv ops/s", "openraft", "kv ops/cpu-s", "openraft", "wall x", "cpu x"
        for (k in kw) {
            split(k, p, SUBSEP); o = p[1] SUBSEP p[2]
            if (!(o in ow)) continue
            printf "%6s %8s %10s %12.0f %12.0f %12.0f %12.0f %9.1f %9.1f\n", p[1], p[2], p[3],
                kw[k], ow[o], kc[k], oc[o], kw[k] / ow[o], kc[k] / oc[o]
        }
    }' "$LOG" | sort -k1,1n -k2,2n -k3,3
rm -f "$LOG"
