"""Facility set-up, users and roles, Argon2id passwords, lock-out after repeated wrong passwords, and each user's
key slot to the encrypted data (services/vault.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select

from spoke_client.db.models import FacilityRow, UserRow
from spoke_client.domain.errors import (
    AccountLocked,
    AuthenticationFailed,
    FieldProblem,
    NotAllowed,
    NotFound,
    ValidationFailed,
)
from spoke_client.domain.model import Facility, Role, User
from spoke_client.i18n import _
from spoke_client.services.settings import IDLE_LOCK_MINUTES, SettingsService
from spoke_client.services.store import Store, new_id

if TYPE_CHECKING:
    from spoke_client.services.vault import KeyRing

MAX_FAILED_LOGINS = 5
LOCK_DURATION = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 8
_USERNAME = re.compile(r"^[a-z0-9._-]{3,32}$")


@dataclass(frozen=True)
class FacilityForm:
    name: str
    hwc_id: str
    district: str
    state: str


def _facility(row: FacilityRow) -> Facility:
    return Facility(id=row.id, name=row.name, hwc_id=row.hwc_id, district=row.district, state=row.state)


def _user(row: UserRow) -> User:
    return User(id=row.id, username=row.username, full_name=row.full_name, role=Role(row.role), active=row.active)


def _user_payload(row: UserRow) -> User:
    # The change log never carries the password hash off the device (the user payload has no such field).
    return _user(row)


class AuthService:
    def __init__(self, store: Store, hasher: PasswordHasher | None = None, keys: "KeyRing | None" = None) -> None:
        self.store = store
        self.hasher = hasher or PasswordHasher()  # argon2-cffi's default is Argon2id (RFC 9106 low-memory)
        # The encrypted store's key ring: every user who can sign in has a key slot made from their password (set
        # with the password: at set-up, on adding a user, on a new password; removed with a disabled user).
        self.keys = keys

    # --- facility -------------------------------------------------------------------------------
    def needs_setup(self) -> bool:
        with self.store.read() as s:
            return s.scalar(select(func.count()).select_from(UserRow)) == 0

    def facility(self) -> Facility | None:
        with self.store.read() as s:
            row = s.scalars(select(FacilityRow).limit(1)).first()
            return _facility(row) if row else None

    def setup(self, facility: FacilityForm, username: str, full_name: str, password: str) -> tuple[Facility, User]:
        problems = _facility_problems(facility) + _user_problems(username, full_name, password)
        if problems:
            raise ValidationFailed(problems)
        with self.store.write(None) as w:
            if w.session.scalar(select(func.count()).select_from(UserRow)):
                raise NotAllowed(_("This computer is already set up; sign in as its administrator."))
            frow = FacilityRow(
                id=new_id(), name=facility.name.strip(), hwc_id=facility.hwc_id.strip(),
                district=facility.district.strip(), state=facility.state.strip(), created_at=w.now,
            )
            urow = self._new_user_row(w.now, username, full_name, Role.ADMIN, password)
            w.session.add_all([frow, urow])
            w.user_id = urow.id
            w.change("facility", frow.id, 1, _facility(frow))
            w.change("user", urow.id, 1, _user_payload(urow))
            w.audit("setup", "facility", frow.id, frow.name)
            if self.keys is not None:
                # In the set-up's transaction: a set-up that fails to keep the key is not committed.
                self.keys.first_slot(urow.id, urow.username, password, f"{frow.name} ({frow.hwc_id})")
            return _facility(frow), _user(urow)

    def take_recovery_key(self) -> str | None:
        """The recovery key made at set-up (or at the encryption of an older database), once: the screen that shows
        it to the administrator asks for it, and it is forgotten."""
        return self.keys.take_recovery_key() if self.keys is not None else None

    def users_without_key(self) -> list[str]:
        """Active users who cannot open this computer's data yet (their accounts are older than its encryption):
        an administrator sets their password again, or they sign in once while the data is open."""
        if self.keys is None or not self.keys.ready:
            return []
        with self.store.read() as s:
            return [r.username for r in s.scalars(select(UserRow).where(UserRow.active).order_by(UserRow.username))
                    if not self.keys.has_slot(r.id)]

    def recover_admin(self, username: str, new_password: str) -> User:
        """After the recovery key opened the data: a new password for administrator `username` (their slot made
        again), audited."""
        if len(new_password) < MIN_PASSWORD_LENGTH:
            raise ValidationFailed([FieldProblem("password", _password_message())])
        with self.store.write(None) as w:
            row = w.session.scalars(select(UserRow).where(UserRow.username == username.strip().lower())).first()
            if row is None or not row.active or row.role != Role.ADMIN.value:
                raise NotAllowed(_("The recovery key gives a new password to an active administrator only."))
            row.password_hash = self.hasher.hash(new_password)
            row.failed_logins = 0
            row.locked_until = None
            w.user_id = row.id
            w.audit("recovery_key", "user", row.id)
            if self.keys is not None:
                self.keys.set_slot(row.id, row.username, new_password)
            return _user(row)

    # --- sign-in --------------------------------------------------------------------------------
    def login(self, username: str, password: str, proven_user: str | None = None) -> User:
        """`proven_user`: the id of the user whose key slot this password has just opened (vault.Gate), which
        proves it as the stored hash would: that user's hash is not derived a second time (Argon2id, 64 MiB and
        most of a second, once per sign-in is enough). Every other check (active, locked) is made as always."""
        # Failures are committed (counter, lock, audit) and only then raised.
        username = username.strip().lower()
        with self.store.write(None) as w:
            outcome = self._attempt(w, username, password, proven_user)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _attempt(self, w, username: str, password: str, proven_user: str | None = None) -> User | Exception:
        row = w.session.scalars(select(UserRow).where(UserRow.username == username)).first()
        if row is None or not row.active:
            # The same message for unknown and disabled users: do not reveal which names exist.
            w.audit("login_failed", "user", "", username)
            return AuthenticationFailed(_("The user name or password is not right."))
        if row.locked_until is not None and row.locked_until > w.now:
            minutes = int((row.locked_until - w.now).total_seconds() // 60) + 1
            w.audit("login_locked", "user", row.id)
            return AccountLocked(
                _("Too many wrong passwords: this account is locked for {minutes} more minutes.").format(minutes=minutes)
            )
        if (proven_user is not None and proven_user == row.id) or self._verify(row, password):
            row.failed_logins = 0
            row.locked_until = None
            w.user_id = row.id
            w.audit("login", "user", row.id)
            if self.keys is not None and self.keys.ready and not self.keys.has_slot(row.id):
                # An account older than the encryption signing in while the data is open: its slot, now.
                self.keys.set_slot(row.id, row.username, password)
                w.audit("key_slot", "user", row.id)
            return _user(row)
        row.failed_logins += 1
        w.audit("login_failed", "user", row.id)
        if row.failed_logins >= MAX_FAILED_LOGINS:
            row.failed_logins = 0
            row.locked_until = w.now + LOCK_DURATION
            return AccountLocked(
                _("Too many wrong passwords: this account is locked for {minutes} minutes.").format(
                    minutes=int(LOCK_DURATION.total_seconds() // 60)
                )
            )
        left = MAX_FAILED_LOGINS - row.failed_logins
        return AuthenticationFailed(
            _("The user name or password is not right. {left} tries left before the account is locked.").format(left=left)
        )

    def unlock(self, user: User, password: str) -> User:
        """Re-enter the password after the idle lock; counts toward the same lock-out."""
        return self.login(user.username, password)

    def _verify(self, row: UserRow, password: str) -> bool:
        try:
            self.hasher.verify(row.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        if self.hasher.check_needs_rehash(row.password_hash):
            row.password_hash = self.hasher.hash(password)
        return True

    # --- idle lock ------------------------------------------------------------------------------
    def idle_lock_minutes(self) -> int:
        return SettingsService(self.store).get(IDLE_LOCK_MINUTES)

    def set_idle_lock_minutes(self, actor: User, minutes: int) -> None:
        SettingsService(self.store).set(actor, IDLE_LOCK_MINUTES, minutes)

    # --- users ----------------------------------------------------------------------------------
    def list_users(self, actor: User) -> list[User]:
        _require_admin(actor)
        with self.store.read() as s:
            return [_user(r) for r in s.scalars(select(UserRow).order_by(UserRow.username))]

    def add_user(self, actor: User, username: str, full_name: str, role: Role, password: str) -> User:
        _require_admin(actor)
        problems = _user_problems(username, full_name, password)
        if problems:
            raise ValidationFailed(problems)
        with self.store.write(actor.id) as w:
            if w.session.scalars(select(UserRow).where(UserRow.username == username.strip().lower())).first():
                raise ValidationFailed([FieldProblem("username", _("This user name is taken; choose another."))])
            row = self._new_user_row(w.now, username, full_name, role, password)
            w.session.add(row)
            w.change("user", row.id, 1, _user_payload(row))
            w.audit("create", "user", row.id, f"{row.username} ({role.value})")
            if self.keys is not None:
                self.keys.set_slot(row.id, row.username, password)
            return _user(row)

    def set_active(self, actor: User, user_id: str, active: bool) -> User:
        _require_admin(actor)
        if user_id == actor.id and not active:
            raise NotAllowed(_("You cannot disable your own account."))
        with self.store.write(actor.id) as w:
            row = _get_user(w.session, user_id)
            row.active = active
            row.version += 1
            w.change("user", row.id, row.version, _user_payload(row))
            w.audit("enable" if active else "disable", "user", row.id)
            if self.keys is not None and not active:
                self.keys.remove_slot(row.id)   # enabled again, they get a slot with the password an admin sets
            return _user(row)

    def set_password(self, actor: User, user_id: str, password: str) -> None:
        if actor.id != user_id:
            _require_admin(actor)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValidationFailed([FieldProblem("password", _password_message())])
        with self.store.write(actor.id) as w:
            row = _get_user(w.session, user_id)
            row.password_hash = self.hasher.hash(password)
            row.failed_logins = 0
            row.locked_until = None
            w.audit("password", "user", row.id)
            if self.keys is not None and row.active:
                self.keys.set_slot(row.id, row.username, password)

    def _new_user_row(self, now, username: str, full_name: str, role: Role, password: str) -> UserRow:
        return UserRow(
            id=new_id(), username=username.strip().lower(), full_name=full_name.strip(), role=role.value,
            password_hash=self.hasher.hash(password), failed_logins=0, locked_until=None, active=True,
            created_at=now, version=1,
        )


def _get_user(session, user_id: str) -> UserRow:
    row = session.get(UserRow, user_id)
    if row is None:
        raise NotFound(_("No such user."))
    return row


def _require_admin(actor: User) -> None:
    if actor.role != Role.ADMIN:
        raise NotAllowed(_("Only an administrator can manage users."))


def _password_message() -> str:
    return _("A password needs at least {n} characters.").format(n=MIN_PASSWORD_LENGTH)


def _user_problems(username: str, full_name: str, password: str) -> list[FieldProblem]:
    problems = []
    if not _USERNAME.match(username.strip().lower()):
        problems.append(FieldProblem("username", _("A user name has 3 to 32 letters, digits, dots, dashes or underscores, no spaces.")))
    if len(full_name.strip()) < 2:
        problems.append(FieldProblem("full_name", _("Enter the person's full name.")))
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(FieldProblem("password", _password_message()))
    return problems


def _facility_problems(f: FacilityForm) -> list[FieldProblem]:
    problems = []
    if len(f.name.strip()) < 3:
        problems.append(FieldProblem("name", _("Enter the facility's name (at least 3 letters).")))
    if not re.fullmatch(r"[A-Za-z0-9/_-]{2,50}", f.hwc_id.strip()):
        problems.append(FieldProblem("hwc_id", _("Enter the HWC identifier: letters, digits, '-', '/' or '_', no spaces.")))
    if len(f.district.strip()) < 2:
        problems.append(FieldProblem("district", _("Enter the district.")))
    if len(f.state.strip()) < 2:
        problems.append(FieldProblem("state", _("Enter the state.")))
    return problems
