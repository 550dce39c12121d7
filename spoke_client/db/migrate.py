"""Bring a database file to the current schema, taking a copy first and restoring it if the upgrade fails."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from spoke_client.db.engine import backup_to
from spoke_client.domain.errors import SpokeError
from spoke_client.i18n import _

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class MigrationFailed(SpokeError):
    pass


@dataclass(frozen=True)
class MigrationReport:
    from_revision: str | None
    to_revision: str
    backup: Path | None

    @property
    def upgraded(self) -> bool:
        return self.from_revision != self.to_revision


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, db_path: Path, backups_dir: Path, key: bytes | None = None,
            target: str = "head") -> MigrationReport:
    """The copy taken first is encrypted with the database's key, as the database is."""
    cfg = alembic_config()
    before = current_revision(engine)
    wanted = head_revision() if target == "head" else target
    if before == wanted:
        return MigrationReport(before, wanted, None)
    backup: Path | None = None
    if before is not None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        backup = backups_dir / f"pre-upgrade-{before}-{stamp}.sqlite"
        backup_to(db_path, backup, key)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, target)
    except Exception as exc:
        engine.dispose()
        if backup is not None:
            backup_to(backup, db_path, key)
            raise MigrationFailed(
                _("The database could not be upgraded ({error}). The copy taken before the upgrade "
                  "has been put back; nothing was lost. Copy: {backup}").format(error=exc, backup=backup)
            ) from exc
        raise MigrationFailed(_("The new database could not be created: {error}").format(error=exc)) from exc
    return MigrationReport(before, wanted, backup)
