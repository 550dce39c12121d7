"""Schemathesis over the hub's whole OpenAPI document: whatever a client sends, the hub never answers 5xx.

Requests go over real HTTP to a real hub (SQLite and PostgreSQL). Half of them are signed by an enrolled
device, and staff requests carry the staff token half of the time, so the fuzzer reaches past the door into
each endpoint's checks instead of stopping at 401.
"""

from __future__ import annotations

import itertools
import os
import uuid
from urllib.parse import unquote, urlsplit

import pytest
import requests
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, settings

from sync.hub.app import create_app
from sync.hub.service import Hub, make_hub_engine
from sync.protocol import b64, signing_text
from sync.transport.http import HubClient
from tests.sync.conftest import ADMIN_TOKEN, PG, ServerThread, ensure_postgres

schema = schemathesis.openapi.from_dict(create_app(Hub(make_hub_engine("sqlite://"))).openapi())
# Per operation: about 700 requests in all, in well under a minute per database; SPOKE_FUZZ_EXAMPLES for a long run.
EXAMPLES = int(os.environ.get("SPOKE_FUZZ_EXAMPLES", "60"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live_hub(request, tmp_path_factory):
    import psycopg

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'hub.sqlite'}"
        name = None
    else:
        ensure_postgres()
        name = f"spoke_fuzz_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(**PG, autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    hub = Hub(make_hub_engine(url), media_dir=tmp_path_factory.mktemp("fuzz-media"))
    hub.create_schema()
    server = ServerThread(create_app(hub, ADMIN_TOKEN)).start()
    facility = hub.create_facility("HWC Rampur", "HWC-FUZZ")
    key = Ed25519PrivateKey.generate()
    device = HubClient(server.url).enroll(hub.enroll_code(facility), key, str(uuid.uuid4()), "fuzzer").device_id
    yield server, device, key, itertools.count(1)
    server.stop()
    hub.engine.dispose()
    if name:
        with psycopg.connect(**PG, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_hub_fail(case, live_hub):
    server, device, key, counter = live_hub
    kwargs = case.as_transport_kwargs(base_url=server.url)
    request = requests.Request(**{k: kwargs[k] for k in ("method", "url", "headers", "params", "json", "data", "cookies")
                                  if k in kwargs}).prepare()
    body = request.body.encode() if isinstance(request.body, str) else (request.body or b"")
    number = next(counter)
    if number % 2:   # signed by the enrolled device, over what is really sent
        parts = urlsplit(request.url)   # the path as the hub sees it: percent-decoded
        path = unquote(parts.path) + (f"?{parts.query}" if parts.query else "")
        request.headers.update({"Spoke-Device": device, "Spoke-Counter": str(number),
                                "Spoke-Signature": b64(key.sign(signing_text(request.method, path, number, body)))})
    if number % 4 < 2:
        request.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    with requests.Session() as session:
        response = session.send(request, timeout=30)
    assert response.status_code < 500, (case.method, case.formatted_path, response.status_code, response.text[:300])
    if response.status_code >= 400:
        error = response.json()
        assert set(error) == {"code", "message"} and error["message"], response.text[:300]
