"""Run by test_kill.py as its own process: the real app's main window, typing into a case, then waiting to be killed."""

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from spoke_client.paths import DataPaths  # noqa: E402
from spoke_client.services.vault import Gate  # noqa: E402
from spoke_client.ui.main_window import MainWindow  # noqa: E402
from spoke_client.ui.tasks import TaskRunner  # noqa: E402


def main(data_dir: str, case_id: str, password: str) -> None:
    app = QApplication(sys.argv)
    gate = Gate(DataPaths(__import__("pathlib").Path(data_dir)))
    user = gate.login("admin", password)        # opens the encrypted data, as the app's sign-in does
    services = gate.services
    runner = TaskRunner()
    window = MainWindow(services, runner, user, services.auth.facility())
    window.show()
    editor = window.open_case(case_id)
    editor.draft_saved.connect(lambda: print("DRAFT-SAVED", flush=True))

    def type_once_loaded() -> None:   # the case opens on the write lane; the form is enabled once it has
        QTest.keyClicks(editor.complaints.other, "chest pain since morning")
        QTest.keyClicks(editor.vitals.inputs["systolic_mmhg"], "186")
        QTest.keyClicks(editor.vitals.inputs["diastolic_mmhg"], "122")
        print("TYPED", flush=True)

    editor.loaded.connect(type_once_loaded)
    app.exec()  # until killed


if __name__ == "__main__":
    main(*sys.argv[1:4])
