#!/usr/bin/env bash
# Builds waypass-server and the bench in release, then runs every
# measurement of issue 7 and prints the Markdown report (`make bench`).
#
# Usage: bench/run.sh [bench options...]   e.g. --quick, --output FILE
# The bench needs libwayland's server library (libwayland-dev) for its
# libwayland peer, and libxkbcommon (libxkbcommon-dev) for the keymap.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
server_target="${CARGO_TARGET_DIR:-$root/target}"
bench_target="${CARGO_TARGET_DIR:-$root/bench/target}"

cargo build --release --manifest-path "$root/Cargo.toml" -p waypass-server >&2
cargo build --release --manifest-path "$root/bench/Cargo.toml" >&2

cmd=("$bench_target/release/waypass-bench"
     --waypass-server "$server_target/release/waypass-server" "$@")
echo "+ ${cmd[*]}" >&2
exec "${cmd[@]}"
