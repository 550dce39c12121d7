"""The main window: home (what the hub's doctor asks; today's cases, red flags first; what waits for the hub;
prescriptions received), patients, users, case tabs."""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QSpinBox,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from spoke_client.domain.errors import SpokeError
from spoke_client.domain.model import Facility, Role, User
from spoke_client.i18n import _, ngettext
from spoke_client.services.cases import EDITABLE, HomeSummary
from spoke_client.services.runtime import Services
from spoke_client.services.settings import AUDIO_MAX_SECONDS, IDLE_LOCK_MINUTES, PHOTO_LONG_SIDE
from spoke_client.ui.case_editor import CaseEditor
from spoke_client.ui.login import LanguageBox, _ServiceDialog, _password
from spoke_client.ui.models import CaseTableModel, PrescriptionTableModel, UserTableModel, role_label
from spoke_client.ui.patients import PatientsPage
from spoke_client.ui.sync_bar import SyncBar, SyncController
from spoke_client.ui.tasks import TaskRunner
from spoke_client.ui.usb import UsbPanel


def _table(model) -> QTableView:
    t = QTableView()
    t.setModel(model)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    t.verticalHeader().hide()
    return t


class HomePage(QWidget):
    open_case = Signal(str)

    def __init__(self, runner: TaskRunner, services: Services, user: User | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.services, self.user = runner, services, user
        lay = QVBoxLayout(self)
        self.summary = QLabel()
        self.summary.setObjectName("summary")
        lay.addWidget(self.summary)
        self.conflicts_button = QPushButton()
        self.conflicts_button.setObjectName("review_conflicts")
        self.conflicts_button.setStyleSheet("color: #8a5a00; text-align: left;")
        self.conflicts_button.hide()
        self.conflicts_button.clicked.connect(self.review_conflicts)
        lay.addWidget(self.conflicts_button)
        self.models: dict[str, CaseTableModel | PrescriptionTableModel] = {}
        self.boxes: dict[str, QGroupBox] = {}
        # The doctor's questions first: a patient may be waiting at the hub's end for the answer.
        for key, title in (("info_requested", _("The hub's doctor asks for more information")),
                           ("today", _("Today's cases (red flags first)")),
                           ("waiting_for_hub", _("Waiting for the hub")),
                           ("prescriptions", _("Prescriptions received")),
                           ("drafts", _("Unfinished drafts from earlier days"))):
            box = QGroupBox(title)
            box.setObjectName(f"box_{key}")
            bl = QVBoxLayout(box)
            model = PrescriptionTableModel(self) if key == "prescriptions" else CaseTableModel(self)
            table = _table(model)
            table.setObjectName(key)
            table.doubleClicked.connect(lambda idx, m=model: self.open_case.emit(m.item(idx.row()).case_id))
            bl.addWidget(table)
            if key == "prescriptions":
                self.prescriptions_table = table
                bl.addLayout(self._print_row())
            lay.addWidget(box, 2 if key == "today" else 1)
            self.models[key] = model
            self.boxes[key] = box
        self.boxes["info_requested"].setStyleSheet("QGroupBox { font-weight: bold; color: #8a5a00; }")
        self.boxes["info_requested"].hide()   # until the hub asks
        self.refresh()

    def _print_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.print_button = QPushButton(_("Print"))
        self.print_button.setObjectName("print_received")
        self.print_button.setEnabled(False)
        self.print_button.clicked.connect(self.print_selected)
        self.print_status = QLabel()
        self.print_status.setObjectName("print_received_status")
        self.print_status.setWordWrap(True)
        row.addWidget(self.print_button)
        row.addWidget(self.print_status, 1)
        self.prescriptions_table.selectionModel().selectionChanged.connect(self._prescription_selected)
        return row

    def _selected_prescription(self):
        rows = self.prescriptions_table.selectionModel().selectedRows()
        model = self.models["prescriptions"]
        return model.item(rows[0].row()) if rows and rows[0].row() < model.rowCount() else None

    def _prescription_selected(self, *_a) -> None:
        chosen = self._selected_prescription()
        self.print_button.setEnabled(chosen is not None and chosen.signature_ok and self.user is not None)

    def print_selected(self) -> None:
        """Print on "Prescriptions received": the selected prescription to the printer chosen for this PC."""
        from spoke_client.ui.printing import job_sentence, print_prescription

        chosen = self._selected_prescription()
        if chosen is None or self.user is None:
            return
        self.print_status.setText(_("Preparing the paper…"))
        print_prescription(self.runner, self.services.printing, self.user, chosen.prescription_id,
                           lambda job: self.print_status.setText(job_sentence(job)),
                           lambda exc: self.print_status.setText(exc.message if isinstance(exc, SpokeError)
                                                                 else str(exc)))

    def refresh(self) -> None:
        self.runner.run(self.services.cases.home, self._show, self._failed, lane="read")
        # No handler: the count is a hint, so an expected failure is only logged; an unexpected one is shown.
        self.runner.run(self.services.conflicts.open_count, self._show_conflicts, lane="read")

    def _failed(self, exc: Exception) -> None:
        self.summary.setText(exc.message if isinstance(exc, SpokeError) else str(exc))

    def _show_conflicts(self, count: int) -> None:
        self.conflicts_button.setText(ngettext(
            "{n} patient detail was changed on two computers at once: review…",
            "{n} patient details were changed on two computers at once: review…", count).format(n=count))
        self.conflicts_button.setVisible(count > 0 and self.user is not None)

    def review_conflicts(self) -> None:
        from spoke_client.ui.conflicts import ConflictsDialog

        ConflictsDialog(self.runner, self.services, self.user, self).exec()
        self.refresh()

    def _show(self, home: HomeSummary) -> None:
        for key, model in self.models.items():
            model.set_items(getattr(home, key))
        self.boxes["info_requested"].setVisible(bool(home.info_requested))
        flagged = sum(1 for c in home.today if c.priority >= 2)
        text = _("{n} cases today, {f} with red flags; {w} waiting for the hub; {p} prescriptions received.").format(
            n=len(home.today), f=flagged, w=len(home.waiting_for_hub), p=len(home.prescriptions))
        if home.info_requested:
            text = ngettext("The hub's doctor asks about {n} case.", "The hub's doctor asks about {n} cases.",
                            len(home.info_requested)).format(n=len(home.info_requested)) + " " + text
        self.summary.setText(text)


class AddUserDialog(_ServiceDialog):
    def __init__(self, runner: TaskRunner, services: Services, actor: User, parent: QWidget | None = None) -> None:
        super().__init__(runner, _("Add a user"), parent)
        self.services, self.actor = services, actor
        self.username = self.fields.add("username", _("User name"), QLineEdit())
        self.full_name = self.fields.add("full_name", _("Full name"), QLineEdit())
        self.role = self.fields.add("role", _("Role"), QComboBox())
        for r in (Role.PARAMEDIC, Role.GENERALIST, Role.ADMIN):
            self.role.addItem(role_label(r.value), r.value)
        self.password = self.fields.add("password", _("Password"), _password())
        self.finish_layout("")

    def call(self) -> User:
        return self.services.auth.add_user(self.actor, self.username.text(), self.full_name.text(),
                                           Role(self.role.currentData()), self.password.text())


class UsersPage(QWidget):
    def __init__(self, runner: TaskRunner, services: Services, actor: User, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.services, self.actor = runner, services, actor
        lay = QVBoxLayout(self)
        self.model = UserTableModel(self)
        self.table = _table(self.model)
        self.table.setObjectName("users")
        lay.addWidget(self.table)
        row = QHBoxLayout()
        self.add_button = QPushButton(_("Add user"))
        self.add_button.setObjectName("add_user")
        self.toggle_button = QPushButton(_("Enable / disable"))
        self.toggle_button.setObjectName("toggle_user")
        self.message = QLabel()
        row.addWidget(self.add_button)
        row.addWidget(self.toggle_button)
        row.addWidget(self.message, 1)
        row.addWidget(QLabel(_("Lock Spoke after")))
        self.idle_minutes = QSpinBox()
        self.idle_minutes.setObjectName("idle_lock_minutes")
        self.idle_minutes.setRange(IDLE_LOCK_MINUTES.minimum, IDLE_LOCK_MINUTES.maximum)
        self.idle_minutes.setSuffix(_(" min without use"))
        self.idle_minutes.setValue(IDLE_LOCK_MINUTES.default)
        self.idle_save = QPushButton(_("Save"))
        self.idle_save.setObjectName("save_idle_lock")
        self.idle_save.clicked.connect(self.save_idle_lock)
        row.addWidget(self.idle_minutes)
        row.addWidget(self.idle_save)
        lay.addLayout(row)
        media = QHBoxLayout()
        media.addStretch(1)
        media.addWidget(QLabel(_("Photos: long side")))
        self.photo_side = QSpinBox()
        self.photo_side.setObjectName("photo_long_side")
        self.photo_side.setRange(PHOTO_LONG_SIDE.minimum, PHOTO_LONG_SIDE.maximum)
        self.photo_side.setSingleStep(100)
        self.photo_side.setSuffix(" px")
        self.photo_side.setValue(PHOTO_LONG_SIDE.default)
        media.addWidget(self.photo_side)
        media.addWidget(QLabel(_("Recordings: at most")))
        self.audio_max = QSpinBox()
        self.audio_max.setObjectName("audio_max_seconds")
        self.audio_max.setRange(AUDIO_MAX_SECONDS.minimum, AUDIO_MAX_SECONDS.maximum)
        self.audio_max.setSuffix(_(" s"))
        self.audio_max.setValue(AUDIO_MAX_SECONDS.default)
        media.addWidget(self.audio_max)
        self.media_save = QPushButton(_("Save"))
        self.media_save.setObjectName("save_media_settings")
        self.media_save.clicked.connect(self.save_media_settings)
        media.addWidget(self.media_save)
        lay.addLayout(media)
        self.add_button.clicked.connect(self.add_user)
        self.toggle_button.clicked.connect(self.toggle)
        self.refresh()
        settings = services.settings
        self.runner.run(lambda: (settings.get(IDLE_LOCK_MINUTES), settings.get(PHOTO_LONG_SIDE),
                                 settings.get(AUDIO_MAX_SECONDS)), self._settings_loaded, self._failed, lane="read")

    def _settings_loaded(self, values: tuple[int, int, int]) -> None:
        idle, side, seconds = values
        self.idle_minutes.setValue(idle)
        self.photo_side.setValue(side)
        self.audio_max.setValue(seconds)

    def save_media_settings(self) -> None:
        side, seconds, settings, actor = self.photo_side.value(), self.audio_max.value(), self.services.settings, self.actor
        self.runner.run(lambda: settings.set_many(actor, {PHOTO_LONG_SIDE: side, AUDIO_MAX_SECONDS: seconds}),
                        self._media_settings_saved, self._failed)

    def _media_settings_saved(self, _result: object) -> None:
        self.message.setText(_("Saved: applies to the next photo or recording."))

    def save_idle_lock(self) -> None:
        minutes = self.idle_minutes.value()
        self.runner.run(lambda: self.services.auth.set_idle_lock_minutes(self.actor, minutes), self._idle_lock_saved,
                        self._failed)

    def _idle_lock_saved(self, _result: object) -> None:
        self.message.setText(_("Saved: applies from the next sign-in."))

    def refresh(self) -> None:
        self.runner.run(lambda: self.services.auth.list_users(self.actor), self.model.set_items, self._failed, lane="read")

    def add_user(self) -> None:
        if AddUserDialog(self.runner, self.services, self.actor, self).exec() == QDialog.DialogCode.Accepted:
            self.refresh()

    def toggle(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        u = self.model.item(rows[0].row())
        self.runner.run(lambda: self.services.auth.set_active(self.actor, u.id, not u.active),
                        self._toggled, self._failed)

    def _toggled(self, _user: User) -> None:
        self.refresh()

    def _failed(self, exc: Exception) -> None:
        self.message.setText(exc.message if isinstance(exc, SpokeError) else str(exc))


@dataclass
class ViewState:
    """What the user has open in the main window, carried to the window rebuilt in another language: the tab shown,
    the patient search, the open cases and, of each, what was typed that a draft does not bring back."""

    current: int = 0
    search: str = ""
    cases: list[str] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)      # case id -> the answer being written to the doctor
    unsaved: dict[str, dict] = field(default_factory=dict)     # case id -> the form, where the draft is not restored


PRINT_POLL_MS = 5000


class MainWindow(QMainWindow):
    sign_out = Signal()
    language_chosen = Signal(str)   # the user picked another language: the app rebuilds the window in it

    def __init__(self, services: Services, runner: TaskRunner, user: User, facility: Facility) -> None:
        super().__init__()
        self.services, self.runner, self.user = services, runner, user
        self.setWindowTitle(_("Spoke — {facility}").format(facility=facility.name))
        self.tabs = QTabWidget()
        self.tabs.setObjectName("tabs")
        self.tabs.setTabsClosable(True)
        self.tabs.tabCloseRequested.connect(self._close_tab)
        self.setCentralWidget(self.tabs)
        self.home = HomePage(runner, services, user)
        self.home.open_case.connect(self.open_case)
        self.patients = PatientsPage(runner, services.patients, user)
        self.patients.new_case_for.connect(self.new_case)
        self.patients.open_patient.connect(self.new_case)
        from spoke_client.ui.devices import DevicesPage

        self.devices_page = DevicesPage(runner, services.devices, user)
        self.tabs.addTab(self.home, _("Home"))
        self.tabs.addTab(self.patients, _("Patients"))
        self.tabs.addTab(self.devices_page, _("Devices"))
        self.fixed_tabs = 3
        if user.role == Role.ADMIN:
            self.users = UsersPage(runner, services, user)
            self.tabs.addTab(self.users, _("Users"))
            self.fixed_tabs = 4
        for i in range(self.fixed_tabs):
            self.tabs.tabBar().setTabButton(i, self.tabs.tabBar().ButtonPosition.RightSide, None)
        who = QLabel(_("{name} ({role}) at {facility} ({hwc})").format(
            name=user.full_name, role=role_label(user.role.value), facility=facility.name, hwc=facility.hwc_id))
        who.setObjectName("who")
        who.setToolTip(who.text())
        who.setMinimumWidth(120)   # the first to give way in a crowded status bar (a USB notice): it is in the title too
        self.statusBar().addWidget(who)
        self.sync = SyncController(runner, services, self)
        self.sync_bar = SyncBar(self.sync, can_enroll=user.role == Role.ADMIN)
        self.statusBar().addWidget(self.sync_bar, 1)
        # What a sync brought (a status from the hub, a question, a prescription, a merged patient) shows on the home
        # page and in the open cases at once.
        self.sync.status_changed.connect(lambda _s, report: report is not None and report.pulled and self._pulled())
        # USB drives, beside sync and on an enrolled PC only: send the work by drive, import the hub's return bundle
        # (refreshed as after a sync), and a notice when a plugged drive holds one for this PC (looked for every few
        # seconds off this thread).
        self.usb = UsbPanel(runner, services)
        self.usb.imported.connect(self._bundle_imported)
        self.statusBar().addWidget(self.usb)
        self.sync.status_changed.connect(self._sync_status)
        self.sync.start()
        # The print queue: a button that says what waits ("Printing: 1 waiting"), opening the queue and the
        # printer settings; asked about every few seconds while a job is open.
        self.printing_button = QPushButton(_("Printing…"))
        self.printing_button.setObjectName("printing")
        self.printing_button.clicked.connect(self.show_print_queue)
        self.statusBar().addPermanentWidget(self.printing_button)
        self.print_timer = QTimer(self)
        self.print_timer.setInterval(PRINT_POLL_MS)
        self.print_timer.timeout.connect(self.refresh_printing)
        self.print_timer.start()
        self.refresh_printing()
        self.languages = LanguageBox()
        self.languages.chosen.connect(self.language_chosen)
        self.statusBar().addPermanentWidget(self.languages)
        out = QPushButton(_("Sign out"))
        out.setObjectName("sign_out")
        out.clicked.connect(self.sign_out.emit)
        self.statusBar().addPermanentWidget(out)
        # Never larger than the screen (HWC PCs are often 1366x768; without a window manager, maximising is ignored).
        screen = self.screen().availableGeometry()
        self.resize(min(1200, screen.width()), min(800, screen.height()))

    def new_case(self, patient) -> None:
        self.runner.run(lambda: self.services.cases.open_case(self.user, patient.id), self._case_opened, self._failed)

    def _case_opened(self, case) -> None:
        self.open_case(case.id)
        self.home.refresh()

    def show_print_queue(self) -> None:
        from spoke_client.ui.printing import PrintQueueDialog

        PrintQueueDialog(self.runner, self.services.printing, self.user, self).exec()
        self.refresh_printing()

    def refresh_printing(self) -> None:
        self.runner.run(self.services.printing.open_jobs, self._show_printing, lambda _e: None, lane="read")

    def _show_printing(self, open_jobs) -> None:
        from spoke_client.services.printers import JobState

        waiting = sum(1 for j in open_jobs if j.state == JobState.WAITING)
        printing = len(open_jobs) - waiting
        if not open_jobs:
            self.printing_button.setText(_("Printing…"))
            self.printing_button.setStyleSheet("")
            self.printing_button.setToolTip(_("The print queue and the printer for prescriptions"))
            return
        text = _("Printing: {w} waiting, {p} printing").format(w=waiting, p=printing)
        self.printing_button.setText(text)
        self.printing_button.setStyleSheet("color: #8a5a00; font-weight: bold;" if waiting else "")
        self.printing_button.setToolTip("\n".join(j.detail for j in open_jobs))

    def _sync_for_call(self, editor: CaseEditor) -> None:
        if editor.call_window is not None and editor.call_window.last_state == "live" and hasattr(self, "sync"):
            self.sync.sync_now()

    def _call_starter(self):
        """Starts a call with the hub about a case, as the signed-in user with the camera last used for photos."""
        from spoke_client.services.call import call_hub

        services, user = self.services, self.user
        if user is None:
            return None
        return lambda case_id, events: call_hub(services.store, services.paths, case_id, user.full_name, events,
                                                camera_source=services.attachments.remembered_camera())

    def open_case(self, case_id: str) -> CaseEditor:
        for i in range(self.fixed_tabs, self.tabs.count()):
            w = self.tabs.widget(i)
            if isinstance(w, CaseEditor) and w.case_id == case_id:
                self.tabs.setCurrentIndex(i)
                return w
        editor = CaseEditor(self.runner, self.services.cases, self.services.drafts, self.user, case_id,
                            attachments=self.services.attachments, devices=self.services.devices,
                            consultation=self.services.consultation, printing=self.services.printing,
                            call_starter=self._call_starter())
        editor.changed.connect(self.home.refresh)
        # During a call, what the paramedic adds (vitals, a photo) goes to the hub at once, for the doctor to see.
        editor.changed.connect(lambda: self._sync_for_call(editor))
        if editor.attachments_panel is not None:
            editor.attachments_panel.changed.connect(lambda: self._sync_for_call(editor))
        editor.loaded.connect(lambda: self._name_tab(editor))
        self.tabs.addTab(editor, _("Opening…"))   # the patient's name once the case has loaded
        self.tabs.setCurrentWidget(editor)
        return editor

    def _pulled(self) -> None:
        self.home.refresh()
        for editor in self.open_case_editors():
            editor.refresh_from_hub()

    def _sync_status(self, status, _report) -> None:
        self.usb.set_enrolled(status.enrolled)

    def _bundle_imported(self, _report) -> None:
        self._pulled()
        self.sync.refresh()   # what waits for the hub is less now

    def _name_tab(self, editor: CaseEditor) -> None:
        index = self.tabs.indexOf(editor)
        if index >= 0 and editor.patient is not None:
            self.tabs.setTabText(index, editor.patient.name)

    def _close_tab(self, index: int) -> None:
        if index >= self.fixed_tabs:
            w = self.tabs.widget(index)
            if isinstance(w, CaseEditor):
                w.save_pending_draft()   # closing within the autosave wait keeps what was typed
            self.tabs.removeTab(index)
            w.deleteLater()

    def save_pending_drafts(self) -> int:
        """Saves at once every draft still waiting for its autosave; how many there were."""
        return sum(editor.save_pending_draft() for editor in self.open_case_editors())

    def _failed(self, exc: Exception) -> None:
        self.statusBar().showMessage(exc.message if isinstance(exc, SpokeError) else str(exc), 10_000)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.save_pending_drafts()
        self.print_timer.stop()
        self.usb.stop()
        self.sync.stop()  # the running round sees the flag between batches and stops cleanly
        super().closeEvent(event)

    def open_case_editors(self) -> list[CaseEditor]:
        return [w for i in range(self.tabs.count()) if isinstance(w := self.tabs.widget(i), CaseEditor)]

    # --- rebuilt in another language -----------------------------------------------------------------
    def view_state(self) -> ViewState:
        """What is open and typed now. With `save_pending_drafts` (the drafts the editors bring back themselves), all
        a window in another language needs to look and go on as this one."""
        state = ViewState(current=self.tabs.currentIndex(), search=self.patients.search.text())
        for editor in self.open_case_editors():
            state.cases.append(editor.case_id)
            if editor.questions.answer.toPlainText():
                state.answers[editor.case_id] = editor.questions.answer.toPlainText()
            # A case the doctor asked about keeps new vitals only in the form: its draft is not restored on opening.
            if editor.case is not None and editor.case.status not in EDITABLE and editor.form_state()["vitals_dirty"]:
                state.unsaved[editor.case_id] = editor.form_state()
        return state

    def restore_view_state(self, state: ViewState) -> None:
        for case_id in state.cases:
            editor = self.open_case(case_id)
            answer, unsaved = state.answers.get(case_id), state.unsaved.get(case_id)
            if answer or unsaved:
                editor.loaded.connect(lambda e=editor, a=answer, u=unsaved: self._give_back(e, a, u))
        if state.search:
            self.patients.search.setText(state.search)   # searched again, in a moment, as if typed
        self.tabs.setCurrentIndex(min(state.current, self.tabs.count() - 1))

    @staticmethod
    def _give_back(editor: CaseEditor, answer: str | None, unsaved: dict | None) -> None:
        if unsaved and editor.case is not None and editor.case.status not in EDITABLE:
            editor._restore_draft(unsaved)   # noqa: SLF001 - the editor's own way of putting a form back
        if answer and editor.questions.answer.isEnabled() and not editor.questions.answer.toPlainText():
            editor.questions.answer.setPlainText(answer)


