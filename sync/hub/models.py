"""The hub's tables (SQLAlchemy 2; SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class HubBase(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON()}


class HubFacility(HubBase):
    __tablename__ = "hub_facility"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    hwc_id: Mapped[str] = mapped_column(String(50), unique=True)
    created_at: Mapped[datetime]


class HubDevice(HubBase):
    __tablename__ = "hub_device"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    facility_id: Mapped[str] = mapped_column(ForeignKey("hub_facility.id"))
    name: Mapped[str] = mapped_column(String(100))
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    last_counter: Mapped[int] = mapped_column(BigInteger, default=0)
    # Which of the numbers just below last_counter were also seen (bit i: last_counter - 1 - i): two requests of a
    # device may arrive out of order, and each is still taken once (sync.hub.auth).
    seen_below: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    enrolled_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str] = mapped_column(Text, default="")
    # Its X25519 key (base64), for the return bundles sealed for it (registered once, after enrolment).
    box_key: Mapped[str | None] = mapped_column(String(64))
    # Its pull cursor as it last told the hub, in a USB bundle or by asking for a page of a network pull: a
    # return bundle carries what comes after.
    bundle_cursor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The number of the last return bundle made for it: the next is above it even if the hub's clock went back
    # (the PC refuses a return bundle numbered at or below one it imported, as a replay).
    return_sequence: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class HubEnrollCode(HubBase):
    __tablename__ = "hub_enroll_code"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    facility_id: Mapped[str] = mapped_column(ForeignKey("hub_facility.id"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[str | None] = mapped_column(String(36))


class HubChangeRow(HubBase):
    """Every change the hub accepted or made, in the hub's order: seq is what spokes pull after."""

    __tablename__ = "hub_change"
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    change_id: Mapped[str] = mapped_column(String(36), unique=True)
    facility_id: Mapped[str] = mapped_column(ForeignKey("hub_facility.id"))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(10))
    hlc: Mapped[str] = mapped_column(String(90))
    device_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime]

    __table_args__ = (Index("ix_hub_change_facility_seq", "facility_id", "seq"),)


class HubRecord(HubBase):
    """The current state of each record, by last-writer-wins on the hybrid logical clock."""

    __tablename__ = "hub_record"
    entity: Mapped[str] = mapped_column(String(40), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    facility_id: Mapped[str] = mapped_column(ForeignKey("hub_facility.id"))
    version: Mapped[int] = mapped_column(Integer)
    hlc: Mapped[str] = mapped_column(String(90))
    deleted: Mapped[bool] = mapped_column(default=False)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The case a record belongs to (vitals, consent, attachments, questions, prescriptions), for the case page.
    parent_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_hub_record_facility", "facility_id"), Index("ix_hub_record_parent", "parent_id", "entity"))


class HubBlob(HubBase):
    """A file the hub holds in full, by its SHA-256 (the bytes are in the media folder, not the database)."""

    __tablename__ = "hub_blob"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    stored_at: Mapped[datetime]


class HubMediaUpload(HubBase):
    """A facility's upload of one file: how many bytes the hub has confirmed, and when it was complete.
    Per facility, so that a device can neither read nor learn of another facility's files by their hash."""

    __tablename__ = "hub_media_upload"
    facility_id: Mapped[str] = mapped_column(ForeignKey("hub_facility.id"), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    completed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class HubThrottle(HubBase):
    """Failed attempts (wrong enrolment codes, bad signatures) per key in the current window: shared by every
    worker, so a guesser is slowed down whichever worker it reaches."""

    __tablename__ = "hub_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime]
    failures: Mapped[int] = mapped_column(Integer, default=0)


# --- the hub's organisation: doctors, their sessions, what they did -------------------------------------------
class HubOrg(HubBase):
    """A hub: a district hospital or a medical college, serving a set of facilities (spokes)."""

    __tablename__ = "hub_org"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime]


class HubFacilityHub(HubBase):
    """Which hub serves a facility (a facility is served by one hub at a time)."""

    __tablename__ = "hub_facility_hub"
    facility_id: Mapped[str] = mapped_column(ForeignKey("hub_facility.id"), primary_key=True)
    hub_id: Mapped[str] = mapped_column(ForeignKey("hub_org.id"))
    assigned_at: Mapped[datetime]

    __table_args__ = (Index("ix_facility_hub", "hub_id"),)


class HubStaff(HubBase):
    """A person who signs in to a hub's console: an administrator, or a doctor (name, qualification,
    registration number and council, specialities: what the prescription prints)."""

    __tablename__ = "hub_staff"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    hub_id: Mapped[str] = mapped_column(ForeignKey("hub_org.id"))
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))            # admin | doctor
    qualification: Mapped[str] = mapped_column(String(200), default="")
    registration_number: Mapped[str] = mapped_column(String(60), default="")
    council: Mapped[str] = mapped_column(String(200), default="")
    specialities: Mapped[list[str]] = mapped_column(JSON, default=list)
    password_hash: Mapped[str] = mapped_column(String(200))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)
    on_duty: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class HubSession(HubBase):
    """A signed-in console or API session: the token's hash (the token itself is only in the cookie), its CSRF
    token, and when it ends (idle or absolute, whichever comes first). In the database: every worker knows it."""

    __tablename__ = "hub_session"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("hub_staff.id"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class HubAudit(HubBase):
    """Who did or saw what at the hub (every view of a case by a doctor): appended, never changed."""

    __tablename__ = "hub_audit"
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    staff_id: Mapped[str | None] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40), default="")
    entity_id: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_hub_audit_entity", "entity", "entity_id"),)


class HubSigningKey(HubBase):
    """The hub's Ed25519 key that signs prescriptions (spokes learn the public half at enrolment)."""

    __tablename__ = "hub_signing_key"
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    public_b64: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]


class HubCase(HubBase):
    """The queue's view of a case, kept in step with the case and patient records as they are written: what the
    queue page sorts and filters by, without reading every payload."""

    __tablename__ = "hub_case"
    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    facility_id: Mapped[str] = mapped_column(ForeignKey("hub_facility.id"))
    patient_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    speciality: Mapped[str] = mapped_column(String(60), default="")
    complaints: Mapped[str] = mapped_column(Text, default="")
    patient_sex: Mapped[str] = mapped_column(String(10), default="")
    patient_birth: Mapped[str] = mapped_column(String(10), default="")   # ISO date; "" until the patient arrives
    queued_at: Mapped[datetime | None]
    taken_by: Mapped[str | None] = mapped_column(String(36))
    taken_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    __table_args__ = (Index("ix_hub_case_queue", "status", "priority", "queued_at"),
                      Index("ix_hub_case_facility", "facility_id", "status"),
                      Index("ix_hub_case_patient", "patient_id"))


class HubBoxKey(HubBase):
    """The hub's X25519 keys: spokes seal their USB bundles for the newest not retired (they learn its public half
    online, and again after a rotation); the older ones still open the bundles sealed for them until retired, when
    the private half is destroyed (emptied) and such a bundle is refused with the day."""

    __tablename__ = "hub_box_key"
    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    public_b64: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]


class HubBundle(HubBase):
    """A USB bundle imported (every part of it): a second import changes nothing, and one older than the last
    imported from the same device is a replay."""

    __tablename__ = "hub_bundle"
    bundle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("hub_device.id"), index=True)
    sequence: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    imported_at: Mapped[datetime]
    changes: Mapped[int] = mapped_column(Integer)
    files: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    duplicates: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)


class HubBundleUpload(HubBase):
    """One part of a bundle arriving by HTTP from a relay PC (or the console), resumable at the last confirmed
    byte; when every part is here and checked, the bundle is imported and the outcome kept for the relay to read."""

    __tablename__ = "hub_bundle_upload"
    bundle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    parts: Mapped[int] = mapped_column(Integer)
    device_id: Mapped[str] = mapped_column(String(36))
    size: Mapped[int] = mapped_column(BigInteger)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    completed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(Text, default="", server_default="")


class HubCall(HubBase):
    """A call from a spoke to the doctors of the hub on a case: ringing, answered by one doctor, then ended (or
    missed, or cancelled by the spoke). Each end's last sign of life is kept here, so whichever worker serves an
    end sees that the other went quiet; the ended call becomes a `call` record on the case."""

    __tablename__ = "hub_call"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64))
    facility_id: Mapped[str] = mapped_column(ForeignKey("hub_facility.id"))
    device_id: Mapped[str] = mapped_column(String(36))
    caller: Mapped[str] = mapped_column(String(200), default="")   # the spoke's user who rang (a health worker)
    state: Mapped[str] = mapped_column(String(12))                 # ringing | answered | ended
    outcome: Mapped[str] = mapped_column(String(12), default="")   # completed | missed | cancelled | failed
    end_reason: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime]
    ring_until: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    doctor_id: Mapped[str | None] = mapped_column(String(36))
    video_seen: Mapped[bool] = mapped_column(default=False)        # the doctor's browser saw the patient's video
    spoke_seen_at: Mapped[datetime | None]
    doctor_seen_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_hub_call_state", "state", "facility_id"), Index("ix_hub_call_case", "case_id"))


class HubCallSignal(HubBase):
    """A signalling message of a call on its way to one end (an SDP offer or answer, a change of mode, a
    hang-up): written by the worker that received it, read by the worker that serves the other end."""

    __tablename__ = "hub_call_signal"
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("hub_call.id"))
    to_side: Mapped[str] = mapped_column(String(6))                # spoke | doctor
    kind: Mapped[str] = mapped_column(String(20))
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime]

    __table_args__ = (Index("ix_hub_call_signal_to", "call_id", "to_side", "seq"),)
