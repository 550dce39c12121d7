"""A replacement PC rebuilds its facility by pull: records/s beside the push of the same records in the same run,
the bytes on the wire beside the gzip -9 floor, progress with a time estimate, and how long a registration waits
while the rebuild runs (the app must stay usable).

    .venv/bin/python bench/pull_bench.py                                  # 3,000 patients, 2,500 cases
    .venv/bin/python bench/pull_bench.py --patients 100000 --cases 300000 # the target: under 2 minutes
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

from _sync_common import CountingSession, HubProcess, floor_bytes, seed, spoke_pc

from spoke_client.services.patients import PatientForm
from spoke_client.services.progress import Estimate
from spoke_client.services.sync_local import make_engine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=3000)
    ap.add_argument("--cases", type=int, default=2500)
    ap.add_argument("--hub-db", default=None)
    ap.add_argument("--page", type=int, default=2000)
    ap.add_argument("--json", action="store_true", help="the 0.1 wire (gzip JSON rows) instead of columns")
    ap.add_argument("--use", action="store_true", help="a paramedic registers a patient every half second meanwhile")
    args = ap.parse_args()
    hub = HubProcess(args.hub_db)
    try:
        pc1, admin1 = spoke_pc(hub, "pc1")
        print(f"seeding {args.patients:,} patients and {args.cases:,} cases...", flush=True)
        seed(pc1, admin1, args.patients, args.cases)
        records, compact, floor = floor_bytes(pc1)
        engine, _ = make_engine(pc1.store, pc1.paths)
        engine.client.columns = engine.client.prefer_columns = not args.json
        engine.batch_size = 1000
        t0 = time.perf_counter()
        pushed = engine.run_once()
        push_s = time.perf_counter() - t0
        assert pushed.ok and pushed.pushed == records, pushed

        pc2, admin2 = spoke_pc(hub, "pc2")   # the replacement PC, enrolled for the same facility
        engine, _ = make_engine(pc2.store, pc2.paths)
        session = CountingSession()
        engine.client.http = session
        engine.client.columns = engine.client.prefer_columns = not args.json
        engine.page_size = args.page
        estimates: list[tuple[int, float, float | None]] = []   # (done, seconds since the start, the app's estimate)
        started = time.perf_counter()
        estimate = Estimate()                                    # the app's own (the sync bar shows it)

        def progress(stage: str, done: int, total: int) -> None:
            if stage == "pull" and done and total > done:
                left = estimate.update(stage, done, total)
                if not estimates or done - estimates[-1][0] >= records // 10:
                    estimates.append((done, time.perf_counter() - started, left))

        waits: list[float] = []
        stop = threading.Event()

        def paramedic() -> None:   # the app in use: a registration every half second while the rebuild runs
            n = 0
            while not stop.wait(0.5):
                n += 1
                t = time.perf_counter()
                pc2.patients.register(admin2, PatientForm(name=f"Walk In {chr(65 + n % 26)}", sex="female",
                                                          age_years=30), confirmed_new=True)
                waits.append(time.perf_counter() - t)

        writer = threading.Thread(target=paramedic, daemon=True)
        if args.use:
            writer.start()
        if os.environ.get("PROFILE"):
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        t0 = time.perf_counter()
        report = engine.run_once(progress=progress)
        pull_s = time.perf_counter() - t0
        stop.set()
        if args.use:
            writer.join()
        if os.environ.get("PROFILE"):
            import pstats

            prof.disable()
            pstats.Stats(prof).sort_stats("cumtime").print_stats(25)
            pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        assert report.error is None and report.pulled >= records, report
        with pc2.store.read() as s:   # every record is there, not only received
            from sqlalchemy import func, select

            from spoke_client.db.models import CaseRow, ConsentRow, PatientRow, VitalsRow

            held = [s.scalar(select(func.count()).select_from(t)) for t in (PatientRow, CaseRow, VitalsRow, ConsentRow)]
        assert held[0] >= args.patients and held[1] == held[2] == args.cases, f"not every record was applied: {held}"
        print(f"records: {records:,} ({compact / records:.0f} B each as compact JSON)   hub: {hub.db.split(':')[0]}   "
              f"wire: {'gzip JSON rows' if args.json else 'columns, zstd'}")
        print(f"push by PC-1:  {push_s:7.1f} s = {records / push_s:8,.0f} records/s")
        print(f"pull by PC-2:  {pull_s:7.1f} s = {report.pulled / pull_s:8,.0f} records/s   "
              f"(pull/push {push_s / pull_s:.2f}x)   pages of {args.page}")
        print(f"pull bytes on the wire: {session.total / report.pulled:.1f} per record, headers included; floor (gzip -9 "
              f"of the bare payloads) {floor / records:.1f}; ratio {session.total / floor:.2f}x the floor")
        print(f"PC-2 holds {held[0]:,} patients (its own included), {held[1]:,} cases, {held[2]:,} vitals sets and "
              f"{held[3]:,} consents")
        print("the app's time estimate against the time it took: " + "; ".join(
            f"at {done:,}: {'-' if left is None else f'{left:.0f} s'} left, {pull_s - at:.0f} s in fact"
            for done, at, left in estimates))
        if waits:
            print(f"registrations during the rebuild: {len(waits)}, median {statistics.median(waits) * 1000:.0f} ms, "
                  f"longest {max(waits) * 1000:.0f} ms")
        pc1.close()
        pc2.close()
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
