#!/usr/bin/env bash
# Installs the system libraries Qt needs on Debian/Ubuntu when run as root; elsewhere prints the
# command to run. Idempotent: does nothing when every package is already there.
set -eu
# libgl1-mesa-dri: the software OpenGL Qt's video path uses under Xvfb (tests/gui/test_camera_x11.py runs it);
# the xcb ones are what the X11 platform plugin (a real window under X or Xvfb) links against
PKGS="libegl1 libgl1 libgl1-mesa-dri libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libpulse0 xvfb
      libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0
      libxcb-xkb1 libxcb-randr0"
if [ ! -f /etc/debian_version ]; then
    echo "system-deps: not Debian/Ubuntu; install Qt 6's runtime libraries (EGL, xkbcommon, fontconfig, dbus, pulse) with your package manager." >&2
    exit 0
fi
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# The Makefile builds its venv with python3; Debian splits venv/ensurepip into python3-venv.
command -v python3 >/dev/null && python3 -c "import venv, ensurepip" 2>/dev/null || missing="$missing python3 python3-venv"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "system-deps: missing Debian packages:$missing" >&2
    echo "system-deps: run: sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 0
fi
echo "system-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
