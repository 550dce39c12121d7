"""Schema migrations: a database made by the first schema upgrades with every record kept; failures restore."""

import shutil
import sqlite3
from pathlib import Path

import pytest

from spoke_client.db import migrate
from spoke_client.db.engine import make_engine
from spoke_client.paths import DataPaths
from spoke_client.services.runtime import open_services

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "db"


def golden_databases() -> list[Path]:
    return sorted(FIXTURES.glob("schema-*.sqlite"))


def test_there_is_a_golden_database_for_the_first_schema():
    assert [p.name for p in golden_databases()][:1] == ["schema-0001.sqlite"]


@pytest.mark.parametrize("golden", golden_databases(), ids=lambda p: p.name)
def test_every_released_schema_upgrades_with_no_record_lost(tmp_path, golden):
    paths = DataPaths(tmp_path / "data")
    paths.ensure()
    shutil.copy(golden, paths.database)
    before = _counts(paths.database)
    services = open_services(paths)
    try:
        assert migrate.current_revision(services.engine) == migrate.head_revision()
        after = _counts(paths.database)
        assert all(after[t] >= n for t, n in before.items()), (before, after)
        assert before["patient"] > 0 and before["clinical_case"] > 0
        hits = services.patients.search("kamla")
        assert hits, "the search index must survive the upgrade"
    finally:
        services.close()


def _counts(db: Path) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'patient_fts%' AND name NOT LIKE 'sqlite_%'")]
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        con.close()


BROKEN = """
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("DELETE FROM vitals")
    op.execute("DELETE FROM consent")
    op.execute("DELETE FROM clinical_case")
    op.execute("DELETE FROM patient")
    raise RuntimeError("disk full")
"""


def test_a_failed_upgrade_puts_the_copy_back(tmp_path, monkeypatch):
    """A real migration script that destroys rows and then fails: the pre-upgrade copy comes back."""
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9999_broken.py").write_text(BROKEN.format(head=migrate.head_revision()))
    paths = DataPaths(tmp_path / "data")
    paths.ensure()
    shutil.copy(golden_databases()[0], paths.database)
    original = _counts(paths.database)
    monkeypatch.setattr(migrate, "MIGRATIONS", scripts)
    engine = make_engine(paths.database)
    with pytest.raises(migrate.MigrationFailed, match="put back"):
        migrate.upgrade(engine, paths.database, paths.backups)
    assert _counts(paths.database) == original
    assert list(paths.backups.glob("pre-upgrade-*.sqlite"))
