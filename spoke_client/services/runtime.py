"""Opening the local store: integrity check, last-good copies, migrations, and the services on top."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Engine

from spoke_client.db import migrate
from spoke_client.db.engine import backup_to, integrity_problems, make_engine
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
from spoke_client.services.media import AttachmentService, MediaFiles
from spoke_client.services.patients import PatientService
from spoke_client.services.settings import SettingsService
from spoke_client.services.store import Store

KEEP_DAILY_COPIES = 7
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

    def close(self) -> None:
        self.engine.dispose()


def open_services(paths: DataPaths, *, keep_good_copy: bool = False) -> Services:
    paths.ensure()
    problems = integrity_problems(paths.database)
    if problems:
        raise DamagedDatabase(problems, last_good_copy(paths))
    engine = make_engine(paths.database)
    report = migrate.upgrade(engine, paths.database, paths.backups)
    store = Store(engine)
    services = Services(
        paths=paths, engine=engine, store=store, auth=AuthService(store), patients=PatientService(store),
        cases=CaseService(store), drafts=DraftService(store), audit=AuditService(store),
        attachments=AttachmentService(store, MediaFiles(paths.media)), conflicts=ConflictService(store),
        devices=DeviceService(store), migration=report, settings=SettingsService(store),
        consultation=ConsultationService(store), printing=PrintService(store),
    )
    if keep_good_copy:
        take_good_copy(paths)
    return services


def good_copies(paths: DataPaths) -> list[Path]:
    if not paths.backups.exists():
        return []
    return sorted(paths.backups.glob(f"{GOOD_COPY_PREFIX}*.sqlite"), reverse=True)


def last_good_copy(paths: DataPaths) -> Path | None:
    for copy in good_copies(paths):
        if not integrity_problems(copy):
            return copy
    return None


def take_good_copy(paths: DataPaths, now: datetime | None = None, min_age: timedelta = timedelta(hours=20)) -> Path | None:
    """After a clean integrity check: a dated copy, at most about one a day, the last few kept."""
    now = now or datetime.now(timezone.utc)
    copies = good_copies(paths)
    if copies and now - _copy_time(copies[0]) < min_age:
        return None
    target = paths.backups / f"{GOOD_COPY_PREFIX}{now.strftime('%Y%m%dT%H%M%SZ')}.sqlite"
    backup_to(paths.database, target)
    for old in good_copies(paths)[KEEP_DAILY_COPIES:]:
        old.unlink(missing_ok=True)
    return target


def restore_good_copy(paths: DataPaths, copy: Path, now: datetime | None = None) -> Path:
    """Move the damaged file (and its WAL) aside, never deleting it, and put the good copy in its place."""
    now = now or datetime.now(timezone.utc)
    paths.quarantine.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    kept = paths.quarantine / f"spoke-damaged-{stamp}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(paths.database) + suffix)
        if src.exists():
            shutil.move(src, Path(str(kept) + suffix))
    backup_to(copy, paths.database)
    return kept


def _copy_time(path: Path) -> datetime:
    stamp = path.stem.removeprefix(GOOD_COPY_PREFIX)
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
