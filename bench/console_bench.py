"""The doctors' console under load: 10,000 queued cases from 500 facilities on PostgreSQL; the queue and a case,
as JSON and as pages, timed over HTTP against a hub process; and issuing a prescription, timed at the server.

    .venv/bin/python bench/console_bench.py                  # a fresh PostgreSQL database on 127.0.0.1:5432
    .venv/bin/python bench/console_bench.py --db sqlite:////tmp/hub.sqlite

Targets (issue "The hub doctor's console"): queue and case pages p95 under 200 ms; issuing under 100 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from _sync_common import HubProcess  # noqa: E402
from sync.hlc import HybridLogicalClock  # noqa: E402
from sync.hub.auth import Device  # noqa: E402
from sync.hub.clinic import MedicineDraft, PrescriptionDraft  # noqa: E402
from sync.hub.models import HubDevice  # noqa: E402
from sync.hub.service import Hub, make_hub_engine  # noqa: E402
from sync.payloads import payload_of  # noqa: E402
from sync.protocol import Change, Op, PushEnvelope  # noqa: E402

NAMES = ["Kamla Devi", "Ravi Kumar", "Sunita Yadav", "Mohd. Irfan", "Lakshmi Bai", "Ganesan S", "Meena Kumari",
         "Phoolmati", "Ramesh Verma", "Savitri Kushwaha", "Pooja Gupta", "Arumugam K"]
COMPLAINTS = ["Fever", "Cough", "Breathlessness", "Chest pain", "Headache", "Joint pain", "Dizziness", "Skin rash"]


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def fresh_postgres() -> str:
    import psycopg

    name = f"spoke_console_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def seed(hub: Hub, facilities: int, cases: int, rng: random.Random) -> tuple[list[str], str]:
    org = hub.create_hub("District Hospital Sitapur")
    admin = hub.add_staff(None, org, "admin", "Anita Sharma", "admin-pass-12", "admin")
    hub.add_staff(admin, org, "dr.mehta", "Dr Rajesh Mehta", "mehta-pass-12", "doctor", qualification="MBBS, MD",
                  registration_number="UPMC 45678")
    per = cases // facilities
    case_ids = []
    for f in range(facilities):
        fid = hub.create_facility(f"HWC {f:03d}", f"HWC-B-{f:04d}")
        hub.assign_facility(admin, fid, org)
        device = Device(str(uuid.uuid4()), fid)
        with hub.session.begin() as s:
            s.add(HubDevice(id=device.id, facility_id=fid, name="bench", public_key=uuid.uuid4().hex + "x" * 11,
                            last_counter=0, enrolled_at=datetime.now(timezone.utc), revoked_at=None, revoked_reason=""))
        clock = HybridLogicalClock(device.id)
        changes = []
        for i in range(per):
            pid, cid, vid = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
            stamp = lambda: clock.now(int(time.time() * 1000)).encode()  # noqa: E731
            level = rng.choice([0, 0, 0, 1, 2, 3])
            changes += [
                Change(change_id=uuid.uuid4(), entity="patient", entity_id=pid, version=1, op=Op.UPSERT, hlc=stamp(),
                       device_id=device.id, payload=payload_of("patient", dict(
                           id=pid, name=rng.choice(NAMES), sex=rng.choice(["female", "male"]),
                           birth_date=f"{rng.randint(1940, 2024)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                           village="Rampur", allergies=["Penicillin"] if rng.random() < 0.1 else []))),
                Change(change_id=uuid.uuid4(), entity="case", entity_id=cid, version=1, op=Op.UPSERT, hlc=stamp(),
                       device_id=device.id, payload=payload_of("case", dict(
                           id=cid, patient_id=pid, status="queued", priority=level,
                           complaints=rng.sample(COMPLAINTS, 2), created_at=datetime.now(timezone.utc)))),
                Change(change_id=uuid.uuid4(), entity="vitals", entity_id=vid, version=1, op=Op.UPSERT, hlc=stamp(),
                       device_id=device.id, payload=payload_of("vitals", dict(
                           id=vid, case_id=cid, recorded_at=datetime.now(timezone.utc), recorded_by="u",
                           vitals=dict(pulse_per_min=rng.randint(60, 130), systolic_mmhg=rng.randint(100, 190),
                                       diastolic_mmhg=rng.randint(60, 95)),
                           assessment=dict(level=level, news2=rng.randint(0, 9), flags=[])))),
            ]
            case_ids.append(cid)
        result = hub.push(device, PushEnvelope(batch_id=uuid.uuid4(), changes=[c.model_dump(mode="json") for c in changes]))
        assert len(result.accepted) == len(changes), result.rejected[:2]
    return case_ids, org


def time_get(session: requests.Session, url: str, n: int, **kw) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = session.get(url, timeout=30, **kw)
        out.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (url, r.status_code, r.text[:200])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default=None)
    ap.add_argument("--facilities", type=int, default=500)
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    db = args.db or fresh_postgres()
    tmp = Path(tempfile.mkdtemp(prefix="spoke-console-bench-"))
    hub = Hub(make_hub_engine(db), media_dir=tmp / "media")
    hub.create_schema()
    rng = random.Random(3)
    t0 = time.perf_counter()
    case_ids, _org = seed(hub, args.facilities, args.cases, rng)
    print(f"seeded {len(case_ids):,} queued cases from {args.facilities} facilities in {time.perf_counter() - t0:.1f} s "
          f"({db.split(':')[0]})", flush=True)
    server = HubProcess(db)
    url = server.url
    try:
        s = requests.Session()
        token = s.post(f"{url}/v1/hub/session", json={"username": "dr.mehta", "password": "mehta-pass-12"},
                       timeout=10).json()["token"]
        s.headers["Authorization"] = f"Bearer {token}"
        s.cookies.set("spoke_hub_session", token)
        results = {}
        # The floor, in the same run: the hub's cheapest answer over the same HTTP stack.
        results["health (floor)"] = time_get(s, f"{url}/v1/health", args.requests)
        results["queue (JSON API)"] = time_get(s, f"{url}/v1/hub/queue", args.requests)
        sample = rng.sample(case_ids, args.requests)
        results["case (JSON API)"] = [x for cid in sample for x in time_get(s, f"{url}/v1/hub/cases/{cid}/view", 1)]
        if requests.get(f"{url}/console/login", timeout=10).status_code == 200:
            results["queue page"] = time_get(s, f"{url}/console/", args.requests)
            results["case page"] = [x for cid in sample for x in time_get(s, f"{url}/console/cases/{cid}", 1)]
        for name, values in results.items():
            target = "floor" if name.startswith("health") else "target p95 < 200 ms"
            print(f"{name:18s} median {statistics.median(values):6.1f} ms   p95 {percentile(values, 95):6.1f} ms   "
                  f"({target}; {len(values)} requests)")
        doctor = next(p for p in hub.staff(hub.hubs()[0][0]) if p.username == "dr.mehta")
        issue_ms = []
        for cid in sample[:50]:
            hub.take(doctor, cid)
            draft = PrescriptionDraft(diagnosis="Acute upper respiratory infection", icd10_code="J06.9", medicines=[
                MedicineDraft(name="Paracetamol", dose="1 tablet", frequency="TDS", duration_days=3)])
            t = time.perf_counter()
            hub.issue(doctor, cid, draft)
            issue_ms.append((time.perf_counter() - t) * 1000)
        print(f"{'issuing (server)':18s} median {statistics.median(issue_ms):6.1f} ms   p95 {percentile(issue_ms, 95):6.1f} ms"
              f"   (target < 100 ms; {len(issue_ms)} prescriptions)")
    finally:
        server.stop()
        hub.engine.dispose()
        if args.db is None:   # the bench's own database: dropped, so runs do not pile up
            import psycopg

            with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", autocommit=True) as con:
                con.execute(f'DROP DATABASE IF EXISTS "{db.rsplit("/", 1)[1]}" WITH (FORCE)')


if __name__ == "__main__":
    main()
