"""Patient search latency on a district's worth of patients, and the time to save a case with vitals: on the encrypted
database and on a clear copy of the same data, in one run."""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from spoke_client.db.engine import connect, database_kind  # noqa: E402
from spoke_client.db.models import PatientRow  # noqa: E402
from spoke_client.domain.vitals import Vitals  # noqa: E402
from spoke_client.paths import DataPaths  # noqa: E402
from spoke_client.services.auth import FacilityForm  # noqa: E402
from spoke_client.services.cases import CaseForm  # noqa: E402
from spoke_client.services.runtime import open_services  # noqa: E402
from spoke_client.services.seed import seed_demo  # noqa: E402
from spoke_client.services.vault import Gate  # noqa: E402


def misspell(rng: random.Random, word: str) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.choice(["drop", "swap", "double", "vowel"])
    if op == "drop":
        return word[:i] + word[i + 1:]
    if op == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + {"a": "aa", "e": "ee", "i": "ee", "o": "oo", "u": "oo"}.get(word[i], word[i]) + word[i + 1:]


def queries(services, n: int = 200, seed: int = 11) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    with services.store.read() as s:
        total = s.scalar(select(func.count()).select_from(PatientRow))
        picks = [s.scalars(select(PatientRow).offset(rng.randrange(total)).limit(1)).one() for _ in range(n)]
    out = []
    kinds = ["fragment", "misspelt", "name+village", "phone", "abha"]
    for i, p in enumerate(picks):
        kind = kinds[i % len(kinds)]
        first, *rest = p.name.lower().split()
        if kind == "phone" and p.phone:
            out.append((kind, p.phone[-5:]))
        elif kind == "abha" and p.abha_number:
            a = p.abha_number
            out.append((kind, f"{a[:2]}-{a[2:6]}-{a[6:10]}-{a[10:]}"))
        elif kind == "misspelt":
            out.append((kind, misspell(rng, first)))
        elif kind == "name+village":
            out.append((kind, f"{first} {p.village.lower()[:4]}"))
        else:
            out.append(("fragment", first[: max(3, len(first) - 2)] + (" " + rest[0][:3] if rest else "")))
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def measure(services, admin, label: str) -> dict[str, float]:
    qs = queries(services)
    services.patients.search("warmup")
    for _, q in qs[:20]:
        services.patients.search(q)
    by_kind: dict[str, list[float]] = {}
    found = 0
    for kind, q in qs:
        t = time.perf_counter()
        hits = services.patients.search(q)
        by_kind.setdefault(kind, []).append((time.perf_counter() - t) * 1000)
        found += bool(hits)
    all_ms = [x for v in by_kind.values() for x in v]
    size_mb = services.paths.database.stat().st_size / 1e6
    print(f"[{label}] database: {size_mb:,.0f} MB   queries: {len(qs)} ({found} with results)")
    print(f"[{label}] search  median {statistics.median(all_ms):6.2f} ms   p95 {pct(all_ms, 0.95):6.2f} ms   "
          f"max {max(all_ms):6.2f} ms")
    for kind, v in sorted(by_kind.items()):
        print(f"[{label}]   {kind:13s} n={len(v):3d}  median {statistics.median(v):6.2f} ms  p95 {pct(v, 0.95):6.2f} ms")
    patient_ids = [h.patient.id for h in services.patients.search(qs[0][1])[:1]] or [None]
    saves = []
    for i in range(100):
        case = services.cases.open_case(admin, patient_ids[0])
        t = time.perf_counter()
        services.cases.save(admin, case.id, CaseForm(complaints=("Fever", "Cough"), duration="3 days"),
                            vitals=Vitals(systolic_mmhg=130 + i % 20, diastolic_mmhg=85, pulse_per_min=88,
                                          respiratory_rate_per_min=18, temperature_c=37.9, spo2_pct=97,
                                          weight_kg=61.5, height_cm=158),
                            draft_key=f"case:{case.id}")
        saves.append((time.perf_counter() - t) * 1000)
    print(f"[{label}] save case with vitals  median {statistics.median(saves):6.2f} ms   p95 {pct(saves, 0.95):6.2f} ms")
    return {"p95": pct(all_ms, 0.95), "median": statistics.median(all_ms), "save": statistics.median(saves),
            "save_p95": pct(saves, 0.95)}


def main() -> None:
    """The encrypted database (as every PC has it now) and a clear copy of the very same data (SQLCipher's export
    with an empty key), measured one after the other in this run."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=1_000_000)
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parent / ".data"))
    args = ap.parse_args()
    paths = DataPaths(Path(args.data_dir) / f"p{args.patients}-encrypted")
    if database_kind(paths.database) == "encrypted" and paths.keyslots.exists():
        gate = Gate(paths)
        admin = gate.login("admin", "bench-password")
        services = gate.services
    else:
        services = open_services(paths)
        _f, admin = services.auth.setup(FacilityForm("Bench HWC", "HWC-BENCH", "Sitapur", "Uttar Pradesh"), "admin",
                                        "Bench Admin", "bench-password")
    with services.store.read() as s:
        have = s.scalar(select(func.count()).select_from(PatientRow))
    clear = DataPaths(Path(args.data_dir) / f"p{args.patients}-clear")
    if have < args.patients:
        t0 = time.perf_counter()
        seed_demo(services.store, admin, services.auth.facility().id, args.patients - have, 0,
                  progress=lambda d, t: print(f"  seeding {d:,}/{t:,}", end="\r", flush=True))
        print(f"\nseeded {args.patients - have:,} patients in {time.perf_counter() - t0:.1f} s (encrypted)")
        shutil.rmtree(clear.root, ignore_errors=True)
    if not clear.database.exists():
        clear.ensure()
        con = connect(paths.database, services.key)
        try:
            con.execute("ATTACH DATABASE ? AS plain KEY ''", (str(clear.database),))
            con.execute("SELECT sqlcipher_export('plain')")
            con.execute("DETACH DATABASE plain")
        finally:
            con.close()
    print(f"patients: {args.patients:,}")
    encrypted = measure(services, admin, "encrypted")
    services.close()
    plain = open_services(clear)
    assert plain.key is None
    try:
        baseline = measure(plain, admin, "clear    ")
    finally:
        plain.close()
    print(f"encrypted / clear:  search p95 {encrypted['p95']:.2f} / {baseline['p95']:.2f} ms "
          f"({encrypted['p95'] / baseline['p95']:.2f}x; target p95 under 50 ms)   "
          f"save median {encrypted['save']:.2f} / {baseline['save']:.2f} ms "
          f"({encrypted['save'] / baseline['save']:.2f}x; target under 20 ms)")


if __name__ == "__main__":
    main()
