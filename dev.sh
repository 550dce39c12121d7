#!/usr/bin/env bash
# Spoke developer entry point: `./dev.sh run` installs and starts the app, `./dev.sh test` installs and runs every test.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${SPOKE_VENV:-.venv}
PY=${PYTHON:-python3}

debian_packages() {
  # Qt's xcb plugin needs these on a desktop; fonts give Devanagari; gettext builds the catalogs;
  # PortAudio and poppler serve later features.
  local want=(fonts-noto-core fonts-dejavu-core poppler-utils libportaudio2 libegl1 libgl1 libxkbcommon-x11-0
              libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-render-util0 libxcb-image0 xvfb xauth
              gettext)
  command -v dpkg-query >/dev/null || return 0
  local missing=()
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "Installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

python_packages() {
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e ".[test]"
  scripts/i18n.sh compile   # translations: .po (committed) -> .mo (built)
}

case "${1:-}" in
  run)
    shift
    debian_packages
    python_packages
    if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -z "${QT_QPA_PLATFORM:-}" ]; then
      echo "No display found: starting Spoke in a virtual X display (xvfb-run). Set DISPLAY to use a real screen."
      exec xvfb-run -a -s "-screen 0 1366x768x24" "$VENV/bin/spoke-client" "$@"
    fi
    exec "$VENV/bin/spoke-client" "$@"
    ;;
  test)
    shift
    debian_packages
    python_packages
    export QT_QPA_PLATFORM=offscreen
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: ./dev.sh run [spoke-client options]   install what is needed and start the app"
    echo "       ./dev.sh test [pytest options]         install what is needed and run the whole test suite"
    exit 2
    ;;
esac
