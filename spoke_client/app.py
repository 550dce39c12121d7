"""Composition root: open the store, set up or sign in, show the main window, lock when idle, and switch the
language while running (the main window is built again in it, with the same services and the same user)."""

from __future__ import annotations

import logging
import os
import sys
import time

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer, QTranslator, Signal
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox

from spoke_client.domain.errors import SpokeError
from spoke_client.domain.model import Facility, User
from spoke_client.i18n import (
    LOCALE_DIR,
    SOURCE_LANGUAGE,
    _,
    available_languages,
    current_language,
    language_chosen,
    set_language,
)
from spoke_client.paths import DataPaths
from spoke_client.services.runtime import DamagedDatabase, Services, open_services, restore_good_copy
from spoke_client.services.settings import LANGUAGE
from spoke_client.ui.crash import CrashReporter, install_excepthook
from spoke_client.services.vault import DataLocked, Gate
from spoke_client.ui.login import LockDialog, LoginDialog, RecoveryKeyDialog, SetupDialog
from spoke_client.ui.main_window import MainWindow
from spoke_client.ui.tasks import TaskRunner

log = logging.getLogger(__name__)


def install_qt_words(app: QCoreApplication, previous: QTranslator | None = None) -> QTranslator | None:
    """Qt's own words (standard buttons, the text fields' menu: i18n.QT_WORDS) in the language of now, from its
    qt.qm (built by scripts/i18n.sh compile); `previous`, the one for the language before, is removed first."""
    if previous is not None:
        app.removeTranslator(previous)
        previous.deleteLater()
    qm = LOCALE_DIR / current_language() / "LC_MESSAGES" / "qt.qm"
    if current_language() == SOURCE_LANGUAGE or not qm.is_file():
        return None
    translator = QTranslator(app)
    if not translator.load(str(qm)):
        log.warning("Qt's words for %s could not be loaded from %s", current_language(), qm.name)
        return None
    app.installTranslator(translator)
    return translator


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
        self.crash = CrashReporter(paths.logs / "spoke.log", self)
        self.runner.unexpected.connect(self.crash.report)
        self._restore_excepthook = None
        self.window: MainWindow | None = None
        self.user: User | None = None
        self.facility: Facility | None = None
        self.watcher: IdleWatcher | None = None
        self.qt_words: QTranslator | None = None
        self._language_before_open: str | None = None

    def open_store(self) -> bool:
        """Opens the store now, unless its data is encrypted: then the first sign-in opens it (vault.Gate)."""
        try:
            self.services = open_services(self.paths, keep_good_copy=True)
            return True
        except DataLocked:
            self.services = None
            return True
        except DamagedDatabase as exc:
            return self._offer_good_copy(exc, None) and self.open_store()
        except SpokeError as exc:
            QMessageBox.critical(None, _("Spoke cannot start"), exc.message)
            return False

    def _offer_good_copy(self, exc: DamagedDatabase, key: bytes | None) -> bool:
        """True when the last good copy was put back (the caller opens the store again)."""
        if exc.last_good is None:
            QMessageBox.critical(None, _("Spoke cannot open its database"), exc.message)
            return False
        box = QMessageBox(QMessageBox.Icon.Critical, _("Spoke's database is damaged"), exc.message)
        restore = box.addButton(_("Restore the last good copy"), QMessageBox.ButtonRole.AcceptRole)
        box.addButton(_("Quit"), QMessageBox.ButtonRole.RejectRole)
        box.exec()
        if box.clickedButton() is not restore:
            return False
        kept = restore_good_copy(self.paths, exc.last_good, key=key)
        QMessageBox.information(None, _("Restored"), _("The last good copy was restored. The damaged file is kept as "
                                                      "{kept}; work entered after that copy must be entered again.")
                                .format(kept=kept))
        return True

    def start(self) -> bool:
        if self._restore_excepthook is None:
            self._restore_excepthook = install_excepthook(self.crash)
        if not self.open_store():
            return False
        self.apply_remembered_language()
        if self.services is not None and self.services.auth.needs_setup():
            dialog = SetupDialog(self.runner, self.services.auth)
            dialog.language_chosen.connect(self.remember_language)
            _startup_probe(dialog)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return False
            self._show_recovery_key([])
        return self.sign_in()

    def sign_in(self) -> bool:
        """The sign-in screen. The session's first sign-in goes through a vault.Gate: it opens encrypted data with
        the user's key slot, and an administrator's sign-in encrypts a database from before encryption."""
        gate = Gate(self.paths, self.services)
        dialog = LoginDialog(self.runner, gate, gate.label())
        dialog.language_chosen.connect(self.remember_language)
        _startup_probe(dialog)
        accepted = dialog.exec() == QDialog.DialogCode.Accepted
        if dialog.damaged is not None:
            return self._offer_good_copy(dialog.damaged, gate.key) and self.sign_in()
        if not accepted:
            return False
        if gate.services is not self.services:
            self.services = gate.services
            if self._language_before_open:      # chosen on the sign-in screen while the data was closed
                self.remember_language(self._language_before_open)
                self._language_before_open = None
            else:
                self.apply_remembered_language()
        if gate.conversion_error:
            QMessageBox.warning(None, _("The data is not encrypted yet"), gate.conversion_error)
        self._show_recovery_key(gate.users_without_key)
        self.show_main(dialog.result_value, self.services.auth.facility())
        return True

    def _show_recovery_key(self, users_without_key: list[str]) -> None:
        """Once, after the set-up or the encryption of an older database."""
        if self.services is None:
            return
        text = self.services.auth.take_recovery_key()
        if text:
            RecoveryKeyDialog(text, users_without_key).exec()

    def show_main(self, user: User, facility: Facility) -> MainWindow:
        """The main window for the user just signed in, and the idle lock."""
        assert self.services is not None
        self.user, self.facility = user, facility
        self.window = self._new_window()
        self.window.showMaximized()  # HWC screens are often 1366x768
        self.watcher = IdleWatcher(self.services.auth.idle_lock_minutes() * 60, self)
        QApplication.instance().installEventFilter(self.watcher)
        self.watcher.idle.connect(self.lock)
        return self.window

    def _new_window(self) -> MainWindow:
        assert self.services is not None and self.user is not None and self.facility is not None
        window = MainWindow(self.services, self.runner, self.user, self.facility)
        window.sign_out.connect(self.signed_out)
        window.language_chosen.connect(self.switch_language)
        return window

    # --- the language -------------------------------------------------------------------------------
    def apply_remembered_language(self) -> None:
        """The language last chosen on this PC, unless this run was started in one (--language, SPOKE_LANGUAGE)."""
        remembered = self.services.settings.get(LANGUAGE) if self.services is not None else _language_file(self.paths)
        if not language_chosen() and remembered in {code for code, _name in available_languages()}:
            set_language(remembered)
        self.qt_words = install_qt_words(QCoreApplication.instance(), self.qt_words)

    def remember_language(self, language: str) -> None:
        """Kept for the next start, on the write lane; a failure to keep it only costs the choice at the next start.
        Qt's own words follow at once (the sign-in screen switched itself)."""
        self.qt_words = install_qt_words(QCoreApplication.instance(), self.qt_words)
        _keep_language_file(self.paths, language)
        if self.services is None:
            # Encrypted and not open yet: the file above is what the next sign-in screen remembers; the setting
            # is kept once the sign-in opens the data.
            self._language_before_open = language
            return
        settings, actor = self.services.settings, self.user
        self.runner.run(lambda: settings.remember_language(actor, language), None, _language_not_kept)

    def switch_language(self, language: str) -> None:
        """Everything on screen in `language`, at once: the main window is built again with the same services and
        user (nobody signs out), the same tab, search and case tabs, and every draft. The old window first saves what
        waits for its autosave; the new case editors read their drafts after that on the same write lane."""
        if language == current_language():
            return
        set_language(language)
        self.remember_language(language)
        old = self.window
        if old is None:
            return
        log.info("language switched to %s: rebuilding the main window", current_language())
        state = old.view_state()
        old.save_pending_drafts()
        maximized, geometry = old.isMaximized(), old.geometry()
        self.window = self._new_window()
        if maximized:
            self.window.showMaximized()
        else:
            self.window.setGeometry(geometry)
            self.window.show()
        self.window.restore_view_state(state)
        old.close()          # after the new one is shown: closing the last window would quit
        old.deleteLater()

    def lock(self) -> None:
        assert self.services is not None and self.user is not None and self.window is not None
        dialog = LockDialog(self.runner, self.services.auth, self.user, self.window)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.watcher.resume()
        else:
            self.signed_out()

    def signed_out(self) -> None:
        log.info("signed out")
        if self.window is not None:
            self.window.save_pending_drafts()   # before the window goes: nothing typed is lost
        if self.watcher is not None:
            QApplication.instance().removeEventFilter(self.watcher)
            self.watcher.timer.stop()
            self.watcher = None
        if self.window is not None:
            self.window.close()
            self.window.deleteLater()
            self.window = None
        self.user = None
        if not self.sign_in():
            QApplication.instance().quit()

    def shutdown(self) -> None:
        if self.window is not None:
            self.window.save_pending_drafts()   # quitting within the autosave wait keeps what was typed
        if self.watcher is not None:
            QApplication.instance().removeEventFilter(self.watcher)
            self.watcher.timer.stop()
            self.watcher = None
        if not self.runner.wait():
            log.error("background jobs were still running at shutdown")
        if self._restore_excepthook is not None:
            self._restore_excepthook()
            self._restore_excepthook = None
        if self.services is not None:
            self.services.close()
            self.services = None
        if self.qt_words is not None:
            QCoreApplication.instance().removeTranslator(self.qt_words)
            self.qt_words = None


def _language_file(paths: DataPaths) -> str | None:
    """The language of the screens before the data is open (it is not patient data: a plain file)."""
    try:
        return (paths.root / "language").read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeError):
        return None


def _keep_language_file(paths: DataPaths, language: str) -> None:
    try:
        (paths.root / "language").write_text(language, encoding="ascii")
    except (OSError, UnicodeError):
        pass


def _language_not_kept(exc: Exception) -> None:
    log.warning("the language chosen could not be kept for the next start: %s", type(exc).__name__)


def _startup_probe(dialog: QDialog) -> None:
    """For the start-up benchmark: SPOKE_STARTUP_PROBE=FILE writes the time the first window is on screen;
    with SPOKE_STARTUP_PROBE_EXIT=1 the app then closes it and exits."""
    target = os.environ.get("SPOKE_STARTUP_PROBE")
    if not target:
        return

    def shown() -> None:
        with open(target, "w", encoding="utf-8") as f:
            f.write(f"{time.time():.3f}\n")
        if os.environ.get("SPOKE_STARTUP_PROBE_EXIT") == "1":
            dialog.reject()

    os.environ.pop("SPOKE_STARTUP_PROBE", None)   # the first window only
    QTimer.singleShot(0, shown)


def run_memory_probe(paths: DataPaths, camera: str, seconds: float) -> int:
    """For the memory benchmark: the main window with a case open and the camera preview running, signed in
    as a demo user on a throwaway data folder; prints the resident memory after `seconds` as JSON."""
    import json

    from spoke_client.services.auth import FacilityForm
    from spoke_client.services.patients import PatientForm
    from spoke_client.ui.attachments import PhotoDialog

    app = QApplication.instance() or QApplication(sys.argv)
    services = open_services(paths)
    runner = TaskRunner()
    if services.auth.needs_setup():
        services.auth.setup(FacilityForm("HWC Probe", "HWC-PROBE", "Sitapur", "Uttar Pradesh"), "probe", "Probe",
                            "probe-password-1")
    user = services.auth.login("probe", "probe-password-1")
    patient = services.patients.register(user, PatientForm(name="Kamla Devi", sex="female", age_years=60), confirmed_new=True)
    case = services.cases.open_case(user, patient.id)
    window = MainWindow(services, runner, user, services.auth.facility())
    window.show()
    window.open_case(case.id)
    dialog = PhotoDialog(runner, services.attachments, user, case.id, window)
    dialog.source.setEditText(camera)
    dialog.show()
    dialog.start_camera()
    frames = []
    dialog.worker.frame.connect(lambda _f: frames.append(1))
    result: dict = {}

    def measure() -> None:
        rss_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:"))
        result.update(rss_mb=round(rss_kb / 1024, 1), frames=len(frames), seconds=seconds)
        dialog.reject()
        window.sync.stop()
        app.quit()

    QTimer.singleShot(int(seconds * 1000), measure)
    app.exec()
    runner.wait(10_000)
    services.close()
    print(json.dumps(result), flush=True)
    # Leave without tearing the widgets down one by one at interpreter exit (a probe, not the app).
    os._exit(0 if result.get("frames") else 1)


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
