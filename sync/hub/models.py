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

    __table_args__ = (Index("ix_hub_record_facility", "facility_id"),)


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
