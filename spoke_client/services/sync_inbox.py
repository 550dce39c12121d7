"""The spoke's inbox: every change pulled from the hub, applied in bulk, by entity, parents before children.

A page and the cursor after it are stored in one transaction. Each change is checked against its entity's
payload (sync.payloads) before it is applied; one that cannot be applied is held in the inbox with the
reason, visibly, and the rest of the page goes on, so no record from the hub can stall this PC's pulls. A
change whose parent has not arrived yet (a case before its patient) waits once, keyed by that parent, and is
applied when the parent comes, not retried after every page.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from spoke_client.db.bulk import among, insert_many, insert_plain
from spoke_client.db.models import (
    AnswerRow,
    AttachmentRow,
    CallRow,
    CaseRow,
    ConsentRow,
    FacilityRow,
    InboxRow,
    MediaBlobRow,
    PatientRow,
    PrescriptionRow,
    QuestionRow,
    VitalsRow,
)
from spoke_client.domain.consultation import QuestionStatus
from spoke_client.domain.model import CaseStatus
from spoke_client.domain.names import normalize_name, phonetic_key
from spoke_client.services.consultation import signature_ok, waiting_questions
from spoke_client.services.hub_link import HUB_PUBLIC_KEY
from spoke_client.services.media import MediaFiles
from spoke_client.services.patients import search_columns
from spoke_client.services.store import Store, Writer
from sync.hlc import Stamp
from sync.merge import FIELD_META, merge
from sync.payloads import ALL_PAYLOADS, APPLY_ORDER, HUB_PAYLOADS, Payload, PayloadInvalid, VitalsValues, validate
from sync.protocol import Op, PullPage, SetDigest, hub_status_applies, merge_case_status, set_digest

log = logging.getLogger(__name__)

CURSOR, PULL_OWN = "hub_cursor", "hub_pull_own"
HUB_DEVICE_ID = "hub"
_CHUNK = 500                     # ids per IN (...) list
_CASE_STATES = frozenset(s.value for s in CaseStatus)
_VITALS_FIELDS = tuple(VitalsValues.model_fields)
# A question that arrives open moves a case the hub has (queued, or in a consultation) to "information
# requested"; a case prescribed, closed or cancelled meanwhile stays where it is.
_ASKABLE = frozenset({CaseStatus.QUEUED.value, CaseStatus.IN_CONSULTATION.value})
_ENVELOPE = ("seq", "change_id", "entity", "entity_id", "version", "op", "hlc", "device_id")
_PARENT_ENTITY = {"patient_id": "patient", "case_id": "case", "replaces_id": "vitals", "question_id": "question"}


@dataclass
class Pulled:
    """One pulled change as the appliers see it (from a page, or from the inbox when its parent arrived)."""

    seq: int
    entity: str
    entity_id: str
    version: int
    op: str
    device_id: str
    payload: dict | None
    hlc: str
    change_id: str = ""


@dataclass
class Outcome:
    applied: list[int] = field(default_factory=list)              # seq
    waiting: dict[int, str] = field(default_factory=dict)         # seq -> "entity:id" of the missing parent
    failed: dict[int, str] = field(default_factory=dict)          # seq -> reason
    arrived: set[str] = field(default_factory=set)                # "entity:id" applied now (parents for others)


class Inbox:
    """The Inbox of sync.engine over the local store."""

    def __init__(self, store: Store, files: MediaFiles | None = None) -> None:
        self.store = store
        self.files = files

    def cursor(self) -> int:
        return int(self.store.get_setting(CURSOR, "0") or 0)

    @staticmethod
    def prepare(page: PullPage) -> list[Checked]:
        """The page's changes, each checked against its entity's payload. Needs no database: the engine runs it on
        the thread that fetches the next page, beside the SQL of the page being applied (SQLite lets go of the
        GIL while it works), rather than on the applying thread."""
        return [check(Pulled(c.seq, c.entity, c.entity_id, c.version, c.op.value, c.device_id, c.payload, c.hlc,
                             str(c.change_id))) for c in page.changes]

    def apply(self, page: PullPage, prepared: list[Checked] | None = None, advance: bool = True) -> int:
        """Stores the page, applies what can be applied and moves the cursor, in one transaction: a cut between
        pages loses nothing and applies nothing twice. `prepared` is what prepare() made of this page, if it ran
        already. `advance=False` keeps the cursor where it is: a page that starts beyond it (a return bundle made
        from a cursor this PC has not reached) would otherwise step over what lies between."""
        checked = self.prepare(page) if prepared is None else prepared
        with self.store.write(None, background=True) as w:
            new = self._fresh(w, checked)
            self._observe(w, page)
            outcome = _Applier(w, self.files, self.store.device_id).apply_checked(new)
            self._store(w, new, outcome)    # each with what became of it, in one statement
            self._cascade(w, outcome.arrived)
            cursor = int(w.get_setting(CURSOR, "0") or 0)
            if advance and page.next_cursor > cursor:
                cursor = page.next_cursor
                w.set_setting(CURSOR, str(cursor))
            if page.changes:
                w.audit("sync_pull", "hub", "", f"{len(page.changes)} changes up to {cursor}")
        if outcome.failed:
            log.warning("%d pulled changes could not be applied (held in the inbox)", len(outcome.failed))
        return len(page.changes)

    @staticmethod
    def _fresh(w: Writer, checked: list[Checked]) -> list[Checked]:
        """The page's changes this PC has not received before (a page fetched again after a cut)."""
        ids = [item.change.change_id for item in checked]
        known = set(w.session.scalars(select(InboxRow.change_id).where(among(InboxRow.change_id, ids)))) if ids else set()
        return [item for item in checked if item.change.change_id not in known] if known else checked

    @staticmethod
    def _store(w: Writer, fresh: list[Checked], outcome: Outcome) -> None:
        """A row per change with what became of it. An applied change's payload is in its record's table now;
        only what is not applied (waiting, held, of a kind this version does not know) keeps its payload here."""
        applied = set(outcome.applied)
        done = [item.change for item in fresh if item.change.seq in applied]
        # The applied ones (nearly all of a page) as plain tuples, what they share bound once.
        insert_plain(w.session, InboxRow.__table__, _ENVELOPE, [
            (c.seq, c.change_id, c.entity, c.entity_id, c.version, c.op, c.hlc, c.device_id) for c in done],
            same=dict(payload=None, received_at=w.now, applied_at=w.now, waiting_for=None, failed_reason=None),
            or_ignore=True)
        insert_many(w.session, InboxRow.__table__, [dict(
            seq=c.seq, change_id=c.change_id, entity=c.entity, entity_id=c.entity_id, version=c.version, op=c.op,
            hlc=c.hlc, device_id=c.device_id, payload=c.payload, received_at=w.now, applied_at=None,
            waiting_for=outcome.waiting.get(c.seq), failed_reason=outcome.failed.get(c.seq))
            for c in (item.change for item in fresh) if c.seq not in applied], or_ignore=True)

    def _observe(self, w: Writer, page: PullPage) -> None:
        # Our next changes order after what we saw (the hub bounded every stamp it accepted).
        if page.changes:
            newest = max(c.hlc for c in page.changes)
            self.store.hlc.observe(Stamp.decode(newest), int(w.now.timestamp() * 1000))

    @staticmethod
    def _record(w: Writer, outcome: Outcome) -> None:
        table = InboxRow.__table__
        if outcome.applied:
            w.session.execute(update(table).where(table.c.seq == bindparam("s")).values(
                applied_at=w.now, waiting_for=None, failed_reason=None, payload=None),
                [{"s": seq} for seq in outcome.applied])
        if outcome.waiting:
            w.session.execute(update(table).where(table.c.seq == bindparam("s")).values(waiting_for=bindparam("p")),
                              [{"s": seq, "p": parent} for seq, parent in outcome.waiting.items()])
        if outcome.failed:
            w.session.execute(update(table).where(table.c.seq == bindparam("s")).values(
                failed_reason=bindparam("r"), waiting_for=None),
                [{"s": seq, "r": reason} for seq, reason in outcome.failed.items()])

    def _cascade(self, w: Writer, arrived: set[str]) -> None:
        """Applies what was waiting for the records that just arrived, and what waited for those, and so on."""
        while arrived:
            waiting: list[InboxRow] = []
            keys = sorted(arrived)
            for i in range(0, len(keys), _CHUNK):
                waiting.extend(w.session.scalars(select(InboxRow).where(
                    InboxRow.waiting_for.in_(keys[i:i + _CHUNK]), InboxRow.applied_at.is_(None))))
            if not waiting:
                return
            waiting.sort(key=lambda r: r.seq)
            outcome = _Applier(w, self.files, self.store.device_id).apply([_pulled(r) for r in waiting])
            self._record(w, outcome)
            arrived = outcome.arrived

    # --- what could not be applied ----------------------------------------------------------------------
    def held(self) -> list[InboxRow]:
        """Pulled changes this PC could not apply, with the reason (oldest first)."""
        with self.store.read() as s:
            return list(s.scalars(select(InboxRow).where(InboxRow.failed_reason.is_not(None),
                                                         InboxRow.applied_at.is_(None)).order_by(InboxRow.seq)))

    def retry_held(self, seqs: Iterable[int] | None = None) -> int:
        """Tries again the held changes (all, or those given), and those this version did not know how to apply
        (a newer hub's records): after an upgrade of this program, or when the user asks. Returns how many
        were applied now."""
        with self.store.write(None) as w:
            q = select(InboxRow).where(InboxRow.applied_at.is_(None), InboxRow.waiting_for.is_(None))
            if seqs is not None:
                chosen = list(seqs)
                if not chosen:
                    return 0
                q = q.where(InboxRow.seq.in_(chosen))
            rows = list(w.session.scalars(q.order_by(InboxRow.seq)))
            outcome = _Applier(w, self.files, self.store.device_id).apply([_pulled(r) for r in rows])
            self._record(w, outcome)
            self._cascade(w, outcome.arrived)
            if rows:
                w.audit("sync_retry", "inbox", "", f"{len(outcome.applied)} of {len(rows)} applied")
            return len(outcome.applied)

    # --- divergence check ---------------------------------------------------------------------------
    def local_digest(self, cursor: int) -> tuple[SetDigest, SetDigest]:
        me = self.store.device_id
        with self.store.read() as s:
            others = s.scalars(select(InboxRow.change_id).where(InboxRow.seq <= cursor, InboxRow.seq > 0,
                                                               InboxRow.device_id != me)).yield_per(10_000)
            others_digest = set_digest(others)
            # Our own changes the hub has: those it acknowledged, and those a full resync brought back to a PC
            # restored from an older copy.
            own = s.execute(text(
                "SELECT change_id FROM change_log WHERE pushed_at IS NOT NULL AND rejected_at IS NULL "
                "UNION SELECT change_id FROM hub_inbox WHERE device_id = :me"), {"me": me}).scalars().yield_per(10_000)
            return others_digest, set_digest(own)

    def pull_own(self) -> bool:
        return self.store.get_setting(PULL_OWN) == "1"

    def prepare_resync(self, pull_again: bool, push_again: bool) -> None:
        """Before a full resync. Pull again: from the start, our own changes included (a PC restored from an
        older copy gets back what it had sent); what was pulled stays applied, and pulled records not applied
        yet keep their place under a negative number (the hub's numbering may have been reset by a restore).
        Push again: every change the hub acknowledged is offered again (it acknowledges the ones it has as
        duplicates). Unsent and refused changes are not touched."""
        from spoke_client.db.models import ChangeRow
        from spoke_client.services.hub_link import LAST_CHECK

        with self.store.write(None) as w:
            if pull_again or push_again:
                w.session.execute(text("DELETE FROM hub_inbox WHERE applied_at IS NOT NULL AND seq > 0"))
                low, high = w.session.execute(text(
                    "SELECT min(coalesce(min(seq), 0), 0), coalesce(max(seq), 0) FROM hub_inbox")).one()
                # Below everything there, in the same order: seq - high - 1 + low.
                w.session.execute(text("UPDATE hub_inbox SET seq = seq - :high - 1 + :low WHERE seq > 0"),
                                  {"low": low, "high": high})
                w.set_setting(CURSOR, "0")
                w.set_setting(PULL_OWN, "1")
            if push_again:
                w.session.execute(update(ChangeRow).where(ChangeRow.pushed_at.is_not(None), ChangeRow.rejected_at.is_(None))
                                  .values(pushed_at=None))
            w.set_setting(LAST_CHECK, "")   # cut before the end: the next round checks again
            w.audit("sync_resync", "hub", "", f"pull_again={pull_again} push_again={push_again}")

    def pull_done(self) -> None:
        if self.pull_own():
            self.store.set_setting(PULL_OWN, "")


def _pulled(row: InboxRow) -> Pulled:
    return Pulled(row.seq, row.entity, row.entity_id, row.version, row.op, row.device_id, row.payload, row.hlc)


@dataclass(slots=True)
class Checked:
    """A pulled change with its payload checked: `payload` is the checked model (None for a delete) when `ok`;
    otherwise `problem` says why it is held, or is None for a kind of record this version does not apply yet
    (kept in the inbox, unapplied, for a later version: not an error)."""

    change: Pulled
    ok: bool
    payload: Payload | None = None
    problem: str | None = None


def check(c: Pulled) -> Checked:
    if c.entity not in ALL_PAYLOADS:
        return Checked(c, False)       # a newer hub's record
    if c.entity in HUB_PAYLOADS and c.device_id != HUB_DEVICE_ID:
        return Checked(c, False, problem=f"a {c.entity} record is made only by the hub, not by a device")
    if c.op == Op.DELETE.value:
        if c.entity == "attachment":
            return Checked(c, True)
        return Checked(c, False, problem=f"a {c.entity} record cannot be deleted")
    try:
        payload = validate(c.entity, c.payload, entity_id=c.entity_id)
    except PayloadInvalid as exc:
        return Checked(c, False, problem=f"the {c.entity} record is not valid: {exc}")
    return Checked(c, True, payload)




class _Applier:
    """Applies a list of pulled changes in one transaction: by entity in dependency order, set-based within
    an entity. Each entity's statements run in a savepoint; should one fail (something the checks did not
    foresee), that entity's changes are applied one by one so only the culprit is held back."""

    def __init__(self, w: Writer, files: MediaFiles | None, me: str) -> None:
        self.w, self.s, self.files, self.me = w, w.session, files, me
        self.out = Outcome()
        self._facility: str | None = None

    def apply(self, changes: list[Pulled]) -> Outcome:
        return self.apply_checked([check(c) for c in changes])

    def apply_checked(self, checked: list[Checked]) -> Outcome:
        by_entity: dict[str, list[tuple[Pulled, Payload | None]]] = {}
        for item in checked:
            if item.ok:
                by_entity.setdefault(item.change.entity, []).append((item.change, item.payload))
            elif item.problem is not None:
                self.out.failed[item.change.seq] = item.problem
        for entity in APPLY_ORDER:
            group = by_entity.pop(entity, [])
            if group:
                self._guarded(entity, group)
        return self.out

    def _guarded(self, entity: str, group: list[tuple[Pulled, Payload | None]]) -> None:
        applier = getattr(self, f"_apply_{entity}")
        before = (list(self.out.applied), dict(self.out.waiting), dict(self.out.failed), set(self.out.arrived))
        try:
            with self.s.begin_nested():
                applier(group)
        except SQLAlchemyError:
            log.exception("applying %d pulled %s changes failed; applying them one by one", len(group), entity)
            self.out.applied, self.out.waiting, self.out.failed, self.out.arrived = before
            for item in group:
                try:
                    with self.s.begin_nested():
                        applier([item])
                except SQLAlchemyError as exc:
                    cause = getattr(exc, "orig", None) or exc
                    self.out.failed[item[0].seq] = f"could not be stored here ({type(cause).__name__})"

    # --- helpers --------------------------------------------------------------------------------------
    def _done(self, c: Pulled) -> None:
        self.out.applied.append(c.seq)
        self.out.arrived.add(f"{c.entity}:{c.entity_id}")

    def _present(self, model, ids: Iterable[str]) -> dict[str, Any]:
        """id -> row version (or True) of the rows of `model` among `ids`."""
        ids = sorted(set(ids))
        found: dict[str, Any] = {}
        if not ids:
            return found
        version = getattr(model, "version", None)
        cols = (model.id, version) if version is not None else (model.id,)
        for row in self.s.execute(select(*cols).where(among(model.id, ids))):
            found[row[0]] = row[1] if version is not None else True
        return found

    def _with_parents(self, group, checks: tuple[tuple[str, Any], ...]):
        """The changes whose parents are all here; the others wait for the first missing one."""
        present = {field_: self._present(model, [getattr(p, field_) for _c, p in group if getattr(p, field_)])
                   for field_, model in checks}
        ready = []
        for c, p in group:
            missing = next(((field_, getattr(p, field_)) for field_, _m in checks
                            if getattr(p, field_) and getattr(p, field_) not in present[field_]), None)
            if missing is None:
                ready.append((c, p))
            else:
                self.out.waiting[c.seq] = f"{_PARENT_ENTITY[missing[0]]}:{missing[1]}"
        return ready

    @staticmethod
    def _latest(group):
        """The newest version of each record in the group (by version; a later seq wins a tie)."""
        latest: dict[str, tuple[Pulled, Payload]] = {}
        for c, p in group:
            if c.entity_id not in latest or c.version >= latest[c.entity_id][0].version:
                latest[c.entity_id] = (c, p)
        return latest

    def _upsert(self, model, group, values, *, update_existing: bool = True) -> list[tuple[Pulled, Payload]]:
        """Inserts new records and updates older ones by version, in two statements. Returns the changes that
        were written (an older version than the one held is applied, and changes nothing)."""
        ready = self._latest(group)
        existing = self._present(model, ready)
        inserts, updates, written = [], [], []
        for entity_id, (c, p) in ready.items():
            if entity_id not in existing:
                inserts.append(values(c, p))
            elif update_existing and c.version > existing[entity_id]:
                updates.append(values(c, p))
            else:
                continue
            written.append((c, p))
        if inserts:   # one executemany (the ORM splits rows by which values are None, and costs more per row)
            insert_many(self.s, model.__table__, inserts)
        if updates:
            self.s.execute(update(model), updates)
        for c, _p in group:
            self._done(c)
        return written

    def facility_id(self) -> str | None:
        if self._facility is None:
            self._facility = self.s.scalars(select(FacilityRow.id).limit(1)).first()
        return self._facility

    # --- the entities -------------------------------------------------------------------------------
    def _apply_facility(self, group) -> None:
        for c, _p in group:   # facility details and users stay per PC (passwords never travel)
            self._done(c)

    _apply_user = _apply_facility

    def _apply_patient(self, group) -> None:
        """Demographics merge field by field with what this PC holds (sync.merge); a value that lost to an edit
        that had not seen it is kept as a conflict record for the user to look at."""
        facility_id = self.facility_id()
        if facility_id is None:
            for c, _p in group:
                self.out.failed[c.seq] = "this computer is not set up yet (no facility)"
            return
        from spoke_client.services.patients import patient_payload, to_patient

        rows = {r.id: r for r in self._rows(PatientRow, [c.entity_id for c, _p in group])}
        new: dict[str, tuple[dict, dict]] = {}   # a patient first seen in this page: (its columns, its payload)
        conflicts, vocab = [], set()
        for c, p in group:
            incoming = p.wire()
            row = rows.get(c.entity_id)
            if c.entity_id in new:       # a later version, in the same page, of a patient it brought
                current = new[c.entity_id][1]
                stamp = max((v[0] for v in (current.get(FIELD_META) or {}).values()), default="")
                merged, found = merge(current, stamp, incoming, c.hlc)
                final = validate("patient", merged)
            elif row is not None:
                current = patient_payload(to_patient(row), dict(row.field_hlc or {}))
                current_stamp = max((v[0] for v in (row.field_hlc or {}).values()), default="")
                merged, found = merge(current, current_stamp, incoming, c.hlc)
                final = validate("patient", merged)
            else:                        # the common case of a rebuild: nothing to merge with
                merged, found, final = incoming, [], p
                merged.setdefault(FIELD_META, {})
            values = dict(name=final.name, sex=final.sex, birth_date=final.birth_date,
                          birth_date_approximate=final.birth_date_approximate, relative_name=final.relative_name,
                          relative_relation=final.relative_relation, phone=final.phone, village=final.village,
                          address=final.address, abha_number=final.abha_number, abha_address=final.abha_address,
                          allergies=list(final.allergies), field_hlc=merged[FIELD_META], updated_at=self.w.now)
            values["search_names"], values["search_village"] = search_columns(final.name, final.relative_name, final.village)
            if row is not None:
                for k, v in values.items():
                    setattr(row, k, v)
                row.version = max(row.version + 1, c.version)
            elif c.entity_id in new:
                columns = new[c.entity_id][0]
                columns.update(values, version=max(columns["version"] + 1, c.version))
                new[c.entity_id] = (columns, merged)
            else:
                new[c.entity_id] = (dict(id=c.entity_id, facility_id=facility_id,
                                         created_at=final.created_at or self.w.now, created_by=c.device_id,
                                         version=c.version, **values), merged)
            conflicts.extend((c.entity_id, conflict) for conflict in found)
            vocab.update(phonetic_key(x) for x in normalize_name(
                f"{final.name} {final.relative_name} {final.village}").split())
            self._done(c)
        if new:
            insert_many(self.s, PatientRow.__table__, [columns for columns, _payload in new.values()])
        self.s.flush()
        if conflicts:
            at = self.w.now.replace(tzinfo=None).isoformat(" ")
            self.s.execute(text(
                "INSERT OR IGNORE INTO sync_conflict(entity, entity_id, field, kept_value, lost_value, lost_device, "
                "lost_hlc, detected_at) VALUES ('patient', :id, :field, :kept, :lost, :device, :hlc, :at)"), [dict(
                    id=pid, field=k.group, kept=_json(k.kept), lost=_json(k.lost), device=k.lost_device,
                    hlc=k.lost_stamp, at=at) for pid, k in conflicts])
            for pid, k in conflicts:
                self.w.audit("sync_conflict", "patient", pid, k.group)
        keys = sorted(k for k in vocab if len(k) >= 3)
        if keys:
            self.s.execute(text("INSERT OR IGNORE INTO search_vocab(key) VALUES (:k)"), [{"k": k} for k in keys])

    def _apply_case(self, group) -> None:
        hub = [(c, p) for c, p in group if c.device_id == HUB_DEVICE_ID]
        spoke = [(c, p) for c, p in group if c.device_id != HUB_DEVICE_ID]
        if spoke:
            self._apply_spoke_cases(self._with_parents(spoke, (("patient_id", PatientRow),)))
        for c, p in hub:
            self._apply_hub_case(c, p)

    def _apply_spoke_cases(self, ready) -> None:
        """Another PC's case: its clinical record as sent, its status merged with what the hub decided (the same
        rule as at the hub, sync.protocol.merge_case_status): a consultation this PC already knows of is not
        undone by the owner's older "ready". The doctor's note stays the hub's."""
        latest = self._latest(ready)
        ids = sorted(latest)
        existing: dict[str, tuple[int, str]] = {}
        if ids:
            for row in self.s.execute(select(CaseRow.id, CaseRow.version, CaseRow.status).where(among(CaseRow.id, ids))):
                existing[row.id] = (row.version, row.status)
        inserts, updates = [], []
        for entity_id, (c, p) in latest.items():
            values = dict(id=entity_id, patient_id=p.patient_id, status=p.status, complaints=list(p.complaints),
                          complaint_text=p.complaint_text, duration=p.duration, history=p.history,
                          examination=p.examination, pregnant=p.pregnant, priority=p.priority, version=c.version,
                          speciality=p.speciality, updated_at=p.updated_at or self.w.now,
                          created_at=p.created_at or self.w.now, created_by=c.device_id)
            if entity_id not in existing:
                inserts.append(values)
            elif c.version > existing[entity_id][0]:
                updates.append(values | {"status": merge_case_status(existing[entity_id][1], p.status)})
        if inserts:
            insert_many(self.s, CaseRow.__table__, inserts)
        if updates:
            self.s.execute(update(CaseRow), updates)
        for c, _p in ready:
            self._done(c)

    def _apply_hub_case(self, c: Pulled, p) -> None:
        # The hub owns the consultation outcome: status and the doctor's note of a case.
        row = self.s.get(CaseRow, c.entity_id)
        if row is None:
            self.out.waiting[c.seq] = f"case:{c.entity_id}"
            return
        status = p.status
        if status == CaseStatus.INFO_REQUESTED.value and self._all_answered(row.id):
            status = row.status   # asked before this PC's answer reached the hub: the answer stands
        if status in _CASE_STATES and status != row.status and hub_status_applies(row.status, status):
            self.w.audit("hub_update", "case", row.id, f"status:{row.status}->{status}")
            row.status = status
        row.hub_note = p.doctor_note
        row.updated_at = self.w.now
        self._done(c)

    def _apply_vitals(self, group) -> None:
        ready = self._with_parents(group, (("case_id", CaseRow), ("replaces_id", VitalsRow)))

        def values(c, p):
            return dict(id=c.entity_id, case_id=p.case_id, recorded_at=p.recorded_at, recorded_by=p.recorded_by,
                        status=p.status, replaces_id=p.replaces_id, source=p.source, version=c.version,
                        device_status=list(p.device_status), measured_at=p.measured_at,
                        assessment=p.assessment.model_dump(mode="json") if p.assessment is not None else None,
                        **{name: getattr(p.vitals, name) for name in _VITALS_FIELDS})

        self._upsert(VitalsRow, ready, values)

    def _apply_consent(self, group) -> None:
        ready = self._with_parents(group, (("case_id", CaseRow),))

        def values(c, p):
            return dict(id=c.entity_id, case_id=p.case_id, giver=p.giver, giver_name=p.giver_name,
                        giver_relation=p.giver_relation, method=p.method, given_at=p.given_at,
                        recorded_by=p.recorded_by, version=c.version)

        self._upsert(ConsentRow, ready, values, update_existing=False)   # a consent is never edited

    def _apply_attachment(self, group) -> None:
        deletes = [(c, p) for c, p in group if p is None]
        upserts = [(c, p) for c, p in group if p is not None]
        ready = self._with_parents(upserts, (("case_id", CaseRow),))

        def values(c, p):
            return dict(id=c.entity_id, case_id=p.case_id, kind=p.kind, sha256=p.sha256, mime=p.mime,
                        size_bytes=p.size_bytes, label=p.label, width_px=p.width_px, height_px=p.height_px,
                        duration_ms=p.duration_ms, status=p.status, withdrawn_reason=p.withdrawn_reason,
                        version=c.version, created_at=p.created_at, created_by=p.created_by)

        self._upsert(AttachmentRow, ready, values)
        blobs = {p.sha256: p for _c, p in ready}
        if blobs:
            have = set(self._present_blobs(blobs))
            for sha256, p in blobs.items():
                if sha256 not in have:
                    # Known, not here yet: the engine fetches it from the hub after the pull.
                    present = self.files is not None and self.files.has(sha256)
                    self.s.add(MediaBlobRow(sha256=sha256, size_bytes=p.size_bytes, mime=p.mime, present=present,
                                            uploaded_at=self.w.now, last_error="", created_at=self.w.now))
        for c, _p in deletes:
            # Deleted from a draft on its own PC before anyone relied on it.
            self.s.execute(delete(AttachmentRow).where(AttachmentRow.id == c.entity_id))
            self._done(c)

    def _apply_question(self, group) -> None:
        """The doctor's questions; one that arrives open, and is not answered here yet, puts its case in
        "information requested" (the hub's own change of the case may come before or after it)."""
        ready = self._with_parents(group, (("case_id", CaseRow),))

        def values(c, p):
            return dict(id=c.entity_id, case_id=p.case_id, text=p.text, asked_at=p.asked_at, asked_by=p.asked_by,
                        status=p.status, version=c.version, received_at=self.w.now)

        written = self._upsert(QuestionRow, ready, values)
        asking = sorted({p.case_id for _c, p in written if p.status == QuestionStatus.OPEN.value})
        if asking:
            self.s.flush()
            for row in self._rows(CaseRow, asking):
                if row.status in _ASKABLE and self._waiting(row.id):
                    self.w.audit("hub_update", "case", row.id, f"status:{row.status}->{CaseStatus.INFO_REQUESTED.value}")
                    row.status = CaseStatus.INFO_REQUESTED.value
                    row.updated_at = self.w.now

    def _apply_answer(self, group) -> None:
        """Another PC's answers: its case goes back to the hub's queue here too once no question waits."""
        ready = self._with_parents(group, (("case_id", CaseRow), ("question_id", QuestionRow)))

        def values(c, p):
            return dict(id=c.entity_id, question_id=p.question_id, case_id=p.case_id, text=p.text,
                        answered_at=p.answered_at, answered_by=p.answered_by, version=c.version)

        written = self._upsert(AnswerRow, ready, values, update_existing=False)   # an answer is never edited
        answered = sorted({p.case_id for _c, p in written})
        if answered:
            self.s.flush()
            for row in self._rows(CaseRow, answered):
                if row.status == CaseStatus.INFO_REQUESTED.value and not self._waiting(row.id):
                    self.w.audit("sync_answer", "case", row.id, f"status:{row.status}->{CaseStatus.QUEUED.value}")
                    row.status = CaseStatus.QUEUED.value
                    row.updated_at = self.w.now

    def _apply_prescription(self, group) -> None:
        """Prescriptions, kept as pulled; each one's signature is checked against the hub's key here, once, and
        one that fails (or arrives before the key) is kept and shown with a warning, never as checked. A
        cancellation is a newer version of the same record."""
        ready = self._with_parents(group, (("case_id", CaseRow), ("patient_id", PatientRow)))
        hub_key = self.w.get_setting(HUB_PUBLIC_KEY)

        def values(c, p):
            ok = signature_ok(c.payload, hub_key)
            if not ok:
                log.warning("a pulled prescription's signature could not be checked (%s)",
                            "no hub key here" if not hub_key else "it does not match")
            return dict(id=c.entity_id, case_id=p.case_id, patient_id=p.patient_id, payload=c.payload,
                        status=p.status, issued_at=p.issued_at, received_at=self.w.now, signature_ok=ok,
                        version=c.version)

        self._upsert(PrescriptionRow, ready, values)

    def _apply_call(self, group) -> None:
        """The hub's record of a call on a case (how the consultation was held), kept as it says."""
        ready = self._with_parents(group, (("case_id", CaseRow),))

        def values(c, p):
            return dict(id=c.entity_id, case_id=p.case_id, started_at=p.started_at, answered_at=p.answered_at,
                        ended_at=p.ended_at, duration_s=p.duration_s, outcome=p.outcome, mode_used=p.mode_used,
                        doctor=p.doctor, caller=p.caller, end_reason=p.end_reason, version=c.version)

        self._upsert(CallRow, ready, values)

    def _waiting(self, case_id: str) -> bool:
        """Whether a question of the case is open and not answered from this facility yet."""
        return bool(waiting_questions(self.s, case_id))

    def _all_answered(self, case_id: str) -> bool:
        """The case has questions here, and every one is answered or closed by the doctor."""
        has_questions = self.s.scalars(select(QuestionRow.id).where(QuestionRow.case_id == case_id).limit(1)).first()
        return has_questions is not None and not self._waiting(case_id)

    def _present_blobs(self, hashes) -> list[str]:
        return list(self.s.scalars(select(MediaBlobRow.sha256).where(among(MediaBlobRow.sha256, sorted(hashes)))))

    def _rows(self, model, ids) -> list:
        ids = sorted(set(ids))
        return list(self.s.scalars(select(model).where(among(model.id, ids)))) if ids else []


# The kinds of record this version applies: when it learns a new one (prescriptions...), what an older version
# kept unapplied in the inbox is applied at the next sync, even if the program's version number did not move.
APPLIED = tuple(e for e in APPLY_ORDER if hasattr(_Applier, f"_apply_{e}"))


def _json(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)

