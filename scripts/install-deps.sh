#!/usr/bin/env bash
# Installs the Debian packages one use of waypass needs, and only those that
# are missing. Quiet when nothing is missing.
#
#   scripts/install-deps.sh demo    build waypass and run it (`make demo`)
#   scripts/install-deps.sh test    the above, plus what the tests run (`make test`; the default)
#   scripts/install-deps.sh bench   the demo's, plus the benchmark's libwayland peer
#   scripts/install-deps.sh --list [GROUP]   print the table below (no install)
#
# Uses `apt-get update` once, then `apt-get install -y`, through sudo when not
# run as root. On a system without apt it names the packages and exits 1,
# unless what they provide is found some other way (see provided_elsewhere).
set -euo pipefail

# One line per package: the groups that need it, the Debian package, why.
# Adding a package is adding a line here.
TABLE='
demo,test,bench  libxkbcommon-dev  libxkbcommon, which the xkbcommon crate links (server and client)
demo,test,bench  xkb-data          the XKB rules and layouts behind --layout, --variant, --model, --options
test,bench       pkg-config        how wayland-sys finds libwayland (interop tests, bench)
test,bench       libwayland-dev    libwayland-client and -server: interop tests, the bench'"'"'s libwayland peer
test             wayland-utils     wayland-info, an unmodified libwayland client the tests run against the server
test             weston            a real compositor whose keymap the tests read with waypass-client
test             xvfb              the X server Weston'"'"'s X11 backend runs in, in the tests
test             wl-clipboard      wl-copy and wl-paste (C, libwayland, wlr-data-control): the clipboard tests
test,bench       sway              a real wlroots compositor, headless: our clipboard client against it, and the anchor of the clipboard bench
test             systemd           systemd-socket-activate, which starts the server as waypass.socket does, and systemd-analyze, which checks contrib/systemd
test,bench       strace            counts the syscalls of each server per round trip in the bench (strace -c), and a server'"'"'s ioctls in a test
bench            valgrind          counts the user-space instructions of each server per round trip in the bench (callgrind)
'

# The packages of a group, one per line.
packages_of() {
    local group=$1 groups pkg _
    while read -r groups pkg _; do
        [ -n "$groups" ] || continue
        case ",$groups," in *",$group,"*) echo "$pkg" ;; esac
    done <<<"$TABLE"
}

# Whether dpkg knows `pkg` as installed (not merely removed with its config).
deb_installed() {
    dpkg -s "$1" 2>/dev/null | grep -qx 'Status: install ok installed'
}

# Without dpkg: whether what a package provides is found some other way.
# A package with no case here counts as missing on such systems.
provided_elsewhere() {
    case "$1" in
        pkg-config) command -v pkg-config >/dev/null ;;
        libxkbcommon-dev) pkg-config --exists xkbcommon 2>/dev/null ;;
        libwayland-dev) pkg-config --exists wayland-client wayland-server 2>/dev/null ;;
        wayland-utils) command -v wayland-info >/dev/null ;;
        weston) command -v weston >/dev/null ;;
        xvfb) command -v Xvfb >/dev/null ;;
        wl-clipboard) command -v wl-copy >/dev/null && command -v wl-paste >/dev/null ;;
        sway) command -v sway >/dev/null ;;
        systemd) command -v systemd-socket-activate >/dev/null && command -v systemd-analyze >/dev/null ;;
        strace) command -v strace >/dev/null ;;
        valgrind) command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ;;
        xkb-data)
            pkg-config --exists xkeyboard-config 2>/dev/null ||
                [ -f /usr/share/X11/xkb/rules/evdev ]
            ;;
        *) return 1 ;;
    esac
}

usage() {
    echo "usage: $0 demo|test|bench | --list [demo|test|bench]" >&2
    exit 2
}

case "${1:-}" in
    --list)
        group=${2:-}
        case "$group" in demo | test | bench | '') ;; *) usage ;; esac
        while read -r groups pkg why; do
            [ -n "$groups" ] || continue
            case ",$groups," in *",${group:-$groups},"*) ;; *) continue ;; esac
            printf '%-16s %-17s %s\n' "$groups" "$pkg" "$why"
        done <<<"$TABLE"
        exit 0
        ;;
    demo | test | bench) group=$1 ;;
    "") group=test ;; # as before the groups existed: everything
    *) usage ;;
esac

missing=()
while read -r pkg; do
    if command -v dpkg >/dev/null; then
        deb_installed "$pkg" || missing+=("$pkg")
    else
        provided_elsewhere "$pkg" || missing+=("$pkg")
    fi
done < <(packages_of "$group")

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null; then
    echo "install-deps: no apt-get on this system." >&2
    echo "install-deps: please install the equivalents of these Debian packages: ${missing[*]}" >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=(env DEBIAN_FRONTEND=noninteractive)
elif command -v sudo >/dev/null; then
    as_root=(sudo env DEBIAN_FRONTEND=noninteractive)
else
    echo "install-deps: missing packages (${missing[*]}), and neither root nor sudo to install them." >&2
    exit 1
fi

echo "install-deps ($group): installing ${missing[*]}" >&2
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
