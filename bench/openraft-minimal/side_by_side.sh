#!/bin/sh
# Runs stepwise's raft_bench and this openraft benchmark interleaved (ours, theirs, ours,
# theirs) with the same client counts and total operations, printing the load before each.
# Usage: bench/openraft-minimal/side_by_side.sh [ROUNDS] [OPS] [CLIENTS]   (from the repo root)
set -eu
ROUNDS=${1:-2}
OPS=${2:-2000000}
CLIENTS=${3:-1,64,256,4096}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
cargo build --release -p stepwise-raft --example raft_bench
cargo build --release --manifest-path bench/openraft-minimal/Cargo.toml --target-dir /tmp/openraft-target
i=1
while [ "$i" -le "$ROUNDS" ]; do
    echo "== round $i: stepwise raft_bench; $(uptime)"
    ./target/release/examples/raft_bench --clients "$CLIENTS" --ops "$OPS"
    echo "== round $i: openraft minimal; $(uptime)"
    /tmp/openraft-target/release/openraft-minimal-bench --clients "$CLIENTS" --ops "$OPS"
    i=$((i + 1))
done
echo "== done; $(uptime)"
