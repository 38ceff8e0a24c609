#!/usr/bin/env bash
# Builds waypass-server and the bench in release, runs every measurement
# once, and writes the report (`make bench`):
#
#   - a full run writes BENCHMARKS.md (the whole file: the method, this
#     run's date, command and machine, the figures, each target's verdict),
#     then copies its targets table into README.md, between the lines
#     `<!-- targets: begin ...-->` and `<!-- targets: end -->`;
#   - a `--quick` run (counts ÷ 10, a smoke test) writes
#     target/bench-quick.md and leaves both files alone;
#   - with `--output FILE`, only FILE is written.
#
# The report is also printed on stdout.
#
# Usage: bench/run.sh [bench options...]   e.g. --quick, --runs 7
#        bench/run.sh --quote-targets       only copy BENCHMARKS.md's targets
#                                           table into README.md
# The bench needs libwayland's server library (libwayland-dev) for its
# libwayland peer, and libxkbcommon (libxkbcommon-dev) for the keymap
# (`make bench` installs them: scripts/install-deps.sh bench).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# README.md quotes BENCHMARKS.md's targets table: the lines between the
# markers are replaced by those of BENCHMARKS.md.
quote_targets() {
    local begin='<!-- targets: begin' end='<!-- targets: end -->' file
    for file in BENCHMARKS.md README.md; do
        if ! grep -q "^$begin" "$file" || ! grep -qx "$end" "$file"; then
            echo "bench: $file has no targets markers; README.md left alone" >&2
            return 1
        fi
    done
    awk -v begin="$begin" -v end="$end" '
        FNR == NR {
            if (index($0, begin) == 1) inside = 1
            if (inside) block = block $0 "\n"
            if ($0 == end) inside = 0
            next
        }
        index($0, begin) == 1 { printf "%s", block; skip = 1; next }
        skip && $0 == end { skip = 0; next }
        !skip { print }
    ' BENCHMARKS.md README.md >README.md.new
    mv README.md.new README.md
}

if [ "${1:-}" = --quote-targets ]; then
    cd "$root"
    quote_targets
    exit
fi

server_target="${CARGO_TARGET_DIR:-$root/target}"
bench_target="${CARGO_TARGET_DIR:-$root/bench/target}"

cargo build --release --manifest-path "$root/Cargo.toml" -p waypass-server >&2
cargo build --release --manifest-path "$root/bench/Cargo.toml" >&2

quick=no
own_output=no
for arg in "$@"; do
    case $arg in
        --quick) quick=yes ;;
        --output | --output=*) own_output=yes ;;
    esac
done

# Paths relative to the repository root when they are under it, so that
# the command the report shows is the same on every machine.
cd "$root"
rel() { case $1 in "$root"/*) echo "${1#"$root"/}" ;; *) echo "$1" ;; esac; }

report=
if [ "$own_output" = no ]; then
    if [ "$quick" = yes ]; then
        mkdir -p "$server_target"
        report=$(rel "$server_target/bench-quick.md")
    else
        # Written next to BENCHMARKS.md and moved over it only once the
        # bench has finished: a failed run leaves the old file.
        report=BENCHMARKS.md.new
    fi
    set -- "$@" --output "$report"
fi

cmd=("$(rel "$bench_target/release/waypass-bench")"
    --waypass-server "$(rel "$server_target/release/waypass-server")" "$@")
echo "+ ${cmd[*]}" >&2
"${cmd[@]}"

if [ "$report" = BENCHMARKS.md.new ]; then
    # The command in the report names the file it was written as.
    sed -i 's/--output BENCHMARKS\.md\.new/--output BENCHMARKS.md/' "$report"
    mv "$report" BENCHMARKS.md
    quote_targets || exit 1
    echo "bench: wrote BENCHMARKS.md and the targets table of README.md" >&2
elif [ -n "$report" ]; then
    echo "bench: wrote $report (a --quick run: BENCHMARKS.md and README.md left alone)" >&2
fi
