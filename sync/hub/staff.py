"""The hub's people: hubs, their administrators and doctors, sign-in with Argon2id and lock-out, and sessions
that expire; every piece of it in the database, so all workers of `spoke-hub serve --workers N` agree."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sync.hub.errors import HubError
from sync.hub.models import HubAudit, HubFacility, HubFacilityHub, HubOrg, HubSession, HubStaff

FAILURES_BEFORE_LOCK = 5
LOCK_FOR = timedelta(minutes=15)
SESSION_IDLE = timedelta(minutes=60)     # a console left alone for an hour asks for the password again
SESSION_LONGEST = timedelta(hours=12)    # and after a long shift in any case
MIN_PASSWORD = 10
ROLES = ("admin", "doctor")
SPECIALITIES = ("General medicine", "Paediatrics", "Obstetrics and gynaecology", "Dermatology", "Cardiology",
                "Orthopaedics", "ENT", "Ophthalmology", "Psychiatry")

_hasher = PasswordHasher()   # argon2-cffi's default is Argon2id
_DUMMY_HASH = _hasher.hash("not a password anyone has")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(dt: datetime | None) -> datetime | None:
    return dt if dt is None or dt.tzinfo else dt.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Staff:
    id: str
    hub_id: str
    username: str
    full_name: str
    role: str
    qualification: str
    registration_number: str
    council: str
    specialities: tuple[str, ...]
    on_duty: bool
    active: bool = True

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class SignedIn:
    staff: Staff
    token: str        # the session's secret: in the cookie (or an API client's Authorization header), never stored
    csrf: str         # to be sent back with every form


def staff_of(row: HubStaff) -> Staff:
    return Staff(row.id, row.hub_id, row.username, row.full_name, row.role, row.qualification, row.registration_number,
                 row.council, tuple(row.specialities or ()), row.on_duty, row.active)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def audit(s: Session, staff_id: str | None, action: str, entity: str = "", entity_id: str = "", detail: str = "") -> None:
    s.add(HubAudit(at=utcnow(), staff_id=staff_id, action=action, entity=entity, entity_id=entity_id, detail=detail[:2000]))


class HubStaffing:
    """Mixed into sync.hub.service.Hub (needs .session)."""

    # --- hubs and facilities --------------------------------------------------------------------------
    def create_hub(self, name: str, kind: str = "") -> str:
        name = " ".join(name.split())
        if not 3 <= len(name) <= 200:
            raise HubError(400, "bad_name", "A hub's name has 3 to 200 letters.")
        with self.session.begin() as s:
            existing = s.scalars(select(HubOrg).where(HubOrg.name == name)).first()
            if existing is not None:
                return existing.id
            hub_id = str(uuid.uuid4())
            s.add(HubOrg(id=hub_id, name=name, kind=kind.strip()[:100], created_at=utcnow()))
            audit(s, None, "create_hub", "hub", hub_id, name)
            return hub_id

    def hubs(self) -> list[tuple[str, str]]:
        with self.session() as s:
            return [(h.id, h.name) for h in s.scalars(select(HubOrg).order_by(HubOrg.name))]

    def assign_facility(self, actor: Staff | None, facility_id: str, hub_id: str) -> None:
        """The hub that serves a facility: its cases are in that hub's queue. (`actor` None: the CLI.)"""
        with self.session.begin() as s:
            if actor is not None:
                self._require_admin(s, actor, hub_id)
            if s.get(HubFacility, facility_id) is None:
                raise HubError(404, "no_facility", "No such facility on this hub.")
            if s.get(HubOrg, hub_id) is None:
                raise HubError(404, "no_hub", "No such hub.")
            row = s.get(HubFacilityHub, facility_id)
            if row is None:
                s.add(HubFacilityHub(facility_id=facility_id, hub_id=hub_id, assigned_at=utcnow()))
            else:
                row.hub_id, row.assigned_at = hub_id, utcnow()
            audit(s, actor.id if actor else None, "assign_facility", "facility", facility_id, hub_id)

    def facilities_of(self, hub_id: str) -> list[tuple[str, str, str]]:
        """(id, name, HWC id) of the facilities a hub serves."""
        with self.session() as s:
            rows = s.execute(select(HubFacility.id, HubFacility.name, HubFacility.hwc_id)
                             .join(HubFacilityHub, HubFacilityHub.facility_id == HubFacility.id)
                             .where(HubFacilityHub.hub_id == hub_id).order_by(HubFacility.name)).all()
            return [tuple(r) for r in rows]

    # --- people -------------------------------------------------------------------------------------------
    def add_staff(self, actor: Staff | None, hub_id: str, username: str, full_name: str, password: str, role: str, *,
                  qualification: str = "", registration_number: str = "", council: str = "",
                  specialities: tuple[str, ...] = ()) -> Staff:
        """A hub administrator adds people (the first administrator comes from `spoke-hub create-admin`)."""
        username = username.strip().lower()
        problems = []
        if not re.fullmatch(r"[a-z0-9._-]{3,64}", username):
            problems.append("username: 3 to 64 letters, digits, '.', '_' or '-'")
        if len(" ".join(full_name.split())) < 3:
            problems.append("full_name: the person's full name")
        if len(password) < MIN_PASSWORD:
            problems.append(f"password: at least {MIN_PASSWORD} characters")
        if role not in ROLES:
            problems.append("role: admin or doctor")
        if role == "doctor" and not (qualification.strip() and registration_number.strip()):
            problems.append("registration_number: a doctor needs a qualification and a medical registration number")
        unknown = [x for x in specialities if x not in SPECIALITIES]
        if unknown:
            problems.append(f"specialities: not one of the hub's specialities: {', '.join(unknown)}")
        if problems:
            raise HubError(400, "invalid", "; ".join(problems))
        with self.session.begin() as s:
            if actor is not None:
                self._require_admin(s, actor, hub_id)
            if s.get(HubOrg, hub_id) is None:
                raise HubError(404, "no_hub", "No such hub.")
            if s.scalars(select(HubStaff).where(HubStaff.username == username)).first() is not None:
                raise HubError(409, "taken", "username: this user name is taken")
            row = HubStaff(id=str(uuid.uuid4()), hub_id=hub_id, username=username, full_name=" ".join(full_name.split()),
                           role=role, qualification=qualification.strip(), registration_number=registration_number.strip(),
                           council=council.strip(), specialities=list(specialities), password_hash=_hasher.hash(password),
                           failed_logins=0, locked_until=None, active=True, on_duty=False, created_at=utcnow())
            s.add(row)
            audit(s, actor.id if actor else None, "add_staff", "staff", row.id, f"{username} ({role})")
            return staff_of(row)

    def staff(self, hub_id: str) -> list[Staff]:
        with self.session() as s:
            return [staff_of(r) for r in s.scalars(select(HubStaff).where(HubStaff.hub_id == hub_id)
                                                  .order_by(HubStaff.role, HubStaff.full_name))]

    def set_on_duty(self, actor: Staff, on_duty: bool) -> Staff:
        with self.session.begin() as s:
            row = s.get(HubStaff, actor.id)
            row.on_duty = on_duty
            audit(s, actor.id, "on_duty" if on_duty else "off_duty", "staff", actor.id)
            return staff_of(row)

    @staticmethod
    def _require_admin(s: Session, actor: Staff, hub_id: str) -> None:
        if not actor.is_admin or actor.hub_id != hub_id:
            raise HubError(403, "not_admin", "Only an administrator of this hub may do this.")

    # --- signing in ---------------------------------------------------------------------------------------
    def sign_in(self, username: str, password: str) -> SignedIn:
        """A session for the right password; five wrong ones lock the account for 15 minutes (committed even
        though the sign-in fails). The same answer for an unknown user as for a wrong password."""
        username = username.strip().lower()
        now = utcnow()
        with self.session.begin() as s:
            row = s.scalars(select(HubStaff).where(HubStaff.username == username)).first()
            if row is None or not row.active:
                _check(_DUMMY_HASH, password)   # the same time as for a real account
                refusal = HubError(401, "bad_login", "The user name or the password is not right.")
            elif row.locked_until is not None and aware(row.locked_until) > now:
                refusal = HubError(423, "locked", "This account is locked after too many wrong passwords; try again "
                                                  "in a quarter of an hour.")
            elif not _check(row.password_hash, password):
                row.failed_logins += 1
                if row.failed_logins >= FAILURES_BEFORE_LOCK:
                    row.locked_until, row.failed_logins = now + LOCK_FOR, 0
                audit(s, row.id, "sign_in_failed", "staff", row.id)
                refusal = HubError(401, "bad_login", "The user name or the password is not right.")
            else:
                refusal = None
                row.failed_logins, row.locked_until = 0, None
                if _hasher.check_needs_rehash(row.password_hash):
                    row.password_hash = _hasher.hash(password)
                token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
                s.add(HubSession(token_hash=_hash_token(token), staff_id=row.id, csrf=csrf, created_at=now,
                                 last_seen_at=now, expires_at=now + SESSION_LONGEST))
                s.execute(delete(HubSession).where(HubSession.expires_at < now - timedelta(days=1)))
                audit(s, row.id, "sign_in", "staff", row.id)
                result = SignedIn(staff_of(row), token, csrf)
        if refusal is not None:
            raise refusal
        return result

    def session_of(self, token: str | None) -> tuple[Staff, str]:
        """The person and the CSRF token of a live session, or 401; an idle or expired session ends."""
        if not token or len(token) > 200:
            raise HubError(401, "not_signed_in", "Sign in first.")
        now = utcnow()
        with self.session.begin() as s:
            row = s.get(HubSession, _hash_token(token), with_for_update=True)
            if row is None:
                raise HubError(401, "not_signed_in", "Sign in first.")
            if aware(row.expires_at) <= now or aware(row.last_seen_at) + SESSION_IDLE <= now:
                s.delete(row)
                ended = True
            else:
                ended = False
                if now - aware(row.last_seen_at) > timedelta(minutes=1):   # one write a minute, not one a request
                    row.last_seen_at = now
                person = s.get(HubStaff, row.staff_id)
                if person is None or not person.active:
                    raise HubError(401, "not_signed_in", "Sign in first.")
                result = staff_of(person), row.csrf
        if ended:
            raise HubError(401, "session_ended", "Your session ended; sign in again.")
        return result

    def sign_out(self, token: str | None) -> None:
        if not token:
            return
        with self.session.begin() as s:
            s.execute(delete(HubSession).where(HubSession.token_hash == _hash_token(token)))


def _check(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
