"""The Linux one-folder bundle (PyInstaller, installer/spoke.spec) built for real and started offscreen: its
selfcheck passes on a fresh data folder, and it upgrades a database made by the first schema with every
record kept. (About 40 s: the build is the slow part.)"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "fixtures" / "db" / "schema-0001.sqlite"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    pyinstaller = Path(sys.executable).with_name("pyinstaller")
    if not pyinstaller.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pyinstaller>=6.10"], check=True)
    subprocess.run([str(pyinstaller), "--noconfirm", "--log-level", "ERROR", "--distpath", str(out / "dist"),
                    "--workpath", str(out / "work"), str(ROOT / "installer" / "spoke.spec")], check=True, cwd=ROOT,
                   capture_output=True)
    exe = out / "dist" / "spoke" / "spoke"
    assert exe.exists()
    size_mb = sum(f.stat().st_size for f in exe.parent.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6
    print(f"\nbundle: {size_mb:.0f} MB in {exe.parent}")
    return exe


def run(exe: Path, data: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([str(exe), "--data-dir", str(data), *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd="/")


def test_the_bundle_checks_itself_on_a_fresh_folder(bundle, tmp_path):
    p = run(bundle, tmp_path / "data", "selfcheck")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "[FAIL]" not in p.stdout
    for line in ("schema at revision", "resources folder", "translations: en, hi", "FTS5 trigram",
                 "Qt 6", "a font for Devanagari", "printing in hi: fonts Devanagari, Latin",
                 "a test paper made in"):
        assert line in p.stdout, (line, p.stdout)
    assert str(bundle.parent) in p.stdout, "the resources come from inside the bundle"


def test_the_bundle_upgrades_the_first_schema_keeping_every_record(bundle, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    db = data / "spoke.sqlite"
    shutil.copy(GOLDEN, db)
    before = counts(db)
    p = run(bundle, data, "selfcheck")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "(upgraded from 0001)" in p.stdout
    after = counts(db)
    assert before["patient"] > 0 and all(after[t] >= n for t, n in before.items()), (before, after)
    assert list((data / "backups").glob("pre-upgrade-0001-*.sqlite")), "a copy was taken before the upgrade"
    p = run(bundle, data, "export-fhir", "--all", "--out", str(tmp_path / "fhir"))
    assert p.returncode == 0 and len(list((tmp_path / "fhir").glob("case-*.json"))) == before["clinical_case"]


def counts(db: Path) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                            "AND name NOT LIKE 'patient_fts%' AND name NOT LIKE 'sqlite_%'")]
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        con.close()
