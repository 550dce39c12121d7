"""Hub ingest on PostgreSQL: cases per second from 50 spokes pushing at once.

Starts `spoke-hub serve --workers N` on a fresh PostgreSQL database, creates 50 facilities and enrols one
spoke in each, then lets all 50 push their cases at the same moment, each in batches, from client processes
on this same machine (so the clients' own work competes with the hub for the 2 cores; the figure is a floor).
Each case travels as the three changes a real case makes (patient, case, vitals); the figure counts cases.

    .venv/bin/python bench/ingest_bench.py [--spokes 50] [--cases 2000] [--batch 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import requests  # noqa: E402

PG = dict(host="127.0.0.1", port=5432, user="postgres", dbname="test")


def changes_for_case(rng: random.Random, device_id: str, clock, n: int):
    from sync.protocol import Change, Op

    patient_id, case_id = str(uuid.uuid4()), str(uuid.uuid4())
    now = int(time.time() * 1000)

    def change(entity, entity_id, payload):
        return Change(change_id=uuid.uuid4(), entity=entity, entity_id=entity_id, version=1, op=Op.UPSERT,
                      hlc=clock.now(now).encode(), device_id=device_id, payload=payload)

    return [
        change("patient", patient_id, {"id": patient_id, "name": f"Patient {n}", "sex": rng.choice(["female", "male"]),
                                       "birth_date": f"19{rng.randint(40, 99)}-01-01", "birth_date_approximate": True,
                                       "relative_name": "Ram Lal", "relative_relation": "W/o", "phone": "",
                                       "village": "Rampur", "address": "", "abha_number": "", "abha_address": "",
                                       "version": 1, "created_at": "2026-11-24T05:30:00+00:00"}),
        change("case", case_id, {"id": case_id, "patient_id": patient_id, "status": "queued", "complaints": ["Fever"],
                                 "complaint_text": "since 3 days", "duration": "3 days", "history": "", "examination": "",
                                 "pregnant": False, "priority": rng.randint(0, 3), "version": 1,
                                 "created_at": "2026-11-24T05:30:00+00:00", "updated_at": "2026-11-24T05:31:00+00:00"}),
        change("vitals", str(uuid.uuid4()), {"case_id": case_id, "recorded_at": "2026-11-24T05:31:00+00:00",
                                             "recorded_by": device_id, "status": "final", "source": "manual",
                                             "vitals": {"systolic_mmhg": rng.randint(100, 180), "pulse_per_min": 88}}),
    ]


def spoke_worker(url: str, codes: list[str], cases: int, batch_cases: int, start_at: float, out) -> None:
    """One client process: several spokes, each a thread pushing its batches back to back."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sync.hlc import HybridLogicalClock
    from sync.protocol import PushBatch, PushResult, encode
    from sync.transport.http import HubClient

    prepared = []
    for i, code in enumerate(codes):
        key = Ed25519PrivateKey.generate()
        device_id = str(uuid.uuid4())
        HubClient(url).enroll(code, key, device_id, f"bench-{i}")
        client = HubClient(url, device_id=device_id, key=key, next_counter=itertools.count(1).__next__)
        clock, rng = HybridLogicalClock(device_id), random.Random(i)
        batches = []
        for b in range(0, cases, batch_cases):
            changes = [c for n in range(b, min(cases, b + batch_cases)) for c in changes_for_case(rng, device_id, clock, n)]
            batch = PushBatch(batch_id=uuid.uuid4(), changes=changes)
            batches.append((len(changes), encode(batch)))   # encoded in advance: spokes do this on their own PCs
        prepared.append((client, batches))

    results = []

    def push_all(client, batches):
        for n, body in batches:
            result = client._call("POST", "/v1/push", body, PushResult)
            assert len(result.accepted) == n, (len(result.accepted), result.rejected[:1])
        results.append(time.time())

    threads = [threading.Thread(target=push_all, args=p) for p in prepared]
    time.sleep(max(0.0, start_at - time.time()))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(max(results) if len(results) == len(prepared) else None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spokes", type=int, default=50)
    ap.add_argument("--cases", type=int, default=2000, help="cases per spoke")
    ap.add_argument("--batch", type=int, default=500, help="cases per push (3 changes each)")
    ap.add_argument("--workers", type=int, default=3, help="hub worker processes (3 on 2 cores: one waits on PostgreSQL while the others parse)")
    ap.add_argument("--client-procs", type=int, default=2)
    args = ap.parse_args()

    name = f"spoke_ingest_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**PG, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    db = f"postgresql+psycopg://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    work = Path(tempfile.mkdtemp(prefix="spoke-ingest-"))
    port = 19470 + os.getpid() % 1000
    hub_cmd = [sys.executable, "-m", "sync.hub", "--db", db]
    hub = subprocess.Popen(hub_cmd + ["serve", "--port", str(port), "--workers", str(args.workers),
                                      "--media-dir", str(work / "media")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                requests.get(url + "/v1/health", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        from sync.hub.service import Hub, make_hub_engine

        admin = Hub(make_hub_engine(db))
        codes = [admin.enroll_code(admin.create_facility(f"HWC {i}", f"HWC-BENCH-{i:03d}")) for i in range(args.spokes)]
        admin.engine.dispose()
        start_at = time.time() + 5 + args.spokes * args.cases / 20_000   # time for the clients to prepare
        out: mp.Queue = mp.Queue()
        procs = [mp.Process(target=spoke_worker, args=(url, codes[i::args.client_procs], args.cases, args.batch, start_at, out))
                 for i in range(args.client_procs)]
        for p in procs:
            p.start()
        ends = [out.get(timeout=3600) for _ in procs]
        for p in procs:
            p.join()
        assert all(ends), "a client failed"
        seconds = max(ends) - start_at
        total = args.spokes * args.cases
        with psycopg.connect(**(PG | {"dbname": name})) as con:
            stored = con.execute("SELECT count(*) FROM hub_change").fetchone()[0]
        assert stored >= total * 3, stored
        print(f"{args.spokes} spokes x {args.cases:,} cases = {total:,} cases ({total * 3:,} changes) in batches of "
              f"{args.batch} cases; hub: PostgreSQL, {args.workers} worker processes, {os.cpu_count()} cores")
        print(f"ingest: {seconds:.1f} s = {total / seconds:,.0f} cases/s ({total * 3 / seconds:,.0f} changes/s); "
              f"the national peak day of 5.2 lakh cases would take {520_000 / (total / seconds) / 60:.1f} min")
    finally:
        hub.terminate()
        hub.wait(20)
        with psycopg.connect(**PG, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
