"""SQLAlchemy 2 tables of the local store, including the change log that sync reads and the audit log."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, hands back timezone-aware UTC: spoke clocks and zones must never be guessed later."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), date: Date(), dict[str, Any]: JSON(), list[str]: JSON()}


Id = String(36)


class FacilityRow(Base):
    __tablename__ = "facility"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    hwc_id: Mapped[str] = mapped_column(String(50))
    district: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)


class UserRow(Base):
    __tablename__ = "app_user"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)


class SettingRow(Base):
    __tablename__ = "setting"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class PatientRow(Base):
    __tablename__ = "patient"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    facility_id: Mapped[str] = mapped_column(ForeignKey("facility.id"))
    name: Mapped[str] = mapped_column(String(200))
    sex: Mapped[str] = mapped_column(String(10))
    birth_date: Mapped[date]
    birth_date_approximate: Mapped[bool] = mapped_column(Boolean, default=False)
    relative_name: Mapped[str] = mapped_column(String(200), default="")
    relative_relation: Mapped[str | None] = mapped_column(String(5))
    phone: Mapped[str] = mapped_column(String(20), default="")
    village: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(Text, default="")
    abha_number: Mapped[str] = mapped_column(String(14), default="")
    abha_address: Mapped[str] = mapped_column(String(100), default="")
    # Known drug allergies as written ("penicillin"), or ["NKDA"]; empty when nobody asked yet.
    allergies: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # Search keys, kept in step with the fields above by the one write path; patient_fts indexes them.
    search_names: Mapped[str] = mapped_column(Text, default="")
    search_village: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(Id)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Per field, the clock stamp of the edit that set it: demographics merge field by field (sync.merge).
    field_hlc: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")

    __table_args__ = (
        Index("ix_patient_phone", "phone"),
        Index("ix_patient_abha_number", "abha_number"),
    )


class CaseRow(Base):
    __tablename__ = "clinical_case"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"))
    status: Mapped[str] = mapped_column(String(20))
    complaints: Mapped[list[str]] = mapped_column(JSON, default=list)
    complaint_text: Mapped[str] = mapped_column(Text, default="")
    duration: Mapped[str] = mapped_column(String(100), default="")
    history: Mapped[str] = mapped_column(Text, default="")
    examination: Mapped[str] = mapped_column(Text, default="")
    pregnant: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    hub_note: Mapped[str] = mapped_column(Text, default="", server_default="")  # the hub doctor's, pulled
    # The speciality asked for when the case was sent to the hub ("" for any doctor).
    speciality: Mapped[str] = mapped_column(String(60), default="", server_default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(Id)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        Index("ix_case_patient", "patient_id"),
        Index("ix_case_status_created", "status", "created_at"),
        Index("ix_case_created", "created_at"),
    )


class VitalsRow(Base):
    __tablename__ = "vitals"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("clinical_case.id"))
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(Id)
    status: Mapped[str] = mapped_column(String(20))
    replaces_id: Mapped[str | None] = mapped_column(ForeignKey("vitals.id"))
    source: Mapped[str] = mapped_column(String(200), default="manual")   # "manual" or the device's name
    # What the device reported about the measurement ("irregular pulse", "cuff too loose"...), and when the
    # device says it measured (a glucometer's stored reading may be hours old).
    device_status: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    measured_at: Mapped[datetime | None]
    systolic_mmhg: Mapped[int | None]
    diastolic_mmhg: Mapped[int | None]
    pulse_per_min: Mapped[int | None]
    respiratory_rate_per_min: Mapped[int | None]
    temperature_c: Mapped[float | None] = mapped_column(Float)
    spo2_pct: Mapped[int | None]
    weight_kg: Mapped[float | None] = mapped_column(Float)
    height_cm: Mapped[float | None] = mapped_column(Float)
    glucose_mg_dl: Mapped[int | None]
    glucose_kind: Mapped[str | None] = mapped_column(String(10))
    consciousness: Mapped[str | None] = mapped_column(String(20))
    on_supplemental_oxygen: Mapped[bool] = mapped_column(Boolean, default=False)
    # The red flags assessed when the set was recorded, as sent to the hub (sync.payloads.Assessed).
    assessment: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (Index("ix_vitals_case", "case_id"),)


class ConsentRow(Base):
    __tablename__ = "consent"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("clinical_case.id"))
    giver: Mapped[str] = mapped_column(String(20))
    giver_name: Mapped[str] = mapped_column(String(200))
    giver_relation: Mapped[str] = mapped_column(String(100), default="")
    method: Mapped[str] = mapped_column(String(20))
    given_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(Id)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (Index("ix_consent_case", "case_id"),)


class ChangeRow(Base):
    """One entry per write, in the same transaction as the write; sync reads only this table."""

    __tablename__ = "change_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)  # local order only
    change_id: Mapped[str] = mapped_column(Id, unique=True)
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(Id)
    version: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(10))  # upsert | delete
    hlc: Mapped[str] = mapped_column(String(40))
    changed_at: Mapped[datetime]
    user_id: Mapped[str | None] = mapped_column(Id)
    device_id: Mapped[str] = mapped_column(Id)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    pushed_at: Mapped[datetime | None]
    # A change the hub refused stays here, quarantined with the hub's reason, and no longer blocks the queue.
    rejected_at: Mapped[datetime | None]
    rejected_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_change_entity", "entity", "entity_id"), Index("ix_change_pushed", "pushed_at"))


class AuditRow(Base):
    """Append-only (triggers refuse UPDATE and DELETE): who created, viewed, changed or printed what."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    user_id: Mapped[str | None] = mapped_column(Id)
    action: Mapped[str] = mapped_column(String(30))
    entity: Mapped[str] = mapped_column(String(40), default="")
    entity_id: Mapped[str] = mapped_column(String(36), default="")
    detail: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)


class DraftRow(Base):
    """Work in progress in a form, saved as the user types so a killed app loses nothing."""

    __tablename__ = "draft"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    user_id: Mapped[str | None] = mapped_column(Id)
    updated_at: Mapped[datetime]


class SearchVocabRow(Base):
    """Distinct name/village search keys: typo-tolerant search matches the query against these."""

    __tablename__ = "search_vocab"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)


class InboxRow(Base):
    """Every change pulled from the hub, kept in the transaction that advances the cursor: nothing pulled is
    ever dropped, even a kind of record this version does not apply yet (applied_at stays empty). Once applied,
    a change's payload lives in its record's table and is not kept here a second time."""

    __tablename__ = "hub_inbox"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # the hub's sequence
    change_id: Mapped[str] = mapped_column(Id, unique=True)
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(10))
    hlc: Mapped[str] = mapped_column(String(90))
    device_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime]
    applied_at: Mapped[datetime | None]
    # Not applied yet because its parent has not arrived: "entity:id" of that parent (applied when it comes).
    waiting_for: Mapped[str | None] = mapped_column(String(110))
    # Could not be applied here (a payload this version cannot read): why, shown to the user.
    failed_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_inbox_waiting", "waiting_for"),)


class AttachmentRow(Base):
    """A photo, recording or document on a case. The file itself lives in the media folder under its SHA-256;
    only the reference and what describes it are here (nothing large goes into SQLite)."""

    __tablename__ = "attachment"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("clinical_case.id"))
    kind: Mapped[str] = mapped_column(String(20))          # photo | audio | document
    sha256: Mapped[str] = mapped_column(String(64))
    mime: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200), default="")
    width_px: Mapped[int | None]
    height_px: Mapped[int | None]
    duration_ms: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(20), default="active")   # active | withdrawn
    withdrawn_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(Id)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (Index("ix_attachment_case", "case_id"), Index("ix_attachment_sha256", "sha256"))


class MediaBlobRow(Base):
    """One file of the media folder, by content: whether it is here and whether the hub has it all."""

    __tablename__ = "media_blob"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    mime: Mapped[str] = mapped_column(String(100))
    present: Mapped[bool] = mapped_column(Boolean, default=True)   # False: known from another PC, not fetched yet
    uploaded_at: Mapped[datetime | None]                            # the hub confirmed every byte
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_media_blob_upload", "present", "uploaded_at"),)


class ConflictRow(Base):
    """A value that lost a field-by-field merge (two PCs, or PC and hub, edited the same field without seeing
    each other's edit): kept so that the user can look and restore it."""

    __tablename__ = "sync_conflict"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(Id)
    field: Mapped[str] = mapped_column(String(60))
    kept_value: Mapped[str | None] = mapped_column(Text)
    lost_value: Mapped[str | None] = mapped_column(Text)
    lost_device: Mapped[str] = mapped_column(String(64))
    lost_hlc: Mapped[str] = mapped_column(String(90))
    detected_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(Id)

    __table_args__ = (Index("ix_conflict_open", "resolved_at", "entity", "entity_id"),
                      Index("ux_conflict_once", "entity", "entity_id", "field", "lost_hlc", unique=True))


class PairedDeviceRow(Base):
    """A Bluetooth health device paired with this PC, under the name staff gave it ("BP monitor, room 1")."""

    __tablename__ = "paired_device"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    address: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    adapter: Mapped[str] = mapped_column(String(40))      # which protocol module reads it (SIG profile or vendor)
    paired_at: Mapped[datetime]
    paired_by: Mapped[str | None] = mapped_column(Id)


HubId = String(64)   # ids of records made at the hub (at most 64 characters on the wire)


class QuestionRow(Base):
    """A question of the hub's doctor on a case ("a photo of the rash in daylight, please"), as pulled."""

    __tablename__ = "case_question"
    id: Mapped[str] = mapped_column(HubId, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("clinical_case.id"))
    text: Mapped[str] = mapped_column(Text)
    asked_at: Mapped[datetime]
    asked_by: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))          # open | answered | withdrawn (the hub's word)
    version: Mapped[int] = mapped_column(Integer, default=1)
    received_at: Mapped[datetime]

    __table_args__ = (Index("ix_question_case", "case_id"),)


class AnswerRow(Base):
    """The spoke's answer to a question, written here or pulled from another PC of the facility."""

    __tablename__ = "case_answer"
    id: Mapped[str] = mapped_column(HubId, primary_key=True)
    question_id: Mapped[str] = mapped_column(ForeignKey("case_question.id"))
    case_id: Mapped[str] = mapped_column(ForeignKey("clinical_case.id"))
    text: Mapped[str] = mapped_column(Text)
    answered_at: Mapped[datetime]
    answered_by: Mapped[str] = mapped_column(String(200), default="")
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (Index("ix_answer_question", "question_id"), Index("ix_answer_case", "case_id"))


class PrescriptionRow(Base):
    """An e-prescription as pulled: the whole payload as the hub signed it (so it can be checked again and printed
    as issued), with what lists and checks need beside it."""

    __tablename__ = "prescription"
    id: Mapped[str] = mapped_column(HubId, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("clinical_case.id"))
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))          # issued | cancelled
    issued_at: Mapped[datetime]
    received_at: Mapped[datetime]
    # The hub's signature checked against its key when it arrived: False when it failed or the key was unknown.
    signature_ok: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (Index("ix_prescription_case", "case_id"), Index("ix_prescription_issued", "issued_at"))


class CallRow(Base):
    """A call with the hub's doctor on a case, as the hub recorded it when it ended (pulled): when it rang, who
    answered, how long it lasted, and whether the doctor saw the patient (video) or only heard them (audio)."""

    __tablename__ = "case_call"
    id: Mapped[str] = mapped_column(HubId, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("clinical_case.id"))
    started_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime]
    duration_s: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(12))         # completed | missed | cancelled | failed
    mode_used: Mapped[str] = mapped_column(String(10))       # video | audio | none
    doctor: Mapped[str] = mapped_column(String(200), default="")
    caller: Mapped[str] = mapped_column(String(200), default="")
    end_reason: Mapped[str] = mapped_column(String(200), default="")
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (Index("ix_call_case", "case_id"),)


class PrintJobRow(Base):
    """A prescription sent to a printer (the app's print queue): waiting, printing, printed or failed. `copy` is 1
    for the first paper of a prescription, 2 and more for duplicates (stamped DUPLICATE). `document` is the PDF as
    sent, kept until it is printed so "Try again" sends the same paper; None once printed."""

    __tablename__ = "print_job"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    prescription_id: Mapped[str] = mapped_column(ForeignKey("prescription.id"))
    case_id: Mapped[str] = mapped_column(Id)
    copy: Mapped[int] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(10))
    paper: Mapped[str] = mapped_column(String(4))            # A5 | A4
    printer: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(10))           # waiting | printing | printed | failed
    detail: Mapped[str] = mapped_column(Text, default="")    # the state in words ("the printer is stopped")
    system_job: Mapped[str] = mapped_column(String(100), default="")   # the operating system's job id
    document: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(Id)
    updated_at: Mapped[datetime]

    __table_args__ = (Index("ix_print_job_prescription", "prescription_id"), Index("ix_print_job_state", "state"))
