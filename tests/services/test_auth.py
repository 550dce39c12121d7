"""Facility set-up, users, Argon2id, lock-out after five wrong passwords."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from spoke_client.db.models import AuditRow, ChangeRow, UserRow
from spoke_client.domain.errors import AccountLocked, AuthenticationFailed, NotAllowed, ValidationFailed
from spoke_client.domain.model import Role
from spoke_client.services.auth import MAX_FAILED_LOGINS, FacilityForm
from tests.conftest import ADMIN_PASSWORD


def test_needs_setup_until_the_first_administrator_exists(services):
    assert services.auth.needs_setup()
    services.auth.setup(FacilityForm("HWC Rampur", "HWC-1", "Sitapur", "UP"), "admin", "A Admin", ADMIN_PASSWORD)
    assert not services.auth.needs_setup()
    assert services.auth.facility().hwc_id == "HWC-1"
    with pytest.raises(NotAllowed):
        services.auth.setup(FacilityForm("Other HWC", "HWC-2", "Sitapur", "UP"), "admin2", "Bina Rao", ADMIN_PASSWORD)


def test_setup_refuses_bad_fields_with_one_problem_per_field(services):
    with pytest.raises(ValidationFailed) as e:
        services.auth.setup(FacilityForm("", "has space", "", ""), "A B", "", "short")
    fields = {p.field for p in e.value.problems}
    assert fields == {"name", "hwc_id", "district", "state", "username", "full_name", "password"}
    assert "8 characters" in e.value.for_field("password")


def test_password_is_stored_as_argon2id_and_never_in_the_change_log(services, admin):
    with services.store.read() as s:
        row = s.scalars(select(UserRow).where(UserRow.username == "admin")).one()
        assert row.password_hash.startswith("$argon2id$")
        payloads = [c.payload for c in s.scalars(select(ChangeRow).where(ChangeRow.entity == "user"))]
    assert payloads and all("password" not in str(p) and "argon2" not in str(p) for p in payloads)


def test_login_succeeds_and_is_audited(services, admin):
    user = services.auth.login("  ADMIN ", ADMIN_PASSWORD)
    assert user.id == admin.id and user.role == Role.ADMIN
    with services.store.read() as s:
        assert s.scalars(select(AuditRow.action).where(AuditRow.user_id == admin.id, AuditRow.action == "login")).first()


def test_five_wrong_passwords_lock_the_account_even_for_the_right_password(services, admin):
    for i in range(MAX_FAILED_LOGINS - 1):
        with pytest.raises(AuthenticationFailed, match=f"{MAX_FAILED_LOGINS - 1 - i} tries left"):
            services.auth.login("admin", "wrong")
    with pytest.raises(AccountLocked, match="15 minutes"):
        services.auth.login("admin", "wrong")
    with pytest.raises(AccountLocked):
        services.auth.login("admin", ADMIN_PASSWORD)


def test_lock_expires(services, admin):
    for _ in range(MAX_FAILED_LOGINS):
        with pytest.raises((AuthenticationFailed, AccountLocked)):
            services.auth.login("admin", "wrong")
    real_clock = services.store.clock
    services.store.clock = lambda: real_clock() + timedelta(minutes=16)
    assert services.auth.login("admin", ADMIN_PASSWORD).id == admin.id


def test_unknown_user_and_wrong_password_read_the_same(services, admin):
    with pytest.raises(AuthenticationFailed) as a:
        services.auth.login("nobody", "x" * 10)
    assert "not right" in a.value.message


def test_only_admins_manage_users(services, admin, paramedic):
    assert [u.username for u in services.auth.list_users(admin)] == ["admin", "sunita"]
    with pytest.raises(NotAllowed):
        services.auth.add_user(paramedic, "x123", "X", Role.PARAMEDIC, "password1")
    with pytest.raises(ValidationFailed, match="taken"):
        services.auth.add_user(admin, "sunita", "Sunita Two", Role.PARAMEDIC, "password1")


def test_disabled_user_cannot_sign_in(services, admin, paramedic):
    services.auth.set_active(admin, paramedic.id, False)
    with pytest.raises(AuthenticationFailed):
        services.auth.login("sunita", "sunita-pass-1")
    with pytest.raises(NotAllowed):
        services.auth.set_active(admin, admin.id, False)


def test_idle_lock_is_configurable_by_an_administrator(services, admin, paramedic):
    assert services.auth.idle_lock_minutes() == 10
    services.auth.set_idle_lock_minutes(admin, 3)
    assert services.auth.idle_lock_minutes() == 3
    with pytest.raises(NotAllowed):
        services.auth.set_idle_lock_minutes(paramedic, 30)
    with pytest.raises(ValidationFailed, match="1 to 120"):
        services.auth.set_idle_lock_minutes(admin, 0)
