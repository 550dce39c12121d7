"""Schema migrations: the golden database of every released schema upgrades with every record and its sync state
kept; the models match what the migrations make; a failed upgrade puts the copy back."""

import shutil
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from spoke_client.db import migrate
from spoke_client.db.engine import make_engine
from spoke_client.db.models import Base
from spoke_client.paths import DataPaths
from spoke_client.services.runtime import open_services
from spoke_client.services.sync_local import LocalSync

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "db"
MAKE_GOLDEN = ".venv/bin/python tests/fixtures/db/make_golden.py"
# Made by the raw SQL of 0001, not by the models: the FTS5 patient index (a virtual table and the shadow tables
# SQLite keeps for it) and the triggers that fill it and keep the audit log append-only.
FTS_TABLES = "patient_fts"
RAW_SQL_OBJECTS = {"patient_fts": "table", "patient_fts_ai": "trigger", "patient_fts_ad": "trigger",
                   "patient_fts_au": "trigger", "audit_log_no_update": "trigger", "audit_log_no_delete": "trigger"}
FIRST_WITH_SYNC_STATE = 3   # the golden databases of schema 0001 and 0002 were made before the scenario had any


def golden_databases() -> list[Path]:
    return sorted(FIXTURES.glob("schema-*.sqlite"))


def revision_of(golden: Path) -> str:
    return golden.stem.removeprefix("schema-")


def with_sync_state() -> list[Path]:
    return [p for p in golden_databases() if int(revision_of(p)) >= FIRST_WITH_SYNC_STATE]


def test_there_is_a_golden_database_for_the_first_schema():
    assert [p.name for p in golden_databases()][:1] == ["schema-0001.sqlite"]


def test_there_is_a_golden_database_for_every_schema():
    revisions = {s.revision for s in ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions()}
    missing = sorted(revisions - {revision_of(p) for p in golden_databases()})
    assert not missing, f"no golden database for schema {', '.join(missing)}: make it with {MAKE_GOLDEN}"
    assert len(with_sync_state()) >= 2   # 0003 and 0004 at least


@pytest.mark.parametrize("golden", golden_databases(), ids=lambda p: p.name)
def test_each_golden_database_is_at_the_schema_its_name_says(golden):
    assert _query(golden, "SELECT version_num FROM alembic_version") == [(revision_of(golden),)]


@pytest.mark.parametrize("golden", golden_databases(), ids=lambda p: p.name)
def test_every_released_schema_upgrades_with_no_record_lost(tmp_path, golden):
    before = _rows(golden)
    services, paths = _upgraded(tmp_path, golden)
    try:
        assert migrate.current_revision(services.engine) == migrate.head_revision()
        after = _rows(paths.database)
        for table, rows in before.items():
            lost = [key for key in rows if key not in after[table]]
            # Every value a row had before is still there (new columns may be added beside them).
            changed = [key for key, row in rows.items() if key in after[table]
                       and {c: after[table][key][c] for c in row} != row]
            assert (lost, changed) == ([], []), f"{table}: rows lost {lost}, rows changed {changed}"
        assert before["patient"] and before["clinical_case"] and before["vitals"] and before["change_log"]
        assert _raw_sql_objects(paths.database) == RAW_SQL_OBJECTS
        hits = services.patients.search("kamla")
        assert hits, "the search index must survive the upgrade"
    finally:
        services.close()


@pytest.mark.parametrize("golden", with_sync_state(), ids=lambda p: p.name)
def test_the_golden_database_holds_the_states_the_upgrade_must_keep(golden):
    """Guards the test below against a golden database that lacks a state (it would then check nothing)."""
    s = _SyncState(golden)
    assert s.pushed and s.unpushed and s.quarantined
    assert all(reason for _id, _at, reason in s.quarantined)
    assert s.settings["hub_url"] and s.settings["hub_facility_id"]
    assert int(s.settings["hub_cursor"]) > 0 and int(s.settings["hub_counter"]) > 0
    assert s.applied and s.unapplied
    assert s.conflicts_open and s.conflicts_resolved
    assert {kind for _id, _case, kind, _sha in s.attachments} == {"photo", "audio", "document"}
    assert {(present, uploaded is not None) for present, uploaded in s.blobs.values()} == {
        (1, True), (1, False), (0, True)}   # sent; not sent yet; made on another PC and not fetched yet
    if int(revision_of(golden)) >= 4:
        assert s.paired_devices
        assert _query(golden, "SELECT count(*) FROM vitals WHERE device_status != '[]' AND measured_at IS NOT NULL")[0][0]
    if int(revision_of(golden)) >= 6:
        # The hub doctor's console: an allergy, a speciality, assessed vitals, a question answered, a prescription
        # cancelled and its correction, both with their signatures checked.
        assert _query(golden, "SELECT count(*) FROM patient WHERE allergies != '[]'")[0][0]
        assert _query(golden, "SELECT count(*) FROM clinical_case WHERE speciality != ''")[0][0]
        assert _query(golden, "SELECT count(*) FROM vitals WHERE assessment IS NOT NULL")[0][0]
        assert _query(golden, "SELECT count(*) FROM case_answer JOIN case_question q ON q.id = question_id")[0][0]
        assert sorted(_query(golden, "SELECT status, signature_ok FROM prescription")) == [("cancelled", 1), ("issued", 1)]
    tables = [t for (t,) in _query(golden, "SELECT name FROM sqlite_master WHERE type = 'table' "
                                           f"AND name NOT LIKE '{FTS_TABLES}%' AND name NOT LIKE 'sqlite_%'")]
    assert [t for t in tables if not _query(golden, f"SELECT count(*) FROM {t}")[0][0]] == []
    assert any("kamla" in name.lower() for (name,) in _query(golden, "SELECT name FROM patient"))


@pytest.mark.parametrize("golden", with_sync_state(), ids=lambda p: p.name)
def test_sync_state_and_attachments_survive_the_upgrade(tmp_path, golden):
    was = _SyncState(golden)
    services, paths = _upgraded(tmp_path, golden)
    try:
        now = _SyncState(paths.database)
        # A pushed change stays pushed (it is never sent again), an unpushed one still waits, and a quarantined one
        # keeps the hub's reason.
        assert now.pushed == was.pushed and now.unpushed == was.unpushed and now.quarantined == was.quarantined
        local = LocalSync(services.store)
        assert local.pending() == len(was.unpushed)
        assert [(r.key, r.reason) for r in local.refused() if r.kind == "change"] == [
            (change_id, reason) for change_id, _at, reason in was.quarantined]
        # The hub connection and where the pull had got to.
        for key in ("hub_url", "hub_cursor", "hub_counter", "hub_facility_id"):
            assert now.settings[key] == was.settings[key], key
        assert local.inbox.cursor() == int(was.settings["hub_cursor"])
        # What was pulled and applied stays applied; what this version could not apply still waits.
        assert now.applied == was.applied and now.unapplied == was.unapplied
        assert all(applied is None for _seq, _entity, applied in now.unapplied)
        # From schema 0005: a pulled record that could not be applied is still held, with its reason, for the user.
        held = [r for r in local.refused() if r.kind == "pulled"]
        if revision_of(golden) >= "0005":
            assert held and all("birth_date" in r.reason for r in held), held
        # Conflict records, open and settled.
        assert (now.conflicts_open, now.conflicts_resolved) == (was.conflicts_open, was.conflicts_resolved)
        assert services.conflicts.open_count() == len(was.conflicts_open)
        # Attachments keep their file's SHA-256, and each file its upload state.
        assert now.attachments == was.attachments and now.blobs == was.blobs
        for attachment_id, case_id, _kind, sha256 in was.attachments:
            listed = {a.id: a.sha256 for a in services.attachments.list(case_id, include_withdrawn=True)}
            assert listed[attachment_id] == sha256
        # Every case and its patient read back through the services, whatever schema they were written by.
        for (case_id,) in _query(golden, "SELECT id FROM clinical_case"):
            case = services.cases.get(case_id)
            services.cases.patient_of(case)
            services.consultation.questions(case_id)
            assert all(p.signature_ok for p in services.consultation.prescriptions(case_id))
        assert len(services.consultation.received()) == (2 if int(revision_of(golden)) >= 6 else 0)
        assert now.paired_devices == was.paired_devices
        if was.paired_devices:
            assert sorted(d.address for d in services.devices.paired()) == sorted(a for _id, a, _n in was.paired_devices)
    finally:
        services.close()


# --- the models against the migrations ---------------------------------------------------------------------
def _include_object(obj, name, type_, reflected, compare_to) -> bool:
    # The FTS5 patient index and its shadow tables are made by raw SQL in 0001 and cannot be declared as models
    # (env.py leaves them out of autogenerate for the same reason); they are checked by RAW_SQL_OBJECTS instead.
    # Triggers need no exclusion: autogenerate does not reflect them.
    return not (type_ == "table" and name.startswith(FTS_TABLES))


@pytest.mark.parametrize("start", [None, *golden_databases()], ids=lambda p: "empty" if p is None else p.name)
def test_the_models_match_what_the_migrations_make(tmp_path, start):
    """From an empty database, and from each golden one: the schema at head is the one models.py declares."""
    db = tmp_path / "spoke.sqlite"
    if start is not None:
        shutil.copy(start, db)
    engine = make_engine(db)
    try:
        migrate.upgrade(engine, db, tmp_path / "backups")
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "compare_type": True, "compare_server_default": True, "include_object": _include_object})
            differences = [d for d in _flat(compare_metadata(context, Base.metadata)) if not _same_default(d)]
    finally:
        engine.dispose()
    assert differences == []
    assert _raw_sql_objects(db) == RAW_SQL_OBJECTS


def _flat(diffs: list) -> list[tuple]:
    # Column changes come grouped in a list per column; table and index changes come alone.
    return [d for item in diffs for d in (item if isinstance(item, list) else [item])]


def _same_default(diff: tuple) -> bool:
    """A server default written two ways. The reflected default of clinical_case.hub_note (0002 adds it with
    server_default="") comes back as the SQL text ('') while the model declares "", and Alembic's SQLite
    comparison strips the parentheses and quotes only around a non-empty string, so it reports a difference
    where migration and model say the same. Any other default difference is real."""
    if diff[0] != "modify_default":
        return False
    reflected, declared = diff[5], diff[6]
    return reflected is not None and declared is not None and _literal(reflected) == _literal(declared)


def _literal(default) -> str:
    text = (default.arg if isinstance(default.arg, str) else str(default.arg.text)).strip()
    while len(text) >= 2 and text[0] == "(" and text[-1] == ")":
        text = text[1:-1].strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    return text


# --- helpers -----------------------------------------------------------------------------------------------
def _upgraded(tmp_path: Path, golden: Path):
    paths = DataPaths(tmp_path / "data")
    paths.ensure()
    shutil.copy(golden, paths.database)
    return open_services(paths), paths


def _query(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _rows(db: Path) -> dict[str, dict[tuple, dict]]:
    """Every row of every table but the search index's and Alembic's, keyed by primary key, as SQLite stores it."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE ? AND name NOT LIKE 'sqlite_%' "
            "AND name != 'alembic_version'", (f"{FTS_TABLES}%",))]
        out = {}
        for t in tables:
            info = con.execute(f"PRAGMA table_info({t})").fetchall()
            key = [c["name"] for c in sorted(info, key=lambda c: c["pk"]) if c["pk"]] or [c["name"] for c in info]
            out[t] = {tuple(r[k] for k in key): dict(r) for r in con.execute(f"SELECT * FROM {t}")}
        return out
    finally:
        con.close()


def _raw_sql_objects(db: Path) -> dict[str, str]:
    names = "', '".join(RAW_SQL_OBJECTS)
    return dict(_query(db, f"SELECT name, type FROM sqlite_master WHERE name IN ('{names}')"))


class _SyncState:
    """The sync state and attachments of a database, read with plain SQL (so the same for every schema)."""

    def __init__(self, db: Path) -> None:
        def q(sql: str) -> list[tuple]:
            return _query(db, sql)

        tables = {t for (t,) in q("SELECT name FROM sqlite_master WHERE type = 'table'")}
        self.pushed = q("SELECT change_id, pushed_at FROM change_log WHERE pushed_at IS NOT NULL ORDER BY seq")
        self.unpushed = q("SELECT change_id FROM change_log WHERE pushed_at IS NULL AND rejected_at IS NULL ORDER BY seq")
        self.quarantined = q("SELECT change_id, rejected_at, rejected_reason FROM change_log "
                             "WHERE rejected_at IS NOT NULL ORDER BY seq")
        self.settings = dict(q("SELECT key, value FROM setting"))
        self.applied = q("SELECT seq, entity, applied_at FROM hub_inbox WHERE applied_at IS NOT NULL ORDER BY seq")
        self.unapplied = q("SELECT seq, entity, applied_at FROM hub_inbox WHERE applied_at IS NULL ORDER BY seq")
        self.conflicts_open = q("SELECT id, entity_id, field, kept_value, lost_value FROM sync_conflict "
                                "WHERE resolved_at IS NULL ORDER BY id")
        self.conflicts_resolved = q("SELECT id, field, resolved_at, resolved_by FROM sync_conflict "
                                    "WHERE resolved_at IS NOT NULL ORDER BY id")
        self.attachments = q("SELECT id, case_id, kind, sha256 FROM attachment ORDER BY id")
        self.blobs = {sha: (present, uploaded) for sha, present, uploaded in
                      q("SELECT sha256, present, uploaded_at FROM media_blob")}
        self.paired_devices = (q("SELECT id, address, name FROM paired_device ORDER BY id")
                               if "paired_device" in tables else [])


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
