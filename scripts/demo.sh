#!/bin/sh
# waypass demo: two clients find each other through the server's name
# broker, get a private socketpair, and pass a text and a file over it.
#
# waypass-server runs in spawn mode on a socket in a fresh temporary
# directory, with the default keymap. It spawns two clients, each with its
# end of a socketpair in WAYLAND_SOCKET (one connection per client):
#   bob    prints the keymap it received, registers the name "bob", and
#          prints the two things a peer sends it;
#   alice  prints the keymap it received, registers "alice", connects to
#          "bob" (retrying until bob is registered), sends "coucou", then
#          offers assets/hello.txt as an fd.
# --story makes each client narrate which fd it got and what it is.
# --exit-with-children stops the server once both are done; the demo exits
# with the server's status: 0 when every client exited 0.
#
# The binaries come from $WAYPASS_BIN_DIR, else $CARGO_TARGET_DIR/debug,
# else target/debug (`make demo` builds them first).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${WAYPASS_BIN_DIR:-${CARGO_TARGET_DIR:-$root/target}/debug}
case $bin in /*) ;; *) bin=$root/$bin ;; esac
server=$bin/waypass-server
client=$bin/waypass-client
for b in "$server" "$client"; do
	if [ ! -x "$b" ]; then
		echo "demo: $b is missing: run 'make build' first" >&2
		exit 1
	fi
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/waypass-demo.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM
mkdir "$dir/inbox"

# Quotes a word for the `sh -c` the server runs each --spawn command with.
q() {
	printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# The children run from the repository with the binaries first in PATH, so
# the commands the server logs stay short.
cd "$root"
PATH=$bin:$PATH
export PATH
bob="waypass-client listen bob --count 2 --save-dir $(q "$dir/inbox") --show-keymap --story --tag bob"
alice="waypass-client send bob coucou --file assets/hello.txt --as alice --wait 10000 --show-keymap --story --tag alice"

echo "[server] starting waypass-server on $dir/wayland-demo; it spawns bob and alice, each with its end of a socketpair in WAYLAND_SOCKET"

# The clients inherit the server's stdout and stderr. One sed turns the
# server's log lines into [server] lines as they happen, leaves the
# clients' [alice] and [bob] lines alone, and drops the socket path the
# server prints on stdout (it is in the log too). The server's exit status
# is kept aside, since a pipeline's status is its last command's.
{
	rc=0
	RUST_LOG=${RUST_LOG:-info} "$server" --socket "$dir/wayland-demo" \
		--spawn "$bob" --spawn "$alice" --exit-with-children 2>&1 || rc=$?
	echo "$rc" >"$dir/status"
} | sed -u -e '/^\[alice\] /b' -e '/^\[bob\] /b' -e '/^\//d' \
	-e 's/^\[[^]]* waypass_server[^]]*\] //' -e 's/^/[server] /'

status=$(cat "$dir/status")
if [ "$status" -eq 0 ]; then
	echo "[server] exited 0: both clients exited 0"
else
	echo "[server] exited $status: a client failed" >&2
	exit "$status"
fi

# Part two: the clipboard, headless. A server on its own socket; a copy,
# then a paste, by waypass-client, and a paste by wl-paste when it is
# installed (Debian's wl-clipboard). The pipe each paste gives goes to the
# copying client through the server, which never sees the bytes.
echo "[clipboard] starting waypass-server on $dir/wayland-clip"
RUST_LOG=warn "$server" --socket "$dir/wayland-clip" >/dev/null &
clip_server=$!
trap 'kill $clip_server 2>/dev/null || true; rm -rf "$dir"' EXIT INT TERM
tries=0
until [ -S "$dir/wayland-clip" ]; do
	tries=$((tries + 1))
	if [ "$tries" -gt 100 ]; then
		echo "[clipboard] the server did not start" >&2
		exit 1
	fi
	sleep 0.1
done
echo "[clipboard] $ echo 'copied by waypass-client' | waypass-client copy"
echo "copied by waypass-client" | waypass-client --socket "$dir/wayland-clip" copy
echo "[clipboard] $ waypass-client paste --list-types"
waypass-client --socket "$dir/wayland-clip" paste --list-types | sed 's/^/[clipboard]   /'
echo "[clipboard] $ waypass-client paste"
waypass-client --socket "$dir/wayland-clip" paste --no-newline | sed 's/^/[clipboard]   /'
if command -v wl-paste >/dev/null; then
	echo "[clipboard] $ wl-paste   (wl-clipboard, an unmodified libwayland client)"
	WAYLAND_DISPLAY="$dir/wayland-clip" wl-paste --no-newline | sed 's/^/[clipboard]   /'
fi
waypass-client --socket "$dir/wayland-clip" copy --clear
kill "$clip_server"
wait "$clip_server" 2>/dev/null || true
echo "[clipboard] done"
