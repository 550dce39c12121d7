"""One string catalog: the template is current with the code, and a language switches UI and clinical text."""

import re
import shutil
import subprocess
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
    subprocess.run(["xgettext", "--language=Python", "--keyword=_", "--keyword=ngettext:1,2", "--from-code=UTF-8",
                    "-o", str(out), *files], check=True, cwd=ROOT)
    missing = msgids(out.read_text()) - msgids(POT.read_text())
    assert not missing, f"run scripts/i18n.sh extract; not in the catalog: {sorted(missing)[:5]}"


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
