"""One string catalog: the template is current with the code, Hindi translates all of it, nothing is translated at
import time (a label made then would not follow a language switch), and a language switches UI and clinical text."""

import ast
import gettext
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from spoke_client import i18n
from spoke_client.domain.redflags import PatientContext, assess
from spoke_client.domain.vitals import Vitals

ROOT = Path(__file__).resolve().parent.parent
POT = ROOT / "resources" / "locale" / "spoke.pot"


def msgids(text: str) -> set[str]:
    return set(re.findall(r'^msgid "(.+)"$', text, flags=re.M))


def test_the_template_holds_every_string_in_the_code(tmp_path):
    if not shutil.which("xgettext"):
        pytest.fail("xgettext is missing: ./dev.sh installs the Debian package gettext")
    files = sorted(str(p) for d in ("spoke_client", "sync") for p in (ROOT / d).rglob("*.py"))
    out = tmp_path / "fresh.pot"
    subprocess.run(["xgettext", "--language=Python", "--keyword=_", "--keyword=N_", "--keyword=ngettext:1,2",
                    "--from-code=UTF-8", "-o", str(out), *files], check=True, cwd=ROOT)
    missing = msgids(out.read_text()) - msgids(POT.read_text())
    assert not missing, f"run scripts/i18n.sh extract; not in the catalog: {sorted(missing)[:5]}"


def test_the_extraction_sees_strings_kept_in_constants():
    """The complaint pick-list, the device kinds and the like are kept in constants (stored and synced in English) and
    translated where shown: the N_ marker puts them in the catalog, which `_(variable)` alone would not."""
    assert "--keyword=N_" in (ROOT / "scripts" / "i18n.sh").read_text()
    pot = msgids(POT.read_text())
    from spoke_client.services.cases import COMMON_COMPLAINTS
    from spoke_client.services.devices import ADAPTERS

    assert not set(COMMON_COMPLAINTS) - pot
    assert not {a.kind for a in ADAPTERS.values()} - pot


# --- the Hindi catalog --------------------------------------------------------------------------------------------
HI_PO = ROOT / "resources" / "locale" / "hi" / "LC_MESSAGES" / "spoke.po"


def po_entries(path: Path) -> list[dict]:
    """Each entry of a .po file: msgid, msgid_plural, msgstr (a list: one, or one per plural form), flags."""
    def unquote(line: str) -> str:
        return ast.literal_eval(line)

    entries = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith("#~")]
        entry: dict = {"flags": set(), "msgstr": []}
        field = None
        for line in lines:
            if line.startswith("#,"):
                entry["flags"] |= {f.strip() for f in line[2:].split(",")}
            elif line.startswith(("msgid ", "msgid_plural ", "msgstr")):
                keyword, rest = line.split(" ", 1)
                field = keyword
                if keyword.startswith("msgstr"):
                    entry["msgstr"].append(unquote(rest))
                else:
                    entry[keyword] = unquote(rest)
            elif line.startswith('"') and field is not None:
                if field.startswith("msgstr"):
                    entry["msgstr"][-1] += unquote(line)
                else:
                    entry[field] += unquote(line)
        if entry.get("msgid"):
            entries.append(entry)
    return entries


def placeholders(text: str) -> list[str]:
    return sorted(re.findall(r"\{[^{}]*\}|%\([a-z_]+\)[sd]|%[sdvm]", text))


def test_hindi_translates_every_string_with_its_placeholders():
    """"Hindi throughout": nothing untranslated, nothing fuzzy (a guess msgmerge made), and each translation keeps the
    placeholders of its English ({name}, %(n)s...), so no sentence loses the value it carries."""
    entries = po_entries(HI_PO)
    missing = {e["msgid"] for e in po_entries(POT)} - {e["msgid"] for e in entries}
    assert not missing, f"run scripts/i18n.sh extract; not in the Hindi catalog: {sorted(missing)[:5]}"
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e["flags"]]
    assert not fuzzy, f"fuzzy in the Hindi catalog (check and translate them): {fuzzy[:10]}"
    empty = [e["msgid"] for e in entries if not all(e["msgstr"])]
    assert not empty, f"not translated in Hindi: {empty[:10]}"
    wrong = [e["msgid"] for e in entries for i, t in enumerate(e["msgstr"])
             if placeholders(t) != placeholders(e["msgid_plural"] if i and "msgid_plural" in e else e["msgid"])]
    assert not wrong, f"placeholders changed in the Hindi translation of: {wrong[:10]}"


@pytest.mark.parametrize("english, hindi_words", [
    ("Fever", "बुखार"), ("Cough", "खाँसी"), ("Loose motions", "दस्त"), ("Vomiting", "उल्टी"), ("Headache", "सिर दर्द"),
    ("Breathlessness", "साँस फूलना"), ("Burning urination", "पेशाब में जलन"), ("White discharge", "सफ़ेद पानी"),
    ("Body ache", "बदन दर्द"), ("Dizziness", "चक्कर"),
])
def test_the_complaint_pick_list_says_what_a_health_worker_says(english, hindi_words):
    catalog = gettext.translation(i18n.DOMAIN, i18n.LOCALE_DIR, languages=["hi"])
    assert hindi_words in catalog.gettext(english)


def test_the_languages_offered_are_named_in_their_own_language():
    offered = i18n.available_languages()
    assert offered[:2] == [("en", "English"), ("hi", "हिन्दी")]
    # Only a catalog that translates much of the screens is offered for them: one made for the printed paper alone
    # (a few labels) would show English screens.
    template = len(po_entries(POT))
    for mo in i18n.LOCALE_DIR.glob("*/LC_MESSAGES/spoke.mo"):
        code = mo.parent.parent.name
        translated = sum(1 for e in po_entries(mo.with_suffix(".po")) if all(e["msgstr"]) and "fuzzy" not in e["flags"])
        assert (code in dict(offered)) == (translated >= i18n.SCREEN_COVERAGE * template), code


def test_no_string_is_translated_when_a_module_is_imported():
    """A label made at import time (a module constant, a class attribute, a default argument) stays in the language
    of that moment: strings kept like that are marked N_ and translated where they are shown."""
    found = []
    for path in sorted((ROOT / "spoke_client").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))

        def visit(node: ast.AST) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    args = child.args
                    for expr in [*args.defaults, *(d for d in args.kw_defaults if d),
                                 *getattr(child, "decorator_list", [])]:
                        visit_expression(expr)
                    continue   # a body runs when called, in the language of then
                if (isinstance(child, ast.Call) and isinstance(child.func, ast.Name)
                        and child.func.id in ("_", "ngettext")):
                    found.append(f"{path.relative_to(ROOT)}:{child.lineno}")
                visit(child)

        def visit_expression(expr: ast.AST) -> None:
            for n in ast.walk(expr):
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("_", "ngettext"):
                    found.append(f"{path.relative_to(ROOT)}:{n.lineno}")

        visit(tree)
    assert not found, f"translated at import time (use N_ and translate where shown): {found}"


def test_dates_name_their_month_in_the_language(hindi):
    assert i18n.when_text(datetime(2026, 12, 1, 14, 5).astimezone()) == "01 दिसंबर 14:05"
    assert i18n.when_text(datetime(2026, 5, 9, 8, 0).astimezone(), year=True) == "09 मई 2026 08:00"


def test_dates_in_english_read_as_before():
    i18n.set_language("en")
    try:
        moment = datetime(2026, 12, 1, 14, 5).astimezone()
        assert i18n.when_text(moment) == moment.strftime("%d %b %H:%M") == "01 Dec 14:05"
    finally:
        i18n.set_language(None)


@pytest.fixture
def hindi():
    i18n.set_language("hi")
    yield
    i18n.set_language(None)


def test_hindi_catalog_translates_ui_and_red_flags(hindi):
    assert (ROOT / "resources/locale/hi/LC_MESSAGES/spoke.mo").exists(), "scripts/i18n.sh compile builds it"
    assert i18n._("Sign in to Spoke") == "Spoke में साइन इन करें"
    a = assess(Vitals(respiratory_rate_per_min=54, weight_kg=8), PatientContext(age_days=335))
    assert "आयु के अनुसार तेज़ साँस (2-12 महीने की आयु में >= 50/मिनट)।" in [f.message for f in a.flags]
    assert i18n._("A string nobody translated") == "A string nobody translated"


def test_hindi_login_screen_renders(hindi, qtbot, services):
    from spoke_client.ui.login import LoginDialog
    from spoke_client.ui.tasks import TaskRunner
    from tests.ui.conftest import SCREENSHOTS

    dialog = LoginDialog(TaskRunner(), services.auth, "HWC Rampur")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.windowTitle() == "Spoke में साइन इन करें"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert dialog.grab().save(str(SCREENSHOTS / "09-login-hindi.png"))
