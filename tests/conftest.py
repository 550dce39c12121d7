"""Shared fixtures: a real SQLite store in a temporary data folder, a set-up facility and users."""

from __future__ import annotations

import logging
import os
from datetime import date
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from spoke_client.domain.model import Role, User  # noqa: E402
from spoke_client.paths import DataPaths  # noqa: E402
from spoke_client.services.auth import FacilityForm  # noqa: E402
from spoke_client.services.runtime import Services, open_services  # noqa: E402

ADMIN_PASSWORD = "correct horse"

# --- no patient data in any log --------------------------------------------------------------------------------
# The whole suite logs through the app's own set-up into artifacts/logs/suite.log; when it ends, that file and every
# spoke.log and hub.log the tests' programs wrote are searched for the names, phones, ABHA numbers and addresses
# the tests and the demo seed use. One found fails the run.
SUITE_LOG = Path(__file__).resolve().parent.parent / "artifacts" / "logs"


def _suite_log_name() -> str:
    return f"suite-{os.getpid()}.log"   # one per run: two runs at once on one checkout never share a file


def pytest_configure(config):
    from sync.logsetup import configure

    for old in SUITE_LOG.glob("suite-*.log*"):
        try:
            if not (Path("/proc") / old.name.split("-")[1].split(".")[0]).exists():
                old.unlink()            # a finished run's
        except (IndexError, OSError):
            pass
    configure(SUITE_LOG, _suite_log_name(), level=logging.INFO)


def pytest_sessionfinish(session, exitstatus):
    from tests.logcheck import find_patient_data

    factory = getattr(session.config, "_tmp_path_factory", None)
    roots = [SUITE_LOG / _suite_log_name()] + ([factory.getbasetemp()] if factory is not None else [])
    found = find_patient_data(roots)
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("Patient data found in logs (a log line must never hold it):", red=True)
            for where, line in found[:20]:
                reporter.write_line(f"  {where}: {line[:200]}")
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def light_key_slots(monkeypatch):
    """Key slots made in this process derive with a light Argon2id (1 pass, 8 MiB) instead of the product's 64 MiB:
    every set-up and new user makes one, and the suite makes thousands. The parameters are kept in each slot, so
    the code that opens them is the same; tests/services/test_keyslots.py and the programs the tests start use the
    product's."""
    from spoke_client.services import keyslots

    monkeypatch.setattr(keyslots, "ARGON2", {"time_cost": 1, "memory_cost": 8 * 1024, "parallelism": 1})


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
