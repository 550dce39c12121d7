"""The convergence property (tests/sync/test_convergence.py) at nightly size: hundreds of interleavings of two
PCs, hub edits, lost answers, cut requests and hub kills, with hypothesis's statistics so the run shows which
steps and faults it covered, and how long it took."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/sync/test_convergence.py::test_any_interleaving_converges"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--examples", type=int, default=300, help="how many generated interleavings (default 300)")
    p.add_argument("--seed", help="hypothesis seed, to run the same interleavings again")
    args, extra = p.parse_known_args()   # anything else goes to pytest (-x, -v, --hypothesis-verbosity=...)
    env = os.environ | {"SPOKE_CONVERGENCE_PROFILE": "convergence-nightly",
                        "SPOKE_CONVERGENCE_EXAMPLES": str(args.examples), "QT_QPA_PLATFORM": "offscreen"}
    cmd = [sys.executable, "-m", "pytest", TEST, "-q", "-p", "no:cacheprovider", "--timeout=0",
           "--hypothesis-show-statistics"]
    if args.seed:
        cmd += ["--hypothesis-seed", args.seed]
    started = time.monotonic()
    rc = subprocess.call(cmd + extra, cwd=ROOT, env=env)
    seconds = time.monotonic() - started
    each = seconds / max(args.examples, 1)
    print(f"\n{args.examples} examples (+ the explicit ones) in {seconds:.0f} s ({each:.2f} s each); "
          f"pytest exit code {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
