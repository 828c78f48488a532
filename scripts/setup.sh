#!/usr/bin/env bash
# Sets up DGS Desktop on Debian/Ubuntu: Qt's system libraries, then a virtual environment in
# .venv with the package. `--test` adds the test tools and the virtual X server (Xvfb).
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages="libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0 fonts-dejavu-core
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 libxcb-render-util0
  libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 libx11-xcb1"
extras=""
if [ "${1:-}" = "--test" ]; then
  packages="$packages xvfb xauth chromium poppler-utils"  # real window; report checks (HTML, PDF)
  extras="[test]"
fi

if command -v apt-get >/dev/null 2>&1; then
  missing=""
  for package in $packages; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing="$missing $package"
  done
  if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "Installing system packages:$missing"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
else
  echo "Not a Debian/Ubuntu system: install Qt 6's runtime libraries (EGL, GL, xkbcommon, fontconfig) yourself." >&2
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${extras}"
echo "DGS Desktop is installed in .venv (run .venv/bin/dgs-desktop)."
