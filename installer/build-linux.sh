#!/usr/bin/env bash
# Builds the Linux one-folder bundle of the Spoke client, a tarball and a .deb, and checks the bundle.
#   installer/build-linux.sh            (after ./dev.sh has made .venv; installs PyInstaller into it)
# Output in build/: dist/spoke/ (the one folder), spoke-<version>-linux-x86_64.tar.gz, spoke_<version>_amd64.deb
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SPOKE_VENV:-.venv}
OUT=${SPOKE_BUILD_DIR:-build}
"$VENV/bin/python" -m pip install -q "pyinstaller>=6.10"
VERSION=$("$VENV/bin/python" -c "import spoke_client; print(spoke_client.__version__)")
scripts/i18n.sh compile
rm -rf "$OUT/dist/spoke"
"$VENV/bin/pyinstaller" --noconfirm --log-level WARN --distpath "$OUT/dist" --workpath "$OUT/work" installer/spoke.spec

# The bundle proves itself: a fresh database, migrations, resources, Qt's platform plugin, a Hindi font.
check_dir=$(mktemp -d)
QT_QPA_PLATFORM=offscreen "$OUT/dist/spoke/spoke" --data-dir "$check_dir" selfcheck
rm -rf "$check_dir"

tar -C "$OUT/dist" -czf "$OUT/spoke-$VERSION-linux-x86_64.tar.gz" spoke

# A .deb: the folder under /opt/spoke, a command and a menu entry. Patient data stays in each user's data
# folder (or SPOKE_DATA_DIR), so removing or upgrading the package never touches it.
pkg=$(mktemp -d)
mkdir -p "$pkg/DEBIAN" "$pkg/opt" "$pkg/usr/bin" "$pkg/usr/share/applications"
cp -a "$OUT/dist/spoke" "$pkg/opt/spoke"
ln -s /opt/spoke/spoke "$pkg/usr/bin/spoke-client"
cp installer/linux/spoke.desktop "$pkg/usr/share/applications/spoke.desktop"
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: spoke
Version: $VERSION
Architecture: amd64
Maintainer: Spoke developers <spoke@example.invalid>
Depends: libportaudio2, fonts-noto-core, libegl1, libgl1, libxkbcommon-x11-0, libxcb-cursor0
Section: medical
Priority: optional
Description: Offline-first telemedicine client for health-and-wellness centres
 Registers patients and cases with no network, and syncs them with a hub when a network appears.
CONTROL
dpkg-deb --root-owner-group --build "$pkg" "$OUT/spoke_${VERSION}_amd64.deb" >/dev/null
rm -rf "$pkg"
du -sh "$OUT/dist/spoke" "$OUT/spoke-$VERSION-linux-x86_64.tar.gz" "$OUT/spoke_${VERSION}_amd64.deb"
