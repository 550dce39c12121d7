"""Opening the local store: integrity check, last-good copies, migrations, and the services on top."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Engine

from spoke_client.db import migrate
from spoke_client.db.engine import backup_to, database_kind, integrity_problems, make_engine
from spoke_client.domain.errors import DatabaseDamaged
from spoke_client.i18n import _
from spoke_client.paths import DataPaths
from spoke_client.services.audit import AuditService
from spoke_client.services.auth import AuthService
from spoke_client.services.cases import CaseService
from spoke_client.services.conflicts import ConflictService
from spoke_client.services.consultation import ConsultationService
from spoke_client.services.printing import PrintService
from spoke_client.services.devices import DeviceService
from spoke_client.services.drafts import DraftService
from spoke_client.services.media import AttachmentService, MediaFiles, sweep_view_copies
from spoke_client.services.patients import PatientService
from spoke_client.services.settings import SettingsService
from spoke_client.services.store import Store
from spoke_client.services.vault import DataLocked, KeyRing, key_slots, resume_conversion, seal_set_aside

log = logging.getLogger(__name__)
KEEP_DAILY_COPIES = 7
MEDIA_SEALED = "media_sealed_v1"   # set once every media file of this store is sealed
GOOD_COPY_PREFIX = "good-"


class DamagedDatabase(DatabaseDamaged):
    def __init__(self, problems: list[str], last_good: Path | None) -> None:
        self.problems = problems
        self.last_good = last_good
        text = _("The database on this computer failed its integrity check ({problem}).").format(problem=problems[0])
        if last_good:
            text += " " + _("A last good copy from {when} can be restored; the damaged file will be kept aside.").format(
                when=_copy_time(last_good).strftime("%d %b %Y %H:%M"))
        else:
            text += " " + _("No good copy was found. Call your district technician; do not delete the file.")
        super().__init__(text)


@dataclass
class Services:
    paths: DataPaths
    engine: Engine
    store: Store
    auth: AuthService
    patients: PatientService
    cases: CaseService
    drafts: DraftService
    audit: AuditService
    attachments: AttachmentService
    conflicts: ConflictService
    devices: DeviceService
    migration: migrate.MigrationReport
    settings: SettingsService
    consultation: ConsultationService
    printing: PrintService
    keys: KeyRing | None = None     # None: a database from before encryption, until an administrator signs in

    @property
    def key(self) -> bytes | None:
        return self.keys.key if self.keys is not None else None

    def close(self) -> None:
        self.engine.dispose()


def open_services(paths: DataPaths, *, key: bytes | None = None, keep_good_copy: bool = False) -> Services:
    """The store of `paths`. A new data folder gets an encrypted database with a fresh key (set-up then writes the
    key slots); an encrypted one needs its key (vault.Gate gets it from a sign-in); a clear one, from a release
    before encryption, opens without a key until an administrator's sign-in converts it."""
    from spoke_client.services.keyslots import new_key

    paths.ensure()
    resume_conversion(paths)
    kind = database_kind(paths.database)
    if kind == "encrypted" and key is None:
        if key_slots(paths).exists:
            raise DataLocked(_("The patient data on this computer is encrypted: sign in to open it."))
        _set_aside_unfinished_setup(paths)      # made encrypted, then set-up never finished: nothing to open
        kind = "new"
    if kind == "new":
        if key is None:
            # Key slots without a database open nothing: kept aside (with their copy), never deleted.
            for name, slots in (("keyslots-without-database", paths.keyslots),
                                ("keyslots-copy-without-database", paths.backups / paths.keyslots.name)):
                if slots.exists():
                    _set_aside(paths, slots, name)
            key = new_key()
    elif kind == "clear":
        key = None
    keys = KeyRing(paths, key) if key is not None else None
    if keys is not None and keys.ready and not keys.slots.opens(key):
        raise DataLocked(_("This key does not open the data on this computer."))
    problems = integrity_problems(paths.database, key)
    if problems:
        raise DamagedDatabase(problems, last_good_copy(paths, key))
    engine = make_engine(paths.database, key)
    report = migrate.upgrade(engine, paths.database, paths.backups, key)
    store = Store(engine)
    store.key = key
    services = Services(
        paths=paths, engine=engine, store=store, auth=AuthService(store, keys=keys), patients=PatientService(store),
        cases=CaseService(store), drafts=DraftService(store), audit=AuditService(store),
        attachments=AttachmentService(store, MediaFiles(paths.media, key)), conflicts=ConflictService(store),
        devices=DeviceService(store), migration=report, settings=SettingsService(store),
        consultation=ConsultationService(store), printing=PrintService(store), keys=keys,
    )
    if key is not None and store.get_setting(MEDIA_SEALED) != "1":
        sealed = services.attachments.files.seal_clear_files()   # files from before the encryption (once)
        with store.write(None) as w:
            w.set_setting(MEDIA_SEALED, "1")
        if sealed:
            log.info("sealed %d media files kept in clear from before the encryption", sealed)
    if key is not None:
        seal_set_aside(paths, key)      # a database set aside while the data was in clear (its WAL too)
    if key is not None and services.attachments.files.forget_clear_downloads():
        log.info("downloads kept in clear removed; they are fetched again, sealed")
    if key is not None and sweep_view_copies():
        log.info("clear copies left for the viewer by a Spoke that did not exit cleanly were removed")
    if keep_good_copy:
        take_good_copy(paths, key=key)
    return services


def _set_aside(paths: DataPaths, path: Path, name: str) -> Path:
    paths.quarantine.mkdir(parents=True, exist_ok=True)
    kept = paths.quarantine / f"{name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}{path.suffix}"
    shutil.move(path, kept)
    return kept


def _set_aside_unfinished_setup(paths: DataPaths) -> None:
    """An encrypted database with no key slots anywhere is a set-up that stopped before its administrator was
    made (the slots are written with the administrator): moved aside, never deleted, and set-up starts again."""
    for suffix in ("-wal", "-shm"):
        side = Path(str(paths.database) + suffix)
        if side.exists():
            _set_aside(paths, side, "unfinished-setup" + suffix)
    _set_aside(paths, paths.database, "unfinished-setup")


def good_copies(paths: DataPaths) -> list[Path]:
    if not paths.backups.exists():
        return []
    return sorted(paths.backups.glob(f"{GOOD_COPY_PREFIX}*.sqlite"), reverse=True)


def last_good_copy(paths: DataPaths, key: bytes | None = None) -> Path | None:
    """The newest copy that passes its check (an encrypted copy opens with the same key as the database)."""
    for copy in good_copies(paths):
        if database_kind(copy) == ("encrypted" if key is not None else "clear") and not integrity_problems(copy, key):
            return copy
    return None


def take_good_copy(paths: DataPaths, now: datetime | None = None, min_age: timedelta = timedelta(hours=20),
                   key: bytes | None = None) -> Path | None:
    """After a clean integrity check: a dated copy, at most about one a day, the last few kept."""
    now = now or datetime.now(timezone.utc)
    copies = good_copies(paths)
    if copies and now - _copy_time(copies[0]) < min_age:
        return None
    target = paths.backups / f"{GOOD_COPY_PREFIX}{now.strftime('%Y%m%dT%H%M%SZ')}.sqlite"
    backup_to(paths.database, target, key)
    for old in good_copies(paths)[KEEP_DAILY_COPIES:]:
        old.unlink(missing_ok=True)
    return target


def restore_good_copy(paths: DataPaths, copy: Path, now: datetime | None = None, key: bytes | None = None) -> Path:
    """Move the damaged file (and its WAL) aside, never deleting it, and put the good copy in its place."""
    now = now or datetime.now(timezone.utc)
    paths.quarantine.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    kept = paths.quarantine / f"spoke-damaged-{stamp}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(paths.database) + suffix)
        if src.exists():
            shutil.move(src, Path(str(kept) + suffix))
    backup_to(copy, paths.database, key)
    return kept


def _copy_time(path: Path) -> datetime:
    stamp = path.stem.removeprefix(GOOD_COPY_PREFIX)
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
