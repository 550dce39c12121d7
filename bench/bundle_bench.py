"""The installed bundle's size, its cold start to the first window, and the running app's memory with the
camera preview on (target under 300 MB).

    .venv/bin/python bench/bundle_bench.py [--dist build/dist/spoke]   (builds it first when it is missing)

Start-up is measured from spawning the process to the first window being on screen (the app writes the time
when SPOKE_STARTUP_PROBE is set), on a fresh data folder, on the offscreen platform. The first run is after
dropping the page cache where the kernel allows it (root); the others are warm. Memory is the resident set of
`spoke probe-memory`: signed in, a case open, the photo dialog previewing a 1920x1080 camera (a video file
through OpenCV's capture path) for 10 seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def start_once(exe: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "shown"
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", SPOKE_STARTUP_PROBE=str(probe), SPOKE_STARTUP_PROBE_EXIT="1")
        t0 = time.time()
        subprocess.run([str(exe), "--data-dir", str(Path(tmp) / "data")], env=env, check=False, timeout=120,
                       capture_output=True)
        return float(probe.read_text()) - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dist", default=str(ROOT / "build" / "dist" / "spoke"))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    dist = Path(args.dist)
    exe = dist / ("spoke.exe" if os.name == "nt" else "spoke")
    if not exe.exists():
        subprocess.run([str(ROOT / "installer" / "build-linux.sh")], check=True,
                       env=dict(os.environ, SPOKE_BUILD_DIR=str(dist.parent.parent)))
    print(f"bundle: {folder_mb(dist):.0f} MB in {dist}")
    cold = drop_caches()
    first = start_once(exe)
    warm = [start_once(exe) for _ in range(args.runs)]
    print(f"start to first window: {first:.2f} s on the first run ({'page cache dropped' if cold else 'cache not dropped: not root'}),"
          f" then median {statistics.median(warm):.2f} s over {len(warm)} warm runs")

    import cv2

    from tests.media.conftest import test_frame

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "camera.avi"
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15, (1920, 1080))
        for i in range(20):
            writer.write(test_frame(i))
        writer.release()
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        out = subprocess.run([str(exe), "--data-dir", str(Path(tmp) / "data"), "probe-memory", "--camera", str(video),
                              "--seconds", "10"], env=env, capture_output=True, text=True, timeout=120)
        result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"memory with the camera preview on: {result['rss_mb']} MB resident after {result['seconds']:.0f} s "
          f"({result['frames']} frames; target under 300 MB)")


if __name__ == "__main__":
    main()
