#!/usr/bin/env bash
# Installs the Debian packages that building and testing waypass need, and
# only those that are missing. Quiet when nothing is missing.
#
#   libxkbcommon-dev  libxkbcommon, which the xkbcommon crate links
#   xkb-data          the XKB rules and layouts libxkbcommon compiles keymaps from
#   pkg-config        how build scripts find the C libraries
#   libwayland-dev    libwayland, for interop checks against the C implementation
#   wayland-utils     wayland-info, an unmodified libwayland client the tests run
#   weston xvfb       a real compositor (Weston on Xvfb) whose keymap the tests read
#
# Uses `apt-get update` once, then `apt-get install -y`, through sudo when not
# run as root. On a system without apt it names the packages and exits 1,
# unless pkg-config shows the same libraries are already there.
set -euo pipefail

PACKAGES=(libxkbcommon-dev xkb-data pkg-config libwayland-dev wayland-utils weston xvfb)

# Whether dpkg knows `pkg` as installed (not merely removed with its config).
deb_installed() {
    dpkg -s "$1" 2>/dev/null | grep -qx 'Status: install ok installed'
}

# Without dpkg: whether what a package provides is found some other way.
provided_elsewhere() {
    case "$1" in
        pkg-config) command -v pkg-config >/dev/null ;;
        libxkbcommon-dev) pkg-config --exists xkbcommon 2>/dev/null ;;
        libwayland-dev) pkg-config --exists wayland-client wayland-server 2>/dev/null ;;
        wayland-utils) command -v wayland-info >/dev/null ;;
        weston) command -v weston >/dev/null ;;
        xvfb) command -v Xvfb >/dev/null ;;
        xkb-data)
            pkg-config --exists xkeyboard-config 2>/dev/null ||
                [ -f /usr/share/X11/xkb/rules/evdev ]
            ;;
        *) return 1 ;;
    esac
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    if command -v dpkg >/dev/null; then
        deb_installed "$pkg" || missing+=("$pkg")
    else
        provided_elsewhere "$pkg" || missing+=("$pkg")
    fi
done

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

echo "install-deps: installing ${missing[*]}" >&2
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
