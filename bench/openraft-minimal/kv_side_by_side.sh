#!/bin/sh
# Runs stepwise-kv's benchmark (3 replicas, 16-byte keys, 128-byte values, put-heavy and
# get-heavy) interleaved with openraft's minimal benchmark (empty payloads), with openraft
# on its default 16 server workers and on 2 (one per core of this machine), so that ratios
# come from one run. Usage (from the repo root):
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
        /tmp/openraft-target/release/openraft-minimal-bench --clients 1,64,256 --ops "$OPS" --server-workers "$w"
    done
    i=$((i + 1))
done
echo "== done; $(uptime)"
