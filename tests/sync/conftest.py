"""A real hub on 127.0.0.1 (uvicorn in a thread), on SQLite and on PostgreSQL, and enrolled devices."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import threading
import time
import uuid

import psycopg
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync.hlc import HybridLogicalClock
from sync.hub.app import create_app
from sync.hub.service import Hub, make_hub_engine
from sync.protocol import Change, Op, PushBatch
from sync.transport.http import HubClient
from spoke_client.paths import DataPaths
from spoke_client.services.auth import FacilityForm
from spoke_client.services.runtime import open_services

ADMIN_TOKEN = "test-admin-token"
PG = dict(host="127.0.0.1", port=5432, user="postgres", dbname="test")


def _postgres_ready() -> bool:
    try:
        psycopg.connect(**PG, connect_timeout=3).close()
        return True
    except psycopg.Error:
        return False


def ensure_postgres() -> None:
    """PostgreSQL runs at 127.0.0.1:5432 on these machines; where it is stopped, start it."""
    if _postgres_ready():
        return
    versions = subprocess.run(["ls", "/etc/postgresql"], capture_output=True, text=True).stdout.split()
    for v in versions:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", v, "main", "start"], capture_output=True)
    for _ in range(30):
        if _postgres_ready():
            return
        time.sleep(0.5)
    pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 and could not be started")


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.sqlite'}"
        return
    ensure_postgres()
    name = f"spoke_hub_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**PG, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    with psycopg.connect(**PG, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def hub(hub_db_url, tmp_path):
    h = Hub(make_hub_engine(hub_db_url), media_dir=tmp_path / "hub-media")
    h.create_schema()
    yield h
    h.engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    def __init__(self, app) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the hub did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def hub_server(hub):
    server = ServerThread(create_app(hub, ADMIN_TOKEN)).start()
    yield server
    server.stop()


class Spoke:
    """A minimal enrolled device for protocol tests (the real client engine builds on the same HubClient)."""

    def __init__(self, url: str, hub: Hub, facility_id: str, name: str) -> None:
        self.key = Ed25519PrivateKey.generate()
        result = HubClient(url).enroll(hub.enroll_code(facility_id), self.key, str(uuid.uuid4()), name)
        self.device_id, self.facility_id = result.device_id, result.facility_id
        self.client = HubClient(url, device_id=self.device_id, key=self.key, next_counter=itertools.count(1).__next__)
        self.clock = HybridLogicalClock(self.device_id)

    def change(self, entity: str, entity_id: str, payload: dict | None, version: int = 1) -> Change:
        return Change(change_id=uuid.uuid4(), entity=entity, entity_id=entity_id, version=version,
                      op=Op.UPSERT if payload is not None else Op.DELETE,
                      hlc=self.clock.now(int(time.time() * 1000)).encode(), device_id=self.device_id, payload=payload)

    def batch(self, changes: list[Change]) -> PushBatch:
        return PushBatch(batch_id=uuid.uuid4(), changes=changes)


@pytest.fixture
def facilities(hub):
    return hub.create_facility("HWC Rampur", "HWC-UP-0042"), hub.create_facility("HWC Kultali", "HWC-WB-0007")


@pytest.fixture
def spoke_factory(hub, hub_server):
    return lambda facility_id, name="PC": Spoke(hub_server.url, hub, facility_id, name)


# The command line on a `spoke` fixture's PC: its data is encrypted, and the programs sign in as its administrator.
SPOKE_CLI_ENV = {"SPOKE_USER": "admin", "SPOKE_PASSWORD": "pass-word-1"}


def cli_env() -> dict[str, str]:
    return {**os.environ, **SPOKE_CLI_ENV}


@pytest.fixture
def spoke(tmp_path):
    def make(name: str, hwc: str = "HWC-UP-0042"):
        paths = DataPaths(tmp_path / name)
        s = open_services(paths)
        _f, admin = s.auth.setup(FacilityForm("HWC Rampur", hwc, "Sitapur", "Uttar Pradesh"), "admin", "Asha", "pass-word-1")
        made.append(s)
        return s, admin, paths

    made = []
    yield make
    for s in made:
        s.close()
