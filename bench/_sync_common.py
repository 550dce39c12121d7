"""What the sync benchmarks share: a hub process on loopback, enrolled spokes seeded by seed-demo's generator,
byte counting on the wire, and the gzip -9 floor of the same records."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402
from sqlalchemy import select  # noqa: E402

from spoke_client.db.models import ChangeRow  # noqa: E402
from spoke_client.paths import DataPaths  # noqa: E402
from spoke_client.services.auth import FacilityForm  # noqa: E402
from spoke_client.services.runtime import open_services  # noqa: E402
from spoke_client.services.seed import seed_demo  # noqa: E402
from spoke_client.services.sync_local import enroll  # noqa: E402


class CountingSession(requests.Session):
    """Counts requests and the bytes of requests and answers on the wire, headers included."""

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

    @property
    def total(self) -> int:
        return self.bytes_out + self.bytes_in


class HubProcess:
    def __init__(self, db: str | None = None, workers: int = 1) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="spoke-sync-bench-"))
        self.db = db or f"sqlite:///{self.tmp / 'hub.sqlite'}"
        self.port = 18470 + os.getpid() % 1000
        self.cmd = [sys.executable, "-m", "sync.hub", "--log-dir", str(self.tmp / "logs"), "--db", self.db]
        self.proc = subprocess.Popen(self.cmd + ["serve", "--port", str(self.port), "--workers", str(workers),
                                                 "--media-dir", str(self.tmp / "media")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                requests.get(self.url + "/v1/health", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        self.facility = subprocess.run(self.cmd + ["create-facility", "--name", "Bench", "--hwc-id", "HWC-BENCH"],
                                       capture_output=True, text=True, check=True).stdout.strip()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def code(self) -> str:
        return subprocess.run(self.cmd + ["enroll-code", "--facility", self.facility], capture_output=True, text=True,
                              check=True).stdout.strip()

    def stop(self) -> None:
        """Stops the hub and removes the run's folder (hub and PCs: gigabytes at 100,000 patients), unless
        SPOKE_BENCH_KEEP is set."""
        self.proc.terminate()
        self.proc.wait(20)
        if not os.environ.get("SPOKE_BENCH_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)


def spoke_pc(hub: HubProcess, name: str):
    services = open_services(DataPaths(hub.tmp / name))
    _f, admin = services.auth.setup(FacilityForm("Bench", "HWC-BENCH", "Sitapur", "UP"), "admin", "Admin", "bench-pass")
    enroll(services.store, services.paths, hub.url, hub.code(), name)
    return services, admin


def seed(services, admin, patients: int, cases: int) -> int:
    """seed-demo's patients and cases (names, villages, phones, complaints, vitals and consent varying as theirs
    do); the set-up's own changes are marked sent, so what is counted is the seeded records alone."""
    with services.store.write(admin.id) as w:
        w.session.execute(ChangeRow.__table__.update().values(pushed_at=w.now))
    report = seed_demo(services.store, admin, services.auth.facility().id, patients, cases, seed=11)
    with services.store.read() as s:
        return len(s.scalars(select(ChangeRow.change_id).where(ChangeRow.pushed_at.is_(None))).all()) or report.patients


def floor_bytes(services) -> tuple[int, int, int]:
    """(records, bytes of their compact JSON, bytes of gzip -9 of those bare payloads: no envelope at all)."""
    with services.store.read() as s:
        payloads = [p for p in s.scalars(select(ChangeRow.payload).where(ChangeRow.pushed_at.is_(None))
                                         .order_by(ChangeRow.seq))]
    text = "\n".join(json.dumps(p, separators=(",", ":"), ensure_ascii=False) for p in payloads).encode()
    return len(payloads), len(text), len(gzip.compress(text, 9))
