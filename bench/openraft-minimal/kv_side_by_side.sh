#!/bin/sh
# Runs stepwise-kv's benchmark (3 replicas, 16-byte keys, 128-byte values, put-heavy and
# get-heavy) interleaved with openraft's minimal benchmark (empty payloads), with openraft
# on its default 16 server workers and on 2 (one per core of this machine), so that ratios
# come from one run. Both report operations per wall second and per CPU-second (ours: the
# benchmark thread's CPU time; openraft's: the whole process's), the second being what a
# shared, noisy machine distorts least. stepwise-kv prints every row for its one-thread
# driver (threads = 1, CPU time of that thread) and its pipelined two-thread driver
# (threads = 2, CPU time of the whole process); KV_BENCH_THREADS=1 (or 2) in the
# environment keeps one. Usage (from the repo root):
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
i=1
while [ "$i" -le "$ROUNDS" ]; do
    echo "== round $i: stepwise-kv; $(uptime)"
    KV_BENCH_SECS=$SECS "$KV" --bench
    for w in 16 2; do
        echo "== round $i: openraft minimal, $w server workers; $(uptime)"
        # One process per client count, so its CPU time (user + system, all threads,
        # cluster start included) can be divided by the operations: ops per CPU-second.
        for c in 1 64 256; do
            /usr/bin/time -f "cpu-s %U %S" -o /tmp/openraft-cpu.txt \
                /tmp/openraft-target/release/openraft-minimal-bench --clients "$c" --ops "$OPS" --server-workers "$w" | tail -1
            awk -v ops="$OPS" '{ printf "    ops/cpu-s %.0f\n", ops / ($2 + $3) }' /tmp/openraft-cpu.txt
        done
    done
    i=$((i + 1))
done
echo "== done; $(uptime)"
