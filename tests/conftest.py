"""Shared fixtures: a real SQLite store in a temporary data folder, a set-up facility and users."""

from __future__ import annotations

import logging
import os
from datetime import date
from pathlib import Path

import pytest
from argon2 import PasswordHasher

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from spoke_client.domain.model import Role, User  # noqa: E402
from spoke_client.paths import DataPaths  # noqa: E402
from spoke_client.services.auth import FacilityForm  # noqa: E402
from spoke_client.services.runtime import Services, open_services  # noqa: E402

ADMIN_PASSWORD = "correct horse"
LIGHT_ARGON2 = {"time_cost": 1, "memory_cost": 8 * 1024, "parallelism": 1}

# --- no patient data in any log --------------------------------------------------------------------------------
# The whole suite logs through the app's own set-up into artifacts/logs/suite.log; when it ends, that file and every
# spoke.log and hub.log the tests' programs wrote are searched for the names, phones, ABHA numbers and addresses
# the tests and the demo seed use. One found fails the run.
SUITE_LOG = Path(__file__).resolve().parent.parent / "artifacts" / "logs"


def _suite_log_name(config) -> str:
    """One per run, so two runs at once on one checkout never share a file. Under pytest-xdist each worker writes its
    own, named after the run's main process (the worker's parent), which checks them all when the run ends."""
    worker = getattr(config, "workerinput", None)     # set in xdist's workers only (not inherited, as its env is)
    return f"suite-{os.getppid()}-{worker['workerid']}.log" if worker else f"suite-{os.getpid()}.log"


def pytest_configure(config):
    from sync.logsetup import configure

    for old in SUITE_LOG.glob("suite-*.log*"):
        try:
            if not (Path("/proc") / old.name.split("-")[1].split(".")[0]).exists():
                old.unlink()            # a finished run's
        except (IndexError, OSError):
            pass
    configure(SUITE_LOG, _suite_log_name(config), level=logging.INFO)


def pytest_sessionfinish(session, exitstatus):
    from tests.logcheck import find_patient_data

    if hasattr(session.config, "workerinput"):
        return                          # the main process checks every worker's log and temporary folder
    factory = getattr(session.config, "_tmp_path_factory", None)
    logs = [SUITE_LOG / _suite_log_name(session.config), *SUITE_LOG.glob(f"suite-{os.getpid()}-*.log*")]
    roots = logs + ([factory.getbasetemp()] if factory is not None else [])
    found = find_patient_data(roots)
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("Patient data found in logs (a log line must never hold it):", red=True)
            for where, line in found[:20]:
                reporter.write_line(f"  {where}: {line[:200]}")
        session.exitstatus = 1


# --- tests that measure time run alone ------------------------------------------------------------------------
# When the suite runs on pytest-xdist's workers (SPOKE_TEST_WORKERS=2 ./dev.sh test), a test marked `solo`
# measures time on this machine, so it takes the run's lock alone while every other test shares it: the others wait between
# tests until it is done. A turnstile ahead of the lock keeps a waiting solo test from being passed by a stream of
# shared ones.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    run = getattr(item.config, "workerinput", {}).get("testrunuid")
    if not run:
        yield
        return
    import fcntl

    folder = item.config._tmp_path_factory.getbasetemp().parent   # the run's folder, above each worker's
    solo = item.get_closest_marker("solo") is not None
    with open(folder / f"spoke-suite-{run}.turnstile", "a") as turnstile, \
            open(folder / f"spoke-suite-{run}.lock", "a") as lock:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        fcntl.flock(lock, fcntl.LOCK_EX if solo else fcntl.LOCK_SH)
        fcntl.flock(turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def light_key_slots(monkeypatch):
    """Key slots made in this process derive with a light Argon2id (1 pass, 8 MiB) instead of the product's 64 MiB:
    every set-up and new user makes one, and the suite makes thousands. The parameters are kept in each slot, so
    the code that opens them is the same; tests/services/test_keyslots.py and the programs the tests start use the
    product's."""
    from spoke_client.services import keyslots

    monkeypatch.setattr(keyslots, "ARGON2", LIGHT_ARGON2)


class LightPasswordHasher(PasswordHasher):
    """The users' password hashes made in this process: Argon2id with the light parameters, for the same reason.
    The parameters are in each hash, so verifying is the product's code; a program the tests start (the client's
    and the hub's commands) meets such a hash, verifies it and re-hashes it with the product's parameters, as it would
    after an upgrade of them. A subclass, so a test that wraps `PasswordHasher.verify` still sees every check."""

    def __init__(self) -> None:
        super().__init__(**LIGHT_ARGON2)


_LIGHT_HASHER = LightPasswordHasher()
_LIGHT_DUMMY_HASH = _LIGHT_HASHER.hash("not a password anyone has")   # once per run, not per test


@pytest.fixture(autouse=True)
def light_password_hashes(monkeypatch):
    from spoke_client.services import auth
    from sync.hub import staff

    monkeypatch.setattr(auth, "PasswordHasher", LightPasswordHasher)
    monkeypatch.setattr(staff, "_hasher", _LIGHT_HASHER)
    monkeypatch.setattr(staff, "_DUMMY_HASH", _LIGHT_DUMMY_HASH)


@pytest.fixture
def paths(tmp_path) -> DataPaths:
    return DataPaths(tmp_path / "data")


@pytest.fixture
def services(paths) -> Services:
    s = open_services(paths)
    yield s
    s.close()


@pytest.fixture
def admin(services) -> User:
    _facility, user = services.auth.setup(FacilityForm("HWC Rampur", "HWC-UP-0042", "Sitapur", "Uttar Pradesh"),
                                          "admin", "Asha Admin", ADMIN_PASSWORD)
    return user


@pytest.fixture
def paramedic(services, admin) -> User:
    return services.auth.add_user(admin, "sunita", "Sunita Yadav", Role.PARAMEDIC, "sunita-pass-1")


@pytest.fixture
def today() -> date:
    return date.today()
