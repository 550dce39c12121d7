"""Push throughput of 10,000 case records to a hub on loopback, durable at both ends; requests and bytes on the wire."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from spoke_client.paths import DataPaths  # noqa: E402
from spoke_client.services.auth import FacilityForm  # noqa: E402
from spoke_client.services.runtime import open_services  # noqa: E402
from spoke_client.services.store import new_id  # noqa: E402
from spoke_client.services.sync_local import enroll, make_engine  # noqa: E402


class CountingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.requests = 0
        self.bytes_out = 0
        self.bytes_in = 0

    def send(self, request, **kw):
        self.requests += 1
        head = f"{request.method} {request.path_url} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
        self.bytes_out += len(head) + 2 + len(request.body or b"")
        r = super().send(request, **kw)
        raw_len = int(r.headers.get("Content-Length", len(r.content)))
        self.bytes_in += raw_len + len("HTTP/1.1 200 OK\r\n") + sum(len(k) + len(v) + 4 for k, v in r.headers.items()) + 2
        return r


def case_record(rng: random.Random) -> dict:
    """20 fields, about 500 bytes as compact JSON, like the reference measurement in the issue."""
    return {
        "id": new_id(), "patient_id": new_id(), "status": rng.choice(["queued", "ready", "draft"]),
        "complaints": rng.sample(["Fever", "Cough", "Headache", "Chest pain", "Joint pain"], 2),
        "complaint_text": rng.choice(["since 3 days", "on and off", "worse at night", ""]),
        "duration": f"{rng.randint(1, 14)} days", "history": rng.choice(["Known hypertensive", "No known illness", "Diabetic"]),
        "examination": rng.choice(["Pallor present", "No pallor, no icterus", "Chest clear"]), "pregnant": False,
        "priority": rng.randint(0, 3), "created_at": "2026-11-24T05:30:00+00:00", "updated_at": "2026-11-24T05:31:00+00:00",
        "version": 1, "systolic_mmhg": rng.randint(100, 190), "diastolic_mmhg": rng.randint(60, 120),
        "pulse_per_min": rng.randint(60, 130), "temperature_c": round(rng.uniform(36, 39.5), 1),
        "spo2_pct": rng.randint(88, 100), "weight_kg": round(rng.uniform(35, 90), 1), "village": "Rampur",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=1_000)
    ap.add_argument("--hub-db", default=None, help="hub database URL (default: a fresh SQLite file)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="spoke-push-bench-"))
    hub_db = args.hub_db or f"sqlite:///{tmp / 'hub.sqlite'}"
    port = 18470 + os.getpid() % 1000
    hub_cmd = [sys.executable, "-m", "sync.hub", "--db", hub_db]
    hub = subprocess.Popen(hub_cmd + ["serve", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                requests.get(url + "/v1/health", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        facility = subprocess.run(hub_cmd + ["create-facility", "--name", "Bench", "--hwc-id", "HWC-BENCH"],
                                  capture_output=True, text=True, check=True).stdout.strip()
        code = subprocess.run(hub_cmd + ["enroll-code", "--facility", facility], capture_output=True, text=True,
                              check=True).stdout.strip()
        services = open_services(DataPaths(tmp / "spoke"))
        _f, admin = services.auth.setup(FacilityForm("Bench", "HWC-BENCH", "Sitapur", "UP"), "admin", "Admin", "bench-pass")
        enroll(services.store, services.paths, url, code, "bench")
        rng = random.Random(5)
        records = [case_record(rng) for _ in range(args.records)]
        with services.store.write(admin.id) as w:
            w.session.execute(__import__("sqlalchemy").text("UPDATE change_log SET pushed_at = changed_at"))
            for r in records:
                w.change("case", r["id"], 1, r)
        compact = sum(len(json.dumps(r, separators=(",", ":"))) for r in records)
        gz = len(gzip.compress("\n".join(json.dumps(r, separators=(",", ":")) for r in records).encode(), 9))
        engine, _local = make_engine(services.store, services.paths)
        session = CountingSession()
        engine.client.http = session
        engine.batch_size = args.batch
        profile = os.environ.get("PROFILE")
        if profile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        t0 = time.perf_counter()
        report = engine.run_once()
        seconds = time.perf_counter() - t0
        if profile:
            import pstats

            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(12)
        assert report.ok and report.pushed == args.records, report
        wire = session.bytes_out + session.bytes_in
        print(f"records: {args.records:,} ({compact / args.records:.0f} bytes each as compact JSON; gzip -9 of the "
              f"bare records {gz / args.records:.0f} bytes/record)   hub: {hub_db.split(':')[0]}")
        print(f"push+pull round: {seconds:.2f} s = {args.records / seconds:,.0f} records/s, {session.requests} HTTP requests "
              f"(batches of {args.batch})")
        print(f"bytes on the wire: {wire:,} = {wire / args.records:.0f} per record; ratio to compact JSON "
              f"{wire / compact:.3f} (gzip -9 alone {gz / compact:.3f})")
        services.close()
    finally:
        hub.terminate()
        hub.wait(10)


if __name__ == "__main__":
    main()
