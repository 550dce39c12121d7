"""Removable drives (USB sticks, memory cards) plugged into this PC, and the Spoke bundles at their top.

Linux: the mounted filesystems under /media, /run/media and /mnt (where desktops and field staff mount them), and
any other whose block device says /sys/block/<disk>/removable is 1; read from /proc/self/mounts, the sizes from
statvfs (shutil.disk_usage). Windows: the drive letters whose GetDriveTypeW is DRIVE_REMOVABLE and that hold a
medium (ctypes; written for Windows and only exercised there).

SPOKE_DRIVES, when set, replaces the detection entirely: a list of folders separated by os.pathsep (":" on Linux,
";" on Windows), each taken as a plugged drive whose label is the folder's name; a folder that does not exist is
a drive not plugged in. Set to "" it means no drive at all. It is the one stand-in for the hardware, for tests and
for a PC whose drives are mounted somewhere this module does not look.

Listing is cheap (the mount table, and with `sizes` one statvfs per drive); `bundles_on` reads only the small
header of each *.spokebundle file at a drive's top (and, with depth=1, one folder below). Still, a slow or
failing drive can make any of these wait: callers on a UI run them off its thread.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from sync import bundle
from sync.bundle import BundleError, Header

log = logging.getLogger(__name__)

ENV = "SPOKE_DRIVES"
LINUX_ROOTS = ("/media", "/run/media", "/mnt")
NOT_DRIVES = ("/", "/boot", "/boot/efi", "/home", "/usr", "/var")   # a live-USB system's own mounts
FAT = frozenset({"vfat", "msdos", "fat", "fat32", "FAT", "FAT32"})
FAT_MAX_FILE = 4 * 2**30 - 1    # a FAT32 drive takes files of at most this many bytes
_OCTAL = re.compile(r"\\([0-7]{3})")

__all__ = ["Drive", "FoundBundle", "bundles_on", "removable_drives"]


@dataclass(frozen=True)
class Drive:
    label: str          # the volume's label, or the mount point's name
    mount: Path         # where it is mounted: bundles are written here
    free: int           # bytes; 0 when `sizes` was not asked for, or cannot be read
    total: int
    filesystem: str = ""

    @property
    def fat(self) -> bool:
        return self.filesystem in FAT


@dataclass(frozen=True)
class FoundBundle:
    path: Path          # the part found (the lowest of its bundle's parts seen there)
    header: Header


def removable_drives(sizes: bool = True) -> list[Drive]:
    """The removable drives mounted now, each once, in a stable order."""
    listed = os.environ.get(ENV)
    if listed is not None:
        found = [_described(Path(p), Path(p).name or str(p), "", sizes) for p in listed.split(os.pathsep) if p]
        return [d for d in found if d is not None]
    try:
        if sys.platform == "win32":
            return _windows(sizes)
        return _linux(sizes)
    except OSError as exc:   # no mount table to read (a sandbox): no drive, said once in the log
        log.warning("removable drives cannot be listed (%s)", type(exc).__name__)
        return []


def _described(mount: Path, label: str, filesystem: str, sizes: bool) -> Drive | None:
    if not mount.is_dir():
        return None
    free = total = 0
    if sizes:
        try:
            usage = shutil.disk_usage(mount)
            free, total = usage.free, usage.total
        except OSError:
            pass
    return Drive(label or mount.name or str(mount), mount, free, total, filesystem)


# --- Linux -------------------------------------------------------------------------------------------------
def _unescape(field: str) -> str:
    r"""/proc/self/mounts writes a space as \040, a tab as \011, a newline as \012 and a backslash as \134."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def _labels() -> dict[str, str]:
    """Device path -> volume label, from /dev/disk/by-label (udev escapes a space there as \\x20)."""
    found: dict[str, str] = {}
    folder = Path("/dev/disk/by-label")
    try:
        for link in folder.iterdir():
            name = link.name.encode("latin-1", "replace").decode("unicode_escape", "replace")
            found[os.path.realpath(link)] = name
    except OSError:
        pass
    return found


def _removable_device(device: str) -> bool:
    """Whether the disk holding this block device (/dev/sdb1 -> sdb) says it is removable."""
    if not device.startswith("/dev/"):
        return False
    name = os.path.basename(os.path.realpath(device))
    node = Path("/sys/class/block") / name
    try:
        node = node.resolve(strict=True)
        disk = node.parent if (node / "partition").exists() else node
        return (disk / "removable").read_text().strip() == "1"
    except OSError:
        return False


def _under(mount: str, roots: tuple[str, ...]) -> bool:
    return any(mount == root or mount.startswith(root + "/") for root in roots)


def _linux(sizes: bool, table: str = "/proc/self/mounts", roots: tuple[str, ...] = LINUX_ROOTS) -> list[Drive]:
    with open(table, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    labels: dict[str, str] | None = None
    seen: set[str] = set()
    drives: list[Drive] = []
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        device, mount, filesystem = _unescape(fields[0]), _unescape(fields[1]), fields[2]
        if mount in seen or mount in NOT_DRIVES or mount.startswith("/boot/"):
            continue
        if not device.startswith("/dev/") or device.startswith(("/dev/loop", "/dev/ram", "/dev/zram")):
            continue   # tmpfs, proc, overlays, network shares, disk images: not a drive someone plugged in
        if not (_under(mount, roots) or _removable_device(device)):
            continue
        seen.add(mount)
        if labels is None:
            labels = _labels()
        drive = _described(Path(mount), labels.get(os.path.realpath(device), ""), filesystem, sizes)
        if drive is not None:
            drives.append(drive)
    return sorted(drives, key=lambda d: str(d.mount))


# --- Windows -----------------------------------------------------------------------------------------------
DRIVE_REMOVABLE = 2
SEM_FAILCRITICALERRORS = 0x0001   # an empty card reader answers "no medium" instead of a "insert a disk" box


def _windows(sizes: bool) -> list[Drive]:   # pragma: no cover - Windows only
    import ctypes

    kernel32 = ctypes.windll.kernel32
    old_mode = ctypes.c_uint()
    set_mode = getattr(kernel32, "SetThreadErrorMode", None)
    if set_mode is not None:
        set_mode(SEM_FAILCRITICALERRORS, ctypes.byref(old_mode))
    drives: list[Drive] = []
    try:
        mask = kernel32.GetLogicalDrives()
        for i in range(26):
            if not mask & (1 << i):
                continue
            root = f"{chr(ord('A') + i)}:\\"
            if kernel32.GetDriveTypeW(ctypes.c_wchar_p(root)) != DRIVE_REMOVABLE:
                continue
            name = ctypes.create_unicode_buffer(261)
            filesystem = ctypes.create_unicode_buffer(261)
            if not kernel32.GetVolumeInformationW(ctypes.c_wchar_p(root), name, 261, None, None, None,
                                                  filesystem, 261):
                continue   # a reader with no card in it
            drive = _described(Path(root), name.value or root[:2], filesystem.value, sizes)
            if drive is not None:
                drives.append(drive)
    finally:
        if set_mode is not None:
            set_mode(old_mode.value, None)
    return drives


# --- bundles on a drive ------------------------------------------------------------------------------------
_headers: dict[tuple[str, int, int], Header | None] = {}   # (path, size, mtime) -> header, for the poll's sake


def _header_of(path: Path) -> Header | None:
    try:
        st = path.stat()
    except OSError:
        return None
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _headers:
        if len(_headers) > 512:
            _headers.clear()
        try:
            _headers[key] = bundle.read_header(path)
        except BundleError:
            _headers[key] = None   # not a bundle, or a damaged one: importing it tells why
    return _headers[key]


def bundles_on(drive: Drive | Path, kind: str = "hub", depth: int = 1) -> list[FoundBundle]:
    """The bundles of `kind` ("hub": return bundles for a PC; "spoke": a PC's work) at the top of the drive and,
    with depth=1, in the folders right below it, by their header; each bundle once (by its lowest part found),
    newest first."""
    top = drive.mount if isinstance(drive, Drive) else Path(drive)
    folders = [top]
    if depth > 0:
        try:
            folders += sorted(p for p in top.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            pass
    best: dict[str, FoundBundle] = {}
    for folder in folders:
        try:
            names = sorted(p for p in folder.iterdir() if p.name.endswith(bundle.SUFFIX))
        except OSError:
            continue
        for path in names:
            header = _header_of(path)
            if header is None or header.kind != kind:
                continue
            kept = best.get(header.bundle_id)
            if kept is None or header.part < kept.header.part:
                best[header.bundle_id] = FoundBundle(path, header)
    return sorted(best.values(), key=lambda f: f.header.created_at, reverse=True)
