"""Composition root: open the store, set up or sign in, show the main window, lock when idle."""

from __future__ import annotations

import sys
import time

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox

from spoke_client.domain.errors import SpokeError
from spoke_client.domain.model import User
from spoke_client.i18n import _
from spoke_client.paths import DataPaths
from spoke_client.services.runtime import DamagedDatabase, Services, open_services, restore_good_copy
from spoke_client.ui.login import LockDialog, LoginDialog, SetupDialog
from spoke_client.ui.main_window import MainWindow
from spoke_client.ui.tasks import TaskRunner


class IdleWatcher(QObject):
    """Emits `idle` once the user has not touched keyboard or mouse for the configured time."""

    idle = Signal()
    _INPUT = {QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.Wheel}

    def __init__(self, seconds: float, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.seconds = seconds
        self.last = time.monotonic()
        self.paused = False
        self.timer = QTimer(self)
        self.timer.setInterval(int(min(5.0, max(seconds / 4, 0.05)) * 1000))
        self.timer.timeout.connect(self._check)
        self.timer.start()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() in self._INPUT:
            self.last = time.monotonic()
        return False

    def _check(self) -> None:
        if not self.paused and time.monotonic() - self.last >= self.seconds:
            self.paused = True
            self.idle.emit()

    def resume(self) -> None:
        self.last = time.monotonic()
        self.paused = False


class AppController(QObject):
    def __init__(self, paths: DataPaths) -> None:
        super().__init__()
        self.paths = paths
        self.services: Services | None = None
        self.runner = TaskRunner(self)
        self.window: MainWindow | None = None
        self.user: User | None = None
        self.watcher: IdleWatcher | None = None

    def open_store(self) -> bool:
        try:
            self.services = open_services(self.paths, keep_good_copy=True)
            return True
        except DamagedDatabase as exc:
            if exc.last_good is None:
                QMessageBox.critical(None, _("Spoke cannot open its database"), exc.message)
                return False
            box = QMessageBox(QMessageBox.Icon.Critical, _("Spoke's database is damaged"), exc.message)
            restore = box.addButton(_("Restore the last good copy"), QMessageBox.ButtonRole.AcceptRole)
            box.addButton(_("Quit"), QMessageBox.ButtonRole.RejectRole)
            box.exec()
            if box.clickedButton() is not restore:
                return False
            kept = restore_good_copy(self.paths, exc.last_good)
            QMessageBox.information(None, _("Restored"), _("The last good copy was restored. The damaged file is kept as "
                                                          "{kept}; work entered after that copy must be entered again.")
                                    .format(kept=kept))
            return self.open_store()
        except SpokeError as exc:
            QMessageBox.critical(None, _("Spoke cannot start"), exc.message)
            return False

    def start(self) -> bool:
        if not self.open_store():
            return False
        assert self.services is not None
        if self.services.auth.needs_setup():
            if SetupDialog(self.runner, self.services.auth).exec() != QDialog.DialogCode.Accepted:
                return False
        return self.sign_in()

    def sign_in(self) -> bool:
        assert self.services is not None
        facility = self.services.auth.facility()
        dialog = LoginDialog(self.runner, self.services.auth, f"{facility.name} ({facility.hwc_id})")
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return False
        self.user = dialog.result_value
        self.window = MainWindow(self.services, self.runner, self.user, facility)
        self.window.sign_out.connect(self.signed_out)
        self.window.showMaximized()  # HWC screens are often 1366x768
        self.watcher = IdleWatcher(self.services.auth.idle_lock_minutes() * 60, self)
        QApplication.instance().installEventFilter(self.watcher)
        self.watcher.idle.connect(self.lock)
        return True

    def lock(self) -> None:
        assert self.services is not None and self.user is not None and self.window is not None
        dialog = LockDialog(self.runner, self.services.auth, self.user, self.window)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.watcher.resume()
        else:
            self.signed_out()

    def signed_out(self) -> None:
        if self.watcher is not None:
            QApplication.instance().removeEventFilter(self.watcher)
            self.watcher.timer.stop()
            self.watcher = None
        if self.window is not None:
            self.window.close()
            self.window.deleteLater()
            self.window = None
        if not self.sign_in():
            QApplication.instance().quit()

    def shutdown(self) -> None:
        self.runner.wait()
        if self.services is not None:
            self.services.close()


def run_app(paths: DataPaths) -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("Spoke")
    app.setQuitOnLastWindowClosed(True)
    controller = AppController(paths)
    app.aboutToQuit.connect(controller.shutdown)
    if not controller.start():
        controller.shutdown()
        return 1
    return app.exec()
