"""Kill the app while a case is being edited: on restart the draft is there and the database is sound."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from spoke_client.db.engine import integrity_problems
from spoke_client.services.patients import PatientForm
from spoke_client.services.runtime import open_services
from spoke_client.ui.case_editor import CaseEditor
from tests.conftest import ADMIN_PASSWORD

DRIVER = Path(__file__).resolve().parent / "kill_driver.py"


def test_kill_during_editing_loses_nothing_typed(qtbot, runner, paths, services, admin):
    kamla = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60))
    case = services.cases.open_case(admin, kamla.id)
    services.close()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, str(DRIVER), str(paths.root), case.id, ADMIN_PASSWORD],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("DRAFT-SAVED"):
                break
        assert "DRAFT-SAVED" in lines, (lines, proc.stderr.read() if proc.poll() is not None else "")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert integrity_problems(paths.database, services.key) == []

    again = open_services(paths, key=services.key)
    try:
        editor = CaseEditor(runner, again.cases, again.drafts, admin, case.id)
        qtbot.addWidget(editor)
        qtbot.waitUntil(editor.is_loaded, timeout=10_000)
        assert editor.complaints.values()["complaint_text"] == "chest pain since morning"
        assert editor.vitals.inputs["systolic_mmhg"].text() == "186"
        assert editor.vitals.inputs["diastolic_mmhg"].text() == "122"
        assert "Hypertensive crisis" in editor.banner.text()
        assert editor.notice.text().startswith("Unsaved changes")
    finally:
        runner.wait()
        again.close()
