"""The suite's own guard: a log line holding patient data fails the whole run (tests/conftest.py)."""

import subprocess
import sys
from pathlib import Path

from tests.logcheck import find_patient_data

ROOT = Path(__file__).resolve().parent.parent


def test_the_guard_finds_a_name_a_village_and_what_the_mask_caught(tmp_path):
    log = tmp_path / "sample.log"   # not named like a program's log, so the run's own guard leaves it alone
    log.write_text("2026-12-01 INFO x sync with hub: pushed 3\n"
                   "2026-12-01 WARNING x could not apply patient Kamla Devi\n"
                   "2026-12-01 WARNING x village Bhagwanpur\n"
                   "2026-12-01 WARNING x phone <phone>\n", encoding="utf-8")
    found = [line for _where, line in find_patient_data([log])]
    assert len(found) == 3 and "pushed 3" not in " ".join(found)


def test_a_test_that_logs_a_patients_name_fails_the_run(tmp_path):
    probe = ROOT / "tests" / "test_zz_logs_a_name_probe.py"
    probe.write_text("import logging\n\ndef test_logs():\n    logging.getLogger('spoke_client.x').warning('opened Kamla Devi')\n")
    try:
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(probe)],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        probe.unlink()
    assert out.returncode != 0 and "Patient data found in logs" in out.stdout, out.stdout[-2000:]
    assert "1 passed" in out.stdout, "the test itself passed: the guard is what failed the run"
