"""The spoke's side of sync: enrolment, the engine over this PC's outbox, inbox and media box, and its status.

The three boxes are sync.engine's own protocols: sync_outbox (the change log), sync_inbox (pulled changes,
applied in bulk) and sync_media (files); hub_link keeps the link's state (address, request counter, clock).
"""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from sqlalchemy import select, update

from spoke_client import __version__
from spoke_client.db.models import AttachmentRow, CaseRow, ChangeRow, FacilityRow, MediaBlobRow, PatientRow
from spoke_client.domain.errors import SpokeError
from spoke_client.i18n import _
from spoke_client.paths import DataPaths
from spoke_client.services.files import atomic_write_bytes
from spoke_client.services.hub_link import (
    APP_VERSION,
    CLOCK_OFFSET,
    HUB_ALLOW_HTTP,
    HUB_CA_BUNDLE,
    HUB_FACILITY,
    HUB_FACILITY_NAME,
    HUB_PUBLIC_KEY,
    HUB_URL,
    HUB_WIRE,
    LAST_CHECK,
    LAST_ERROR,
    LAST_SYNC,
    HubLink,
    clock_advice,
    parse_when,
)
from spoke_client.services.media import MediaFiles
from spoke_client.services.store import Store
from spoke_client.services.sync_inbox import APPLIED, Inbox
from spoke_client.services.sync_media import MediaBox
from spoke_client.services.sync_outbox import Outbox
from sync.engine import SyncEngine, SyncReport
from sync.transport.http import HubClient, HubGarbage, HubRefused, HubUnreachable
from sync.wire import WIRE_COLUMNS

log = logging.getLogger(__name__)

CHECK_EVERY = timedelta(hours=6)   # the divergence check: cheap, but it reads every change id at both ends

__all__ = ["HUB_URL", "EnrolmentFailed", "LocalSync", "NotEnrolled", "NotSetUp", "RefusedItem", "SyncStatus",
           "enroll", "make_engine", "sync_once", "sync_status"]


class NotEnrolled(SpokeError):
    pass


class NotSetUp(SpokeError):
    """This PC has no facility yet: it cannot hold a facility's records."""


class EnrolmentFailed(SpokeError):
    pass


@dataclass(frozen=True)
class SyncStatus:
    enrolled: bool
    hub_url: str
    facility_name: str
    pending: int
    pending_cases: int
    pending_files: int
    quarantined: int
    last_sync: datetime | None
    last_error: str
    clock_warning: str = ""      # this PC's clock is far from the hub's: set the date (a sentence), or ""


@dataclass(frozen=True)
class RefusedItem:
    """A record or file the hub refused, or a record from the hub this PC could not apply, in the user's terms."""

    kind: str          # change | file | pulled
    key: str           # change id, SHA-256 or inbox position, for "try again"
    what: str          # "Patient Kamla Devi", "Case of Kamla Devi", "File 'rash, left forearm'"
    reason: str
    when: datetime | None


def key_path(paths: DataPaths):
    return paths.root / "device-key.pem"


class LocalSync:
    """This PC's three boxes together, for what the user sees of them: what waits, and what was refused."""

    def __init__(self, store: Store, files: MediaFiles | None = None) -> None:
        self.store = store
        self.outbox = Outbox(store)
        self.inbox = Inbox(store, files)
        self.media = MediaBox(store, files) if files is not None else None

    def pending(self) -> int:
        return self.outbox.pending()

    def pending_files(self) -> int:
        return MediaBox(self.store, None).pending_files()

    def refused(self) -> list[RefusedItem]:
        """Every quarantined change, refused file and pulled change held back, oldest first, for the user."""
        out: list[RefusedItem] = []
        with self.store.read() as s:
            for r in s.scalars(select(ChangeRow).where(ChangeRow.rejected_at.is_not(None)).order_by(ChangeRow.seq)):
                out.append(RefusedItem("change", r.change_id, _describe(s, r.entity, r.entity_id, r.payload),
                                       r.rejected_reason or "", r.rejected_at))
            for b in s.scalars(select(MediaBlobRow).where(MediaBlobRow.last_error != "").order_by(MediaBlobRow.created_at)):
                labels = s.scalars(select(AttachmentRow.label).where(AttachmentRow.sha256 == b.sha256)).all()
                what = _("File '{label}'").format(label=labels[0]) if labels and labels[0] else _("A file")
                out.append(RefusedItem("file", b.sha256, what, b.last_error, None))
        for row in self.inbox.held():
            with self.store.read() as s:
                what = _describe(s, row.entity, row.entity_id, row.payload if isinstance(row.payload, dict) else None)
            out.append(RefusedItem("pulled", str(row.seq), _("{what}, from the hub").format(what=what),
                                   _("Could not be applied on this computer: {reason}").format(reason=row.failed_reason),
                                   row.received_at))
        return out

    def try_again(self, user_id: str | None, items: list[RefusedItem]) -> None:
        """Puts refused records and files back in the queue (after the hub or the file was put right), and
        tries the held pulled changes again (after an update of this program)."""
        with self.store.write(user_id) as w:
            for item in items:
                if item.kind == "change":
                    w.session.execute(update(ChangeRow).where(ChangeRow.change_id == item.key)
                                      .values(rejected_at=None, rejected_reason=None))
                elif item.kind == "file":
                    w.session.execute(update(MediaBlobRow).where(MediaBlobRow.sha256 == item.key).values(last_error=""))
                else:
                    continue
                w.audit("sync_retry", item.kind, item.key, item.reason[:200])
        pulled = [int(i.key) for i in items if i.kind == "pulled"]
        if pulled:
            self.inbox.retry_held(pulled)


def _describe(s, entity: str, entity_id: str, payload: dict | None) -> str:
    def patient_name(patient_id: str | None) -> str:
        row = s.get(PatientRow, patient_id) if patient_id else None
        return row.name if row else _("an unknown patient")

    p = payload or {}
    if entity == "patient":
        return _("Patient {name}").format(name=p.get("name") or patient_name(entity_id))
    if entity == "case":
        return _("Case of {name}").format(name=patient_name(p.get("patient_id")))
    if entity in ("vitals", "consent", "attachment", "question", "answer", "prescription"):
        case = s.get(CaseRow, p.get("case_id")) if p.get("case_id") else None
        name = patient_name(case.patient_id if case else None)
        return {"vitals": _("Vitals of {name}"), "consent": _("Consent of {name}"),
                "attachment": _("Attachment of {name}"), "question": _("The doctor's question on the case of {name}"),
                "answer": _("The answer on the case of {name}"),
                "prescription": _("Prescription for {name}")}[entity].format(name=name)
    return _("A {entity} record").format(entity=entity)


def _require_setup(store: Store) -> None:
    with store.read() as s:
        if s.scalars(select(FacilityRow.id).limit(1)).first() is None:
            raise NotSetUp(_("Set up this computer first (its facility and first administrator): it can hold a "
                             "facility's records, and sync with its hub, only after that."))


def enroll(store: Store, paths: DataPaths, hub_url: str, code: str, device_name: str, *, allow_http: bool = False,
           ca_bundle: str | None = None) -> str:
    """Generates this PC's Ed25519 key, registers it with the hub under the one-time code, keeps the key."""
    _require_setup(store)   # before the code is used up: a PC without a facility cannot take its records
    if store.get_setting(HUB_URL):
        raise EnrolmentFailed(_("This computer is already enrolled with {hub}.").format(hub=store.get_setting(HUB_URL)))
    try:
        if ca_bundle and not os.path.isfile(ca_bundle):
            raise ValueError(_("The CA bundle file {path} does not exist.").format(path=ca_bundle))
        client = HubClient(hub_url, allow_plain_http=allow_http, ca_bundle=ca_bundle)
    except ValueError as exc:
        raise EnrolmentFailed(str(exc)) from exc
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    pending = key_path(paths).with_suffix(".pending")
    atomic_write_bytes(pending, pem)
    os.chmod(pending, 0o600)
    try:
        result = client.enroll(code, key, store.device_id, device_name)
    except HubRefused as exc:
        pending.unlink(missing_ok=True)
        raise EnrolmentFailed(exc.message) from exc
    except (HubUnreachable, HubGarbage) as exc:
        pending.unlink(missing_ok=True)
        raise EnrolmentFailed(_("The hub could not be reached: {e}").format(e=exc)) from exc
    os.replace(pending, key_path(paths))
    # The key the hub signs prescriptions with (a hub of an older version does not send it: prescriptions from
    # it are then shown as unchecked).
    hub_key = _public_key(getattr(result, "hub_key", None))
    with store.write(None) as w:
        for k, v in ((HUB_URL, client.base_url), (HUB_FACILITY, result.facility_id),
                     (HUB_FACILITY_NAME, result.facility_name), (HUB_ALLOW_HTTP, "1" if allow_http else ""),
                     (HUB_CA_BUNDLE, os.path.abspath(ca_bundle) if ca_bundle else "")):
            w.set_setting(k, v)
        if hub_key:
            w.set_setting(HUB_PUBLIC_KEY, str(hub_key))
        w.audit("enroll", "hub", result.facility_id, client.base_url)
    log.info("enrolled with %s for facility %s", client.base_url, result.facility_id)
    from spoke_client.services.bundles import ensure_box_key

    signed = HubClient(client.base_url, device_id=store.device_id, key=key, next_counter=HubLink(store).next_counter,
                       allow_plain_http=allow_http, ca_bundle=ca_bundle)
    ensure_box_key(store, paths, signed)   # for USB bundles; else learnt at the next sync
    return result.facility_name


def _public_key(value) -> str | None:
    """The hub's key as sent at enrolment if it is one (base64 of 32 raw bytes), else None."""
    if not value:
        return None
    try:
        if len(base64.b64decode(str(value), validate=True)) == 32:
            return str(value)
    except ValueError:
        pass
    log.warning("the hub sent a public key that is not an Ed25519 key; its prescriptions will show as unchecked")
    return None


def signed_client(store: Store, paths: DataPaths) -> HubClient:
    """A client of the hub that signs as this PC (NotEnrolled before enrolment)."""
    url = store.get_setting(HUB_URL)
    if not url or not key_path(paths).exists():
        raise NotEnrolled(_("This computer is not enrolled with a hub yet: run 'spoke-client enroll --hub URL --code CODE'."))
    key = load_pem_private_key(key_path(paths).read_bytes(), password=None)
    link = HubLink(store)
    client = HubClient(url, device_id=store.device_id, key=key, next_counter=link.next_counter,
                       allow_plain_http=bool(store.get_setting(HUB_ALLOW_HTTP)), raise_counter=link.raise_counter,
                       ca_bundle=store.get_setting(HUB_CA_BUNDLE) or None,
                       clock=lambda: store.clock().timestamp())
    client.columns = store.get_setting(HUB_WIRE) == WIRE_COLUMNS   # learnt from the hub's answers last time
    return client


def make_engine(store: Store, paths: DataPaths) -> tuple[SyncEngine, LocalSync]:
    client = signed_client(store, paths)
    local = LocalSync(store, MediaFiles(paths.media, store.key))
    return SyncEngine(client, local.outbox, local.inbox, local.media), local


def sync_once(store: Store, paths: DataPaths, progress=None, cancel=None, verify: bool | None = None) -> SyncReport:
    """One round. verify: compare with the hub and resync if they differ (None: when the last check is older
    than CHECK_EVERY)."""
    _require_setup(store)
    engine, local = make_engine(store, paths)
    local.outbox.restamp_ahead()       # a clock that was far ahead and has been put right
    applier = f"{__version__} ({', '.join(APPLIED)})"
    if store.get_setting(APP_VERSION) != applier:
        local.inbox.retry_held()       # a new version may apply what an older one held back or did not know
        store.set_setting(APP_VERSION, applier)
    if verify is None:
        last = store.get_setting(LAST_CHECK)
        verify = not last or datetime.fromisoformat(last) < store.clock() - CHECK_EVERY
    report = engine.run_once(progress, cancel, verify=verify)
    if report.error is None:
        from spoke_client.services.bundles import ensure_box_key

        ensure_box_key(store, paths, engine.client)   # once: an enrolled PC learns the hub's key for USB bundles
    with store.write(None) as w:
        if report.checked and report.error is None:
            w.set_setting(LAST_CHECK, w.now.isoformat())
        if report.error is None:
            w.set_setting(LAST_SYNC, w.now.isoformat())
        w.set_setting(LAST_ERROR, report.error or "")
        if report.clock_offset_ms is not None:
            w.set_setting(CLOCK_OFFSET, str(report.clock_offset_ms))
        w.set_setting(HUB_WIRE, WIRE_COLUMNS if engine.client.columns else "")
        w.audit("sync", "hub", "", f"pushed {report.pushed}, pulled {report.pulled}, error {report.error_kind or '-'}")
    if report.error:
        log.warning("sync with %s: %s (%s)", engine.client.base_url, report.error_kind, report.error)
    else:
        log.info("sync with %s: pushed %d, pulled %d, files up %d down %d", engine.client.base_url, report.pushed,
                 report.pulled, report.files_uploaded, report.files_fetched)
    return report


def sync_status(store: Store) -> SyncStatus:
    local = LocalSync(store)
    advice = clock_advice(HubLink(store).clock_offset_ms())
    return SyncStatus(enrolled=bool(store.get_setting(HUB_URL)), hub_url=store.get_setting(HUB_URL, "") or "",
                      facility_name=store.get_setting(HUB_FACILITY_NAME, "") or "", pending=local.pending(),
                      pending_cases=local.outbox.pending_cases(), pending_files=local.pending_files(),
                      quarantined=len(local.refused()), last_sync=parse_when(store.get_setting(LAST_SYNC)),
                      last_error=store.get_setting(LAST_ERROR, "") or "", clock_warning=advice.sentence if advice else "")
