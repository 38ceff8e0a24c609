#!/usr/bin/env bash
# Runs each cargo-fuzz target of fuzz/ for a bounded time on the stable
# toolchain, and prints how many executions each ran.
#
#   FUZZ_SECONDS  seconds per target (default 60)
#   FUZZ_TARGETS  targets to run (default: wire_decode server_dispatch
#                 server_clients)
#
# How it works on stable: cargo-fuzz (installed from crates.io if missing)
# runs with `-s none`. The sanitizers need `-Zsanitizer`, which is
# nightly-only; without one, every flag cargo-fuzz passes is stable: the
# coverage instrumentation is `-C passes=sancov-module` plus
# `-C llvm-args=-sanitizer-coverage-*`, and libFuzzer itself is C++ built
# by libfuzzer-sys's build script. Rust's own checks (bounds, and the debug
# assertions cargo-fuzz turns on, overflow included) stand in for
# AddressSanitizer; the fuzzed code has no `unsafe` beyond fd handling.
#
# The corpus grows in fuzz/corpus/<target> (not committed), seeded from
# fuzz/seeds/<target>. A crash makes this script fail; cargo-fuzz leaves
# the input in fuzz/artifacts/<target>/.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-wire_decode server_dispatch server_clients}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

status=0
summary=()
for target in $targets; do
    mkdir -p "fuzz/corpus/$target"
    log="$CARGO_TARGET_DIR/$target.log"
    mkdir -p "$CARGO_TARGET_DIR"
    echo "fuzz: $target for ${seconds}s" >&2
    if cargo fuzz run --fuzz-dir fuzz -s none "$target" \
        "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
        >"$log" 2>&1; then
        result="no crash"
    else
        result="FAILED (see $log and fuzz/artifacts/$target/)"
        status=1
        tail -n 40 "$log" >&2
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*')
    corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
    summary+=("fuzz: $target: ${runs:-?} executions in ${seconds}s, coverage ${cov:-?} edges, corpus $corpus inputs, $result")
done
printf '%s\n' "${summary[@]}"
exit "$status"
