"""spoke-client selfcheck: is the database sound and current, are the resources there? A short report."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from spoke_client.db import migrate
from spoke_client.db.engine import database_kind, integrity_problems
from spoke_client.db.models import CaseRow, ChangeRow, PatientRow, UserRow
from spoke_client.domain.errors import SpokeError
from spoke_client.i18n import LOCALE_DIR, RESOURCES, _
from spoke_client.paths import DataPaths
from spoke_client.services.runtime import last_good_copy, open_services
from spoke_client.services.vault import key_slots
from spoke_client.services.search import count_indexed


@dataclass
class SelfcheckReport:
    lines: list[str] = field(default_factory=list)
    ok: bool = True

    def check(self, good: bool, text: str) -> None:
        self.lines.append(("[ok]   " if good else "[FAIL] ") + text)
        self.ok = self.ok and good

    def info(self, text: str) -> None:
        self.lines.append("       " + text)


def run_selfcheck(paths: DataPaths, key: bytes | None = None) -> SelfcheckReport:
    """The data folder, the database (an encrypted one with `key`, from a user's sign-in), resources, fonts, search
    and devices."""
    r = SelfcheckReport()
    r.info(_("data folder: {d}").format(d=paths.root))
    kind = database_kind(paths.database)
    if kind == "encrypted" and key is None:
        slots = key_slots(paths)
        r.check(slots.exists, _("database encrypted; users with a key: {n}; a recovery key: yes").format(
            n=len(slots.ids())))
        r.info(_("sign in (spoke-client --user NAME selfcheck) to check what it holds"))
        _checks_without_data(r)
        return r
    r.info(_("database encrypted (SQLCipher)") if kind == "encrypted" else
           _("database not encrypted yet: the next administrator's sign-in encrypts it") if kind == "clear" else
           _("no database yet"))
    problems = integrity_problems(paths.database, key)
    r.check(not problems, _("database integrity") + (f": {problems[0]}" if problems else ""))
    if problems:
        good = last_good_copy(paths, key)
        r.info(_("last good copy: {c}").format(c=good or _("none")))
        return r
    try:
        services = open_services(paths, key=key)
    except SpokeError as exc:
        r.check(False, exc.message)
        return r
    try:
        rep = services.migration
        r.check(migrate.current_revision(services.engine) == migrate.head_revision(),
                _("schema at revision {rev}").format(rev=migrate.head_revision())
                + (_(" (upgraded from {old})").format(old=rep.from_revision) if rep.upgraded and rep.from_revision else ""))
        with services.store.read() as s:
            patients = s.scalar(select(func.count()).select_from(PatientRow)) or 0
            cases = s.scalar(select(func.count()).select_from(CaseRow)) or 0
            users = s.scalar(select(func.count()).select_from(UserRow)) or 0
            pending = s.scalar(select(func.count()).select_from(ChangeRow).where(ChangeRow.pushed_at.is_(None))) or 0
            indexed = count_indexed(s)
        r.check(indexed == patients, _("search index covers {i:,} of {p:,} patients").format(i=indexed, p=patients))
        r.info(_("{u} users, {p:,} patients, {c:,} cases, {n:,} changes not yet sent to the hub").format(
            u=users, p=patients, c=cases, n=pending))
        facility = services.auth.facility()
        r.info(_("facility: {f}").format(f=f"{facility.name} ({facility.hwc_id})" if facility else _("not set up yet")))
    finally:
        services.close()
    _checks_without_data(r)
    return r


def _checks_without_data(r: SelfcheckReport) -> None:
    r.check(RESOURCES.is_dir(), _("resources folder {d}").format(d=RESOURCES))
    catalogs = sorted(p.parent.parent.name for p in LOCALE_DIR.glob("*/LC_MESSAGES/spoke.mo"))
    r.info(_("translations: {langs}").format(langs=", ".join(["en"] + catalogs)))
    _print_fonts(r)
    try:
        import sqlite3

        con = sqlite3.connect(":memory:")
        con.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='trigram')")
        con.close()
        r.check(True, _("SQLite {v} with FTS5 trigram search").format(v=sqlite3.sqlite_version))
    except Exception as exc:  # noqa: BLE001 - any failure here means search cannot work
        r.check(False, _("SQLite FTS5 trigram search is missing: {e}").format(e=exc))
    try:
        from sqlcipher3 import dbapi2 as sqlcipher

        con = sqlcipher.connect(":memory:")
        version = con.execute("PRAGMA cipher_version").fetchone()[0]
        con.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='trigram')")
        con.close()
        r.check(True, _("SQLCipher {v} (the encrypted database) with FTS5 trigram search").format(v=version))
    except Exception as exc:  # noqa: BLE001 - without it no data can be opened
        r.check(False, _("SQLCipher is missing or broken: {e}").format(e=exc))
    _devices(r)


def _print_fonts(r: SelfcheckReport) -> None:
    """Each language a prescription can be printed in has the Noto fonts of its scripts in resources/fonts."""
    from spoke_client.services import fonts, rx_pdf

    for language in rx_pdf.languages():
        tr = rx_pdf.translation(language)
        sample = " ".join(tr.gettext(m) for m in ("Medicines", "Patient", "This prescription is generated on a "
                                                                        "teleconsultation", "twice a day"))
        needed = sorted(fonts.scripts_in(sample) | {fonts.LATIN})
        missing = [fonts.font_file(script).name for script in needed if not fonts.font_file(script).exists()]
        r.check(not missing, _("printing in {lang}: fonts {fonts}").format(
            lang=language, fonts=", ".join(missing) + _(" missing") if missing else ", ".join(needed)))
    try:   # the whole chain of a paper: reportlab, HarfBuzz shaping, the fonts, the QR code, and reading it back
        import io
        import time

        from reportlab.platypus import SimpleDocTemplate

        from spoke_client.services.rx_verify import codes_in_image, images_of

        started = time.perf_counter()
        out = io.BytesIO()
        SimpleDocTemplate(out).build([rx_pdf._p("दवाइयाँ / Medicines", rx_pdf._Styles("A5").body),
                                      rx_pdf._QR("selfcheck", 40 * 2.835)])
        made = (time.perf_counter() - started) * 1000
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            pdf = Path(tmp) / "selfcheck.pdf"
            pdf.write_bytes(out.getvalue())
            read = codes_in_image(images_of(pdf)[0])
        r.check(read == ["selfcheck"], _("a test paper made in {ms:.0f} ms (Hindi shaped, QR code read back)").format(
            ms=made))
    except Exception as exc:  # noqa: BLE001 - any failure here means prescriptions cannot be printed
        r.check(False, _("a test paper could not be made: {e}").format(e=exc))


def _devices(r: SelfcheckReport) -> None:
    """Cameras and microphones are information, not failures: a PC without them still does everything else."""
    try:
        from spoke_client.services.camera import list_cameras

        cams = list_cameras()
        r.info(_("cameras: {c}").format(c=", ".join(str(i) for i in cams) if cams else
                                        _("none found (an IP camera can still be used by its address)")))
    except Exception as exc:  # noqa: BLE001
        r.info(_("cameras: could not be listed ({e})").format(e=exc))
    try:
        from spoke_client.services.audio import list_input_devices

        mics = list_input_devices()
        r.info(_("microphones: {m}").format(m="; ".join(d.name + (" " + _("(default)") if d.default else "") for d in mics)
                                            if mics else _("none found")))
    except SpokeError as exc:
        r.info(_("microphones: {e}").format(e=exc.message))
