#!/usr/bin/env bash
# Runs the README's shell blocks as a user would paste them: every block
# fenced ```sh, in order, in one bash shell started at the repository root
# (so a variable set or a server started in one block is there in the
# next). `make test` runs it, after building the binaries.
#
# Fences: ```sh blocks run; ```sh no-check blocks are shell a user types but
# this script must not run (`make test` itself, which runs this script; the
# package installs), and are counted and named as skipped; ```text and
# every other fence are output samples or code, never run.
#
# Before running anything it checks two copies the README holds: its
# Dependencies table against `scripts/install-deps.sh --list` (same
# packages, same groups), and its targets table against BENCHMARKS.md's
# (the lines between the `<!-- targets: ` markers, which `make bench`
# copies).
#
# It fails loudly: the block number, the README line and the command that
# failed, with its exit status. The shell runs with `set -eE`: every
# command must succeed (the README shows expected failures as
# `cmd || echo "exit $?"`). A block that starts something in the background
# stops it itself (`kill "$server"`); whatever is left when the check ends
# is killed. README_CHECK_TIMEOUT (seconds, default 300) bounds the run.
# HOME is a fresh directory (cargo's and rustup's homes stay where they
# are), so blocks that install files for the user write there.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readme=${README:-$root/README.md}
limit=${README_CHECK_TIMEOUT:-300}
work=$(mktemp -d "${TMPDIR:-/tmp}/readme-check.XXXXXX")
trap 'rm -rf "$work"' EXIT

failed=0

# The Dependencies table: `| `pkg` | groups | why |` rows, as "pkg groups".
script_deps=$("$root/scripts/install-deps.sh" --list | awk '{ print $2, $1 }')
readme_deps=$(awk '/^## /{ on = ($0 == "## Dependencies") } on' "$readme" |
    sed -n 's/^| `\([^`]*\)` | \([a-z, ]*\) |.*/\1 \2/p' | sed 's/, /,/g')
if [ -z "$readme_deps" ] || [ "$readme_deps" != "$script_deps" ]; then
    echo "readme-check: FAILED: the README's Dependencies table differs from scripts/install-deps.sh --list" >&2
    diff <(echo "$readme_deps") <(echo "$script_deps") >&2 || true
    failed=1
fi

# The targets table: the same lines in README.md and BENCHMARKS.md.
targets() { sed -n '/^<!-- targets: begin/,/^<!-- targets: end -->$/p' "$1"; }
benchmarks=${BENCHMARKS:-$root/BENCHMARKS.md}
if [ -z "$(targets "$readme")" ] || [ "$(targets "$readme")" != "$(targets "$benchmarks")" ]; then
    echo "readme-check: FAILED: the README's targets table is not BENCHMARKS.md's (make bench copies it)" >&2
    diff <(targets "$readme") <(targets "$benchmarks") >&2 || true
    failed=1
fi
[ "$failed" -eq 0 ] || exit 1

# Split the README into $work/block-N.sh (the ```sh blocks, numbered from 1
# among the runnable ones) and $work/blocks (N, first line, kind).
awk -v dir="$work" '
    /^```/ {
        if (!open) {
            info = substr($0, 4); sub(/[ \t]+$/, "", info)
            open = 1; kind = ""
            if (info == "sh") { kind = "run"; n++; file = dir "/block-" n ".sh" }
            else if (info ~ /^sh[ \t]+no-check$/) { kind = "skip"; skipped++ }
            if (kind != "") printf "%s %d %s\n", (kind == "run" ? n : "-"), NR + 1, kind >> (dir "/blocks")
            next
        }
        if ($0 ~ /^```[ \t]*$/) { open = 0; file = ""; next }
    }
    open && kind == "run" { print > file }
    END { if (open) { print "readme-check: unclosed fence at the end of the README" > "/dev/stderr"; exit 1 } }
' "$readme"

if [ ! -s "$work/blocks" ] || ! grep -q ' run$' "$work/blocks"; then
    echo "readme-check: FAILED: no \`\`\`sh block in $readme" >&2
    exit 1
fi

# The driver: one shell that sources each block in turn. The ERR trap names
# the block, the README line and the command; EXIT kills leftover jobs.
driver=$work/driver.sh
{
    echo 'set -eE'
    echo 'trap '\''rc=$?; echo "readme-check: FAILED: sh block $block, README.md line $((start + LINENO - 1)), exit $rc: $BASH_COMMAND" >&2; exit $rc'\'' ERR'
    echo 'trap '\''jobs=$(jobs -p); [ -z "$jobs" ] || kill $jobs 2>/dev/null || true'\'' EXIT'
    printf 'cd %q\n' "$root"
    while read -r n line kind; do
        if [ "$kind" = skip ]; then
            echo "echo 'readme-check: skipping the \`\`\`sh no-check block at README.md line $line' >&2"
            continue
        fi
        echo "block=$n start=$line"
        echo "echo '--- readme-check: sh block $n, README.md line $line' >&2"
        echo "sed 's/^/\$ /' $work/block-$n.sh >&2"
        echo "source $work/block-$n.sh"
    done <"$work/blocks"
    echo "echo 'readme-check: every sh block ran' >&2"
} >"$driver"

# A fresh user's environment: no compositor of the caller's to talk to.
# timeout signals its whole process group, so servers the blocks started
# in the background go too.
status=0
mkdir "$work/home"
env -u WAYLAND_DISPLAY -u WAYLAND_SOCKET -u WAYLAND_DEBUG \
    CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" \
    HOME="$work/home" timeout -k 5 "$limit" bash "$driver" </dev/null || status=$?
if [ "$status" -eq 124 ]; then
    echo "readme-check: FAILED: the README's blocks did not finish within ${limit}s" >&2
fi
exit "$status"
