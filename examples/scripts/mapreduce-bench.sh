#!/usr/bin/env bash
# Word count throughput of `mapreduce` (sequential, run with 1 and 2 workers) next to the
# shell pipeline `tr -cs 'A-Za-z' '\n' | sort | uniq -c`, on a generated corpus and on the
# Gutenberg texts (if ../shared/data/gutenberg exists), in one run.
#
# Usage (from the workspace root):
#   examples/scripts/mapreduce-bench.sh [SIZE] [WORKDIR]
#   SIZE     size of the generated corpus (default 1G), split into 16 files
#   WORKDIR  scratch directory (default /tmp/mr-bench); generated data stays there
#
# Prints a Markdown table: wall time, CPU time (user + system, children included) and
# throughput (input MB / wall second). MapReduce outputs are checked against sequential.
set -euo pipefail

size=${1:-1G}
work=${2:-/tmp/mr-bench}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

cargo build --release -q -p stepwise-examples --bin mapreduce
mr="$root/target/release/mapreduce"
mkdir -p "$work"

corpus="$work/corpus-$size"
if [ ! -d "$corpus" ]; then
    "$mr" gen --bytes "$size" --files 16 --seed 1 --output "$corpus"
fi

now() { date +%s.%N; }

# timed NAME TOOL BYTES COMMAND...: runs COMMAND under /usr/bin/time and prints a row
# with wall time, CPU time (user + system, children included) and throughput.
timed() {
    local name=$1 tool=$2 bytes=$3
    shift 3
    local stats="$work/time.txt"
    /usr/bin/time -f "%e %U %S" -o "$stats" "$@"
    awk -v name="$name" -v tool="$tool" -v bytes="$bytes" '{
        printf "| %s | %s | %.1f MB | %.2f s | %.2f s | %.1f MB/s |\n",
            name, tool, bytes / 1e6, $1, $2 + $3, bytes / 1e6 / $1
    }' "$stats"
}

# bench NAME FILES...: one row per tool.
bench() {
    local name=$1
    shift
    local bytes
    bytes=$(cat "$@" | wc -c)
    local out="$work/out-$name"
    rm -rf "$out"
    mkdir -p "$out"
    # Warm the page cache so every tool reads from memory.
    cat "$@" > /dev/null

    timed "$name" "mapreduce sequential" "$bytes" \
        "$mr" sequential -q --app wc --output "$out/seq" "$@"
    for workers in 1 2; do
        timed "$name" "mapreduce run --workers $workers" "$bytes" \
            "$mr" run -q --app wc --reduce 10 --workers "$workers" --output "$out/run$workers" "$@"
        if ! cmp -s <(sort "$out"/run"$workers"/mr-out-* | grep .) <(sort "$out/seq/mr-out-0"); then
            echo "ERROR: run --workers $workers output differs from sequential" >&2
            exit 1
        fi
    done
    timed "$name" "tr \\| sort \\| uniq -c" "$bytes" \
        sh -c 'cat "$@" | tr -cs "A-Za-z" "\n" | sort | uniq -c > "$0"' "$out/shell.txt" "$@"
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg), locale ${LC_ALL:-${LANG:-unset}}"
echo
echo "| corpus | tool | input | wall time | CPU time | throughput |"
echo "|---|---|---|---|---|---|"
bench "generated $size (16 files)" "$corpus"/*.txt
gutenberg="$root/../shared/data/gutenberg"
if [ -d "$gutenberg" ]; then
    bench "Gutenberg (7 files)" "$gutenberg"/*.txt
fi
