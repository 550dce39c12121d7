"""Push throughput of seed-demo's records to a hub on loopback, durable at both ends, and the bytes on the wire
beside the gzip -9 floor of the same bare records, measured in the same run."""

from __future__ import annotations

import argparse
import os
import time

from _sync_common import CountingSession, HubProcess, floor_bytes, seed, spoke_pc

from spoke_client.services.sync_local import make_engine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patients", type=int, default=3000)
    ap.add_argument("--cases", type=int, default=2500)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--hub-db", default=None, help="hub database URL (default: a fresh SQLite file)")
    ap.add_argument("--json", action="store_true", help="the 0.1 wire (gzip JSON rows) instead of columns")
    args = ap.parse_args()
    hub = HubProcess(args.hub_db)
    try:
        services, admin = spoke_pc(hub, "pc1")
        seed(services, admin, args.patients, args.cases)
        records, compact, floor = floor_bytes(services)
        engine, _local = make_engine(services.store, services.paths)
        session = CountingSession()
        engine.client.http = session
        engine.client.columns = engine.client.prefer_columns = not args.json
        engine.batch_size = args.batch
        if os.environ.get("PROFILE"):
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        t0 = time.perf_counter()
        report = engine.run_once()   # the pull that follows finds nothing: this PC made every record
        seconds = time.perf_counter() - t0
        if os.environ.get("PROFILE"):
            import pstats

            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)
        assert report.ok and report.pushed == records, report
        print(f"records: {records:,} seed-demo changes (patients, cases, vitals, consent; {compact / records:.0f} B each "
              f"as compact JSON)   hub: {hub.db.split(':')[0]}   wire: {'gzip JSON rows' if args.json else 'columns, zstd'}")
        print(f"push: {seconds:.2f} s = {records / seconds:,.0f} records/s in {session.requests} requests "
              f"(batches of {args.batch})")
        print(f"bytes on the wire: {session.total / records:.1f} per record, envelope and HTTP headers included; "
              f"floor (gzip -9 of the bare payloads): {floor / records:.1f}; ratio {session.total / floor:.2f}x the floor")
        services.close()
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
