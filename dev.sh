#!/usr/bin/env bash
# Spoke developer entry point: `./dev.sh run` installs and starts the app, `./dev.sh test` installs and runs every test.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${SPOKE_VENV:-.venv}
PY=${PYTHON:-python3}

debian_packages() {
  # Qt's xcb plugin needs these on a desktop; fonts give Devanagari; gettext builds the catalogs;
  # PortAudio records and plays sound; PulseAudio (with ALSA's pulse plugin) gives the tests a real
  # microphone without hardware (a sine source); poppler renders printed prescriptions in the tests; CUPS prints
  # them (the tests start a private CUPS server with the cups-pdf printer); coturn relays the calls that tests force
  # through TURN.
  local want=(fonts-noto-core fonts-dejavu-core poppler-utils cups printer-driver-cups-pdf libportaudio2 pulseaudio libasound2-plugins
              libegl1 libgl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0
              libxcb-render-util0 libxcb-image0 xvfb xauth gettext chromium coturn)
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

start_demo_hub() {
  # A local demo hub on loopback (SQLite), stopped when the app exits; DEMO_HUB=0 skips it.
  [ "${DEMO_HUB:-1}" = "0" ] && return 0
  local dir=${SPOKE_DEMO_HUB_DIR:-$HOME/.local/share/SpokeDemoHub} port=${DEMO_HUB_PORT:-8470}
  mkdir -p "$dir"
  local db="sqlite:///$dir/hub.sqlite"
  "$VENV/bin/spoke-hub" --db "$db" serve --port "$port" >"$dir/hub.log" 2>&1 &
  local hub_pid=$!
  trap "kill $hub_pid 2>/dev/null" EXIT   # expanded now: the local is gone when the trap runs
  local facility code org hubcli=("$VENV/bin/spoke-hub" --db "$db")
  facility=$("${hubcli[@]}" create-facility --name "HWC Rampur (demo)" --hwc-id HWC-DEMO-001)
  # The demo's hub organisation, its administrator and one doctor (each made once; the same on every start).
  org=$("${hubcli[@]}" create-hub --name "District Hospital (demo)" --kind "district hospital")
  echo "demo-hub-admin" | "${hubcli[@]}" create-admin --hub "$org" --username admin --name "Demo Administrator" \
    --if-missing >/dev/null
  echo "demo-doctor-1" | "${hubcli[@]}" add-doctor --hub "$org" --username doctor --name "Dr Demo Sharma" \
    --qualification "MBBS, MD (Medicine)" --registration-number "DEMO-12345" --council "Demo Medical Council" \
    --speciality "General medicine" --if-missing >/dev/null
  "${hubcli[@]}" assign --facility "$facility" --hub "$org" >/dev/null
  code=$("${hubcli[@]}" enroll-code --facility "$facility")
  echo "Demo hub: http://127.0.0.1:$port  (log: $dir/hub.log)"
  echo "  To connect Spoke to it: 'Connect to hub...' in the status bar (as an administrator), address"
  echo "  http://127.0.0.1:$port and the one-time code $code"
  echo "  Doctors' console: http://127.0.0.1:$port/console/  (doctor / demo-doctor-1; admin / demo-hub-admin)"
}

case "${1:-}" in
  run)
    shift
    debian_packages
    python_packages
    start_demo_hub
    if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -z "${QT_QPA_PLATFORM:-}" ]; then
      echo "No display found: starting Spoke in a virtual X display (xvfb-run). Set DISPLAY to use a real screen."
      xvfb-run -a -s "-screen 0 1366x768x24" "$VENV/bin/spoke-client" "$@"
    else
      "$VENV/bin/spoke-client" "$@"
    fi
    ;;
  test)
    shift
    debian_packages
    python_packages
    export QT_QPA_PLATFORM=offscreen
    # One process by default. SPOKE_TEST_WORKERS=2 runs on two pytest-xdist workers, a test file to each in turn
    # (about half the time), a test marked `solo` with nothing beside it; not the default, as a worker segfaulted
    # in 1 of 10 such runs on 2026-12-04 (README, Tests). A worker that crashes fails the run at once
    # (--max-worker-restart 0). Without a terminal (CI) the whole run has a time limit as well, so a hang outside
    # any one test fails instead of waiting for ever; at a terminal Ctrl-C does.
    workers=${SPOKE_TEST_WORKERS:-0}
    xdist=() limit=()
    [ "$workers" != "0" ] && xdist=(-n "$workers" --dist loadfile --max-worker-restart 0)
    [ -t 0 ] || limit=(timeout --kill-after=30 "${SPOKE_SUITE_TIMEOUT:-2700}")
    exec "${limit[@]}" "$VENV/bin/python" -m pytest "${xdist[@]}" "$@"
    ;;
  *)
    echo "usage: ./dev.sh run [spoke-client options]   install what is needed and start the app"
    echo "       ./dev.sh test [pytest options]         install what is needed and run the whole test suite"
    exit 2
    ;;
esac
