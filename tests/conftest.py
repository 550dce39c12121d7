"""Shared fixtures: a real SQLite store in a temporary data folder, a set-up facility and users."""

from __future__ import annotations

import os
from datetime import date

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from spoke_client.domain.model import Role, User  # noqa: E402
from spoke_client.paths import DataPaths  # noqa: E402
from spoke_client.services.auth import FacilityForm  # noqa: E402
from spoke_client.services.runtime import Services, open_services  # noqa: E402

ADMIN_PASSWORD = "correct horse"


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
