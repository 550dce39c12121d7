"""USB bundles: a spoke's export and the hub's import of N cases with a photo each, beside the raw copy of the same
bytes on the same disk in the same run (target: export and import at least half the copy's MB/s), and the peak
memory of each (target: under 150 MB whatever the size), beside the memory of a process that only opens the store.

    .venv/bin/python bench/usb_bench.py                 # 10,000 cases with one photo each (some hundreds of MB)
    .venv/bin/python bench/usb_bench.py --cases 1000    # a quick look

The cases are seed-demo's (names, villages, complaints, vitals and consent varying as theirs do); the photos are
random bytes of 20-60 kB (incompressible, as JPEG is). Each measured step is its own process (the command a user
runs), so its peak resident memory is its own.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _sync_common import HubProcess, seed, spoke_pc

from sqlalchemy import select

from spoke_client.db.models import CaseRow
from spoke_client.domain.model import AttachmentKind

ROOT = Path(__file__).resolve().parent.parent
PEAK = """
import resource, subprocess, sys, time
t = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)
sys.stderr.write(done.stderr[-2000:])
sys.stdout.write(done.stdout[-2000:])
"""


def measured(*command: str) -> tuple[float, float, str]:
    """(seconds, peak resident MB, output) of one command in its own process."""
    env = {**os.environ, "SPOKE_USER": "admin", "SPOKE_PASSWORD": "bench-pass"}   # spoke_pc's administrator
    r = subprocess.run([sys.executable, "-c", PEAK, *command], capture_output=True, text=True, cwd=ROOT, env=env)
    first, _, rest = r.stdout.partition("\n")
    seconds, peak_kb, code = first.split()
    if code != "0":
        raise SystemExit(f"{command[2:5]} failed ({code}): {r.stderr[-1500:]}")
    return float(seconds), int(peak_kb) / 1024, rest


def copy_speed(source: Path, folder: Path) -> float:
    """MB/s of copying the file's bytes on the same disk, flushed to it (what a plain file copy to the drive costs)."""
    target = folder / "copy.bin"
    if hasattr(os, "posix_fadvise"):   # read from the disk, as the export reads the photos
        fd = os.open(source, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    t = time.perf_counter()
    with open(source, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())
    seconds = time.perf_counter() - t
    size = target.stat().st_size
    target.unlink()
    return size / 2**20 / seconds


def copy_files_speed(folder: Path, target: Path) -> tuple[float, int]:
    """MB/s of copying the PC's photos as files (what copying the same bytes by hand to the drive costs), flushed."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    target.mkdir()
    t = time.perf_counter()
    size = 0
    for n, p in enumerate(files):
        with open(p, "rb") as src, open(target / f"{n}", "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            size += dst.tell()
    os.sync()
    seconds = time.perf_counter() - t
    shutil.rmtree(target)
    return size / 2**20 / seconds, len(files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--patients", type=int, default=None, help="default: two cases per patient")
    args = ap.parse_args()
    hub = HubProcess()
    try:
        pc, admin = spoke_pc(hub, "pc1")
        patients = args.patients or max(1, args.cases // 2)
        print(f"seeding {patients:,} patients and {args.cases:,} cases, a photo on each...", flush=True)
        seed(pc, admin, patients, args.cases)
        rng = random.Random(5)
        with pc.store.read() as s:
            # Closed and cancelled cases take no new attachment: those carry their records only.
            case_ids = s.scalars(select(CaseRow.id)).all()
            open_ids = s.scalars(select(CaseRow.id).where(CaseRow.status.not_in(("closed", "cancelled")))).all()
        for n, case_id in enumerate(open_ids):
            pc.attachments.attach(admin, case_id, AttachmentKind.PHOTO, rng.randbytes(rng.randint(20_000, 60_000)),
                                  "image/jpeg", f"photo {n}", width_px=1600, height_px=1200)
        pc.close()
        drive = hub.tmp / "drive"
        drive.mkdir()
        data_dir = str(hub.tmp / "pc1")
        client = [sys.executable, "-m", "spoke_client", "--data-dir", data_dir]
        _s, base_mb, _o = measured(sys.executable, "-c", "import sys; from spoke_client.paths import DataPaths; "
                                   "from spoke_client.services.vault import Gate; from pathlib import Path; "
                                   "g = Gate(DataPaths(Path(sys.argv[1]))); g.login('admin', 'bench-pass'); "
                                   "g.services.close()", data_dir)
        seconds, export_mb, out = measured(*client, "bundle", "export", "--out", str(drive))
        [bundle] = drive.glob("*.spokebundle")
        size_mb = bundle.stat().st_size / 2**20
        copy = copy_speed(bundle, hub.tmp)
        copy_files, n_files = copy_files_speed(hub.tmp / "pc1" / "media", hub.tmp / "copied")
        hub.stop()   # the hub's own process is done with; the import is the command hub staff run
        hub_cli = [sys.executable, "-m", "sync.hub", "--log-dir", str(hub.tmp / "logs"), "--db", hub.db]
        import_s, import_mb, said = measured(*hub_cli, "bundle", "import", str(bundle), "--media-dir",
                                             str(hub.tmp / "media"))
        print(said.strip())
        print(f"\n{len(case_ids):,} cases, {len(open_ids):,} of them open with a photo each; the bundle: {size_mb:,.1f} MB")
        print(f"{'':24}{'MB/s':>10}{'cases/s':>10}{'x copy':>9}{'peak MB':>10}")
        print(f"{'copy, same disk':24}{copy:>10,.1f}{'':>10}{1:>9.2f}{'':>10}   (the bundle's bytes as one file)")
        print(f"{'copy of the photos':24}{copy_files:>10,.1f}{'':>10}{copy_files / copy:>9.2f}{'':>10}"
              f"   ({n_files:,} files, as a person would copy them)")
        for name, s, peak in (("export (spoke)", seconds, export_mb), ("import (hub)", import_s, import_mb)):
            print(f"{name:24}{size_mb / s:>10,.1f}{len(case_ids) / s:>10,.0f}{size_mb / s / copy:>9.2f}{peak:>10,.0f}")
        print(f"{'open the store only':24}{'':>10}{'':>10}{'':>9}{base_mb:>10,.0f}   (the store opened and closed)")
        print("targets: export and import at least 0.50 x copy; peak under 150 MB")
    finally:
        if hub.proc.poll() is None:
            hub.stop()


if __name__ == "__main__":
    main()
