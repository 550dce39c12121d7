"""Hindi throughout: every main screen, built with real services on a real SQLite file and shown in Hindi, has no
visible word left in English; and the language is switched in the running app without signing out or losing a draft.

The walk reads what a user can see: labels, buttons, group titles, window titles, tabs, placeholders, the headers and
cells of tables and lists, combo-box choices, spin-box suffixes, tooltips, menus and actions. A text fails when it holds
a Latin letter once the things that are not words to translate are taken out: numbers, units (mmHg, kg, °C...),
clinical abbreviations written the same in Hindi (SpO2, NEWS2, BMI, NKDA), identifiers, ABHA, the brand "Spoke", "HWC",
the languages' own names, and the names and places the test typed (a patient's name is not translated)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QGroupBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QSpinBox,
    QTabBar,
    QTextEdit,
    QWidget,
)

from spoke_client import i18n
from spoke_client.services.devices import DeviceService
from spoke_client.services.hub_link import ClockAdvice
from spoke_client.services.patients import PatientForm
from spoke_client.services.settings import LANGUAGE
from spoke_client.services.sync_local import SyncStatus
from spoke_client.ui.login import LoginDialog
from tests.conftest import ADMIN_PASSWORD
from tests.devices.conftest import transport, world  # noqa: F401 - fixtures: scripted Bluetooth devices
from tests.services.test_consultation import pull, queued
from tests.sync import records
from tests.ui.test_drafts_kept import TYPED, Login, app, type_without_waiting  # noqa: F401 - app: the running app
from tests.ui.test_flows import loaded, type_into

# --- what is not a word to translate ------------------------------------------------------------------------------
# The names, places and identifiers the test types or the hub sends: a person's or a village's name stays as written.
TYPED_NAMES = (
    "HWC Rampur (HWC-UP-0042)", "HWC-UP-0042", "HWC Rampur", "Kamla Devi", "Ramesh Yadav", "Ravi Kumar", "Asha Admin",
    "Sunita Yadav", "Dr Anil Mehta", "Golu", "Rampur", "Sitapur", "Uttar Pradesh", "admin", "sunita",
    "OMRON BP", "Thermo", "Accu-Chek", "HR strap", "Omron BP, OPD", "Accu-Chek 1",
    "A photo of her feet, please.", "swelling of both feet", "report",   # (the last: the attached file's name)
    # Examples of what to type, written as it is typed: a search, and drug names as printed on the strip (allergies
    # are checked against the hub's formulary, so they are typed as the medicine's name is spelt there).
    "'kamla ramp'", "penicillin", "sulfa",
    # Keys, as printed on the keyboard.
    "Ctrl+S", "Enter",
)
NOT_WORDS = re.compile(r"""
      mmHg | mg/dL | kg/m² | °[CF] | \bkg\b | \bcm\b | \bkB\b | \bpx\b | \bdBm\b
    | \bSpO2\b | \bNEWS2\b | \bBMI\b | \bNKDA\b | \bABHA\b | \bSpoke\b | \bHWC\b
    | \b(?:image|application|audio)/[a-z0-9.+-]+          # a file's type, e.g. application/pdf
    | \b[A-F0-9]{2}(?::[A-F0-9]{2}){5}\b                   # a Bluetooth address
    | 91-xxxx-xxxx-xxxx | name@abdm | https?://\S*          # the forms of an ABHA number, an ABHA address, a hub
    | (?:/[\w.-]+)+\.log\b                                  # a log file's path
    | %[vm]                                                # a progress bar's placeholders for its numbers
""", re.VERBOSE)
LATIN = re.compile(r"[A-Za-z]")


def not_translated(text: str) -> bool:
    text = re.sub(r"&(?!&)", "", text)   # keyboard accelerators
    for name in sorted(TYPED_NAMES + tuple(name for _code, name in i18n.available_languages()), key=len, reverse=True):
        text = text.replace(name, " ")
    return bool(LATIN.search(NOT_WORDS.sub(" ", text)))


def _plain(label: QLabel) -> str:
    text = label.text()
    if label.textFormat() != Qt.TextFormat.PlainText and re.search(r"<[a-zA-Z/][^>]*>", text):
        from PySide6.QtGui import QTextDocument

        doc = QTextDocument()
        doc.setHtml(text)
        return doc.toPlainText()
    return text


def _model_texts(view: QAbstractItemView) -> list[tuple[str, str]]:
    model = view.model()
    if model is None:
        return []
    found = []
    header = getattr(view, "horizontalHeader", None) or getattr(view, "header", None)
    header = header() if callable(header) else None
    if isinstance(header, QHeaderView) and header.isVisible():
        for c in range(1 if isinstance(model, QAbstractListModel) else model.columnCount()):
            for role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
                value = model.headerData(c, Qt.Orientation.Horizontal, role)
                if isinstance(value, str):
                    found.append((f"header {c}", value))

    flat = isinstance(model, QAbstractListModel)   # its columnCount is not for callers

    def rows(parent: QModelIndex) -> None:
        for r in range(model.rowCount(parent)):
            for c in range(1 if flat else model.columnCount(parent)):
                index = model.index(r, c, parent)
                for role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
                    value = model.data(index, role)
                    if isinstance(value, str):
                        found.append((f"row {r} column {c}", value))
            if not flat:
                rows(model.index(r, 0, parent))

    rows(QModelIndex())
    return found


def _menu_texts(actions, where: str) -> list[tuple[str, str]]:
    found = []
    for action in actions:
        if not action.isVisible() or action.isSeparator():
            continue
        found += [(f"{where} action", action.text()), (f"{where} action tooltip", action.toolTip())]
        if action.menu() is not None:
            found += _menu_texts(action.menu().actions(), f"{where} > {action.text()}")
    return found


def visible_texts(root: QWidget) -> list[tuple[str, str]]:
    """(where, text) of every text a user can see in `root` as it is on screen now."""
    found: list[tuple[str, str]] = []
    for w in [root, *root.findChildren(QWidget)]:
        if not w.isVisible() or w.window() is not root.window():   # a dialog over it is a screen of its own
            continue
        where = f"{type(w).__name__}#{w.objectName() or '?'}"
        texts: list[tuple[str, str]] = []
        if w.isWindow():
            texts.append(("window title", w.windowTitle()))
        if w.toolTip():
            texts.append(("tooltip", w.toolTip()))
        if isinstance(w, QLabel):
            texts.append(("text", _plain(w)))
        elif isinstance(w, QAbstractButton):
            texts.append(("text", w.text()))
        if isinstance(w, QGroupBox):
            texts.append(("title", w.title()))
        if isinstance(w, QTabBar):
            for i in range(w.count()):
                texts += [(f"tab {i}", w.tabText(i)), (f"tab {i} tooltip", w.tabToolTip(i))]
        if isinstance(w, QLineEdit):
            texts.append(("placeholder", w.placeholderText()))
        if isinstance(w, (QPlainTextEdit, QTextEdit)):
            texts.append(("placeholder", w.placeholderText()))
        if isinstance(w, QComboBox):
            texts += [(f"choice {i}", w.itemText(i)) for i in range(w.count())]
        if isinstance(w, QSpinBox):
            texts += [("prefix", w.prefix()), ("suffix", w.suffix())]
        if isinstance(w, QAbstractSpinBox) and w.specialValueText().strip():
            texts.append(("special value", w.specialValueText()))
        if isinstance(w, QProgressBar) and w.isTextVisible():
            texts.append(("progress", w.format()))
        if isinstance(w, QAbstractItemView) and not isinstance(w, QHeaderView):
            texts += _model_texts(w)
        if isinstance(w, QMainWindow):
            texts.append(("status message", w.statusBar().currentMessage()))
        if isinstance(w, QMenu):
            texts += _menu_texts(QWidget.actions(w), "menu")
        else:
            texts += _menu_texts(QWidget.actions(w), "widget")   # (unbound: a widget may name something else "actions")
        found += [(f"{where} {what}", text) for what, text in texts if text and text.strip()]
    return found


def untranslated(root: QWidget) -> list[str]:
    return sorted({f"{where}: {text!r}" for where, text in visible_texts(root) if not_translated(text)})


class Findings:
    """What each screen shows in English, collected so one run lists them all."""

    def __init__(self) -> None:
        self.by_screen: dict[str, list[str]] = {}

    def check(self, screen: str, root: QWidget) -> None:
        for _ in range(3):
            QApplication.processEvents()
        texts = visible_texts(root)
        assert texts, f"{screen}: nothing visible was found (is it shown?)"
        bad = untranslated(root)
        if bad:
            self.by_screen.setdefault(screen, []).extend(bad)

    def assert_none(self) -> None:
        lines = [f"  {screen}: {entry}" for screen, entries in self.by_screen.items() for entry in entries]
        assert not lines, "Visible text not in Hindi (mark it with _() and translate it in the Hindi catalog):\n" + \
            "\n".join(lines)


# --- fixtures -----------------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def language_restored():
    yield
    i18n.set_language(None)


@pytest.fixture
def hindi(qapp):
    """Hindi, as the app sets it: the catalog, and Qt's own words (standard buttons) from its qt.qm."""
    from spoke_client.app import install_qt_words

    i18n.set_language("hi")
    qt_words = install_qt_words(qapp)
    assert qt_words is not None, "scripts/i18n.sh compile builds resources/locale/hi/LC_MESSAGES/qt.qm"
    yield
    i18n.set_language(None)
    qapp.removeTranslator(qt_words)


@pytest.fixture
def devices(services, world, transport):
    """Scripted Bluetooth devices around the PC (tests/devices), through the app's own device service."""
    services.devices = DeviceService(services.store, transport)
    return services.devices


def a_day_of_work(services, admin, hub_key):
    """The home page's lists filled: a case the doctor asks about, one with red flags today, one waiting for the hub,
    a prescription received."""
    kamla = services.patients.register(admin, PatientForm(
        name="Kamla Devi", sex="female", age_years=60, village="Rampur", relative_name="Ramesh Yadav",
        relative_relation="W/o", phone="9876543210", allergies="Penicillin"))
    ravi = services.patients.register(admin, PatientForm(name="Ravi Kumar", sex="male", age_years=34, village="Sitapur",
                                                         relative_name="Ramesh Yadav", relative_relation="S/o"))
    asked = queued(services, admin, kamla)
    pull(services, ("question", "q-1", records.question("q-1", asked.id, text="A photo of her feet, please.")))
    treated = queued(services, admin, ravi)
    pull(services, ("prescription", "rx-1", records.prescription("rx-1", treated.id, ravi.id, hub_key)))
    queued(services, admin, ravi)
    return kamla, ravi


@pytest.fixture
def hub_key(services):
    key = Ed25519PrivateKey.generate()
    services.store.set_setting("hub_public_key", records.public_key_b64(key))
    return key


# --- 1. every main screen in Hindi --------------------------------------------------------------------------------
def test_every_main_screen_is_in_hindi(hindi, qtbot, runner, services, admin, devices, hub_key, tmp_path, screenshot):
    from spoke_client.ui.case_editor import CaseEditor
    from spoke_client.ui.conflicts import ConflictsDialog
    from spoke_client.ui.crash import CrashDialog
    from spoke_client.ui.devices import TakeReadingDialog
    from spoke_client.ui.login import LockDialog, SetupDialog
    from spoke_client.ui.main_window import AddUserDialog, MainWindow
    from spoke_client.ui.patients import PatientDialog
    from spoke_client.ui.sync_bar import EnrollDialog, RefusedDialog

    findings = Findings()
    # Sign-in, with a wrong password said back; set-up; the idle lock.
    login = LoginDialog(runner, services.auth, "HWC Rampur (HWC-UP-0042)")
    qtbot.addWidget(login)
    login.show()
    findings.check("sign-in", login)
    type_into(qtbot, login.username, "admin")
    type_into(qtbot, login.password, "wrong-password")
    login.submit()
    qtbot.waitUntil(lambda: login.message.isVisible(), timeout=10_000)
    findings.check("sign-in, wrong password", login)
    screenshot(login, "hindi-sign-in")
    setup = SetupDialog(runner, services.auth)
    qtbot.addWidget(setup)
    setup.show()
    type_into(qtbot, setup.password, "one-password")
    type_into(qtbot, setup.confirm, "another-password")
    setup.submit()
    findings.check("set-up", setup)
    lock = LockDialog(runner, services.auth, admin)
    qtbot.addWidget(lock)
    lock.show()
    findings.check("idle lock", lock)

    # Home, with a day's lists.
    kamla, ravi = a_day_of_work(services, admin, hub_key)
    window = MainWindow(services, runner, admin, services.auth.facility())
    qtbot.addWidget(window)
    window.resize(1366, 768)
    window.show()
    qtbot.waitUntil(lambda: window.home.models["prescriptions"].rowCount() == 1
                    and window.home.models["info_requested"].rowCount() == 1, timeout=10_000)
    qtbot.waitUntil(lambda: window.sync_bar.label.text() != "", timeout=10_000)
    findings.check("home", window)
    screenshot(window, "hindi-home")

    # Patient search, then registration (refused in place, then the duplicate warning's words).
    window.tabs.setCurrentWidget(window.patients)
    findings.check("patient search, empty", window)
    type_into(qtbot, window.patients.search, "kamla")
    qtbot.waitUntil(lambda: window.patients.model.rowCount() == 1, timeout=5_000)
    findings.check("patient search, found", window)
    screenshot(window, "hindi-search")
    type_into(qtbot, window.patients.search, "nobody-here")
    qtbot.waitUntil(lambda: window.patients.model.rowCount() == 0 and window.patients.hint.text() != "", timeout=5_000)
    findings.check("patient search, nothing found", window)
    registration = PatientDialog(runner, services.patients, admin, window)
    qtbot.addWidget(registration)
    registration.show()
    findings.check("registration", registration)
    type_into(qtbot, registration.name, "Kamla Devi")
    type_into(qtbot, registration.phone, "98765")
    type_into(qtbot, registration.abha_number, "91-1234-5678-9012")
    registration.abha_number.editingFinished.emit()
    registration.save(confirmed_new=False)
    qtbot.waitUntil(lambda: registration.fields.errors["phone"].isVisible(), timeout=10_000)
    findings.check("registration, refused", registration)
    screenshot(registration, "hindi-registration")
    editing = PatientDialog(runner, services.patients, admin, window, patient=kamla)
    qtbot.addWidget(editing)
    editing.show()
    findings.check("patient details", editing)

    # Devices: two paired, the nearby ones found.
    window.tabs.setCurrentWidget(window.devices_page)
    page = window.devices_page
    page.scan()
    qtbot.waitUntil(lambda: page.nearby.topLevelItemCount() == 3, timeout=10_000)
    page.nearby.setCurrentItem(page.nearby.topLevelItem(0))
    page.pair_selected("Omron BP, OPD")
    qtbot.waitUntil(lambda: page.paired.topLevelItemCount() == 1, timeout=5_000)
    page.nearby.setCurrentItem(page.nearby.topLevelItem(2))
    page.pair_selected("Accu-Chek 1")
    qtbot.waitUntil(lambda: page.paired.topLevelItemCount() == 2, timeout=5_000)
    findings.check("devices", window)
    screenshot(window, "hindi-devices")

    # Users (an administrator's), and adding one.
    window.tabs.setCurrentWidget(window.users)
    qtbot.waitUntil(lambda: window.users.model.rowCount() == 1, timeout=5_000)
    findings.check("users", window)
    add_user = AddUserDialog(runner, services, admin, window)
    qtbot.addWidget(add_user)
    add_user.show()
    findings.check("add a user", add_user)

    # The case editor: complaints, vitals with red flags, a set recorded, consent, a document, a device reading.
    sunita = services.patients.register(admin, PatientForm(name="Sunita Yadav", sex="female", age_years=28,
                                                           village="Rampur"), confirmed_new=True)
    editor = loaded(qtbot, window.open_case(services.cases.open_case(admin, sunita.id).id))
    assert isinstance(editor, CaseEditor)
    findings.check("case editor, new", window)
    editor.complaints.check("Fever")
    editor.complaints.check("Loose motions")
    for name, value in (("systolic_mmhg", "186"), ("diastolic_mmhg", "122"), ("pulse_per_min", "118"),
                        ("spo2_pct", "91"), ("respiratory_rate_per_min", "26"), ("temperature_c", "39.2"),
                        ("weight_kg", "52"), ("height_cm", "152"), ("glucose_mg_dl", "62")):
        type_into(qtbot, editor.vitals.inputs[name], value)
    qtbot.waitUntil(lambda: editor.banner.isVisible(), timeout=5_000)
    findings.check("case editor, red flags", window)
    with qtbot.waitSignal(editor.saved, timeout=10_000):
        editor.save()
    type_into(qtbot, editor.vitals.inputs["pulse_per_min"], "811")
    editor.save()
    qtbot.waitUntil(lambda: editor.message.isVisible(), timeout=5_000)
    type_into(qtbot, editor.consent.name, "Sunita Yadav")
    editor.record_consent()
    qtbot.waitUntil(lambda: editor.case.consent is not None, timeout=10_000)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
    editor.attachments_panel.attach_file(str(pdf))
    qtbot.waitUntil(lambda: editor.attachments_panel.list.count() == 1, timeout=10_000)
    findings.check("case editor, saved with consent and a document", window)
    screenshot(window, "hindi-case")
    editor.vitals_history.select(0)
    editor.start_correction()
    findings.check("case editor, correcting", window)
    reading = TakeReadingDialog(runner, devices, editor)
    qtbot.addWidget(reading)
    reading.show()
    qtbot.waitUntil(lambda: reading.device.count() == 2, timeout=5_000)
    reading.device.setCurrentIndex(next(i for i in range(2) if reading.device.itemText(i).startswith("Omron")))
    findings.check("take from device", reading)
    reading.measure()
    qtbot.waitUntil(lambda: reading.readings.topLevelItemCount() == 1, timeout=15_000)
    findings.check("take from device, a reading", reading)
    editor.use_reading(reading.candidates[0])
    findings.check("case editor, device reading", window)

    # A child's case: fast breathing, consent by the accompanying adult.
    golu = services.patients.register(admin, PatientForm(name="Golu", sex="male", age_years=0, age_months=11,
                                                         relative_name="Ramesh Yadav", relative_relation="S/o"))
    child = loaded(qtbot, window.open_case(services.cases.open_case(admin, golu.id).id))
    type_into(qtbot, child.vitals.inputs["respiratory_rate_per_min"], "54")
    findings.check("case editor, a child", window)

    # The sync bar in each of its states, and its dialogs.
    bar = window.sync_bar
    now = datetime.now(timezone.utc)
    for state, status in (
        ("offline", SyncStatus(True, "https://hub.example", "HWC Rampur", 12, 3, 2, 0, now - timedelta(hours=3),
                               "timed out")),
        ("online", SyncStatus(True, "https://hub.example", "HWC Rampur", 0, 0, 0, 0, now, "")),
        ("refused", SyncStatus(True, "https://hub.example", "HWC Rampur", 4, 1, 0, 2, now, "")),
        ("clock", SyncStatus(True, "https://hub.example", "HWC Rampur", 1, 1, 0, 0, None, "",
                             clock_warning=ClockAdvice(-3 * 86_400_000).sentence)),
    ):
        bar.show_status(status, None)
        findings.check(f"sync bar, {state}", window.statusBar())
    bar._progress("upload", 300 * 1024, 1200 * 1024)
    findings.check("sync bar, sending files", window.statusBar())
    refused = RefusedDialog(window.sync, window)
    qtbot.addWidget(refused)
    refused.show()
    findings.check("refused by the hub", refused)
    enroll = EnrollDialog(runner, services, window)
    qtbot.addWidget(enroll)
    enroll.show()
    findings.check("connect to the hub", enroll)

    # The errors: an unexpected one (its details are for the technician), a conflict to review.
    crash = CrashDialog("Traceback (most recent call last):\n  ...\nValueError: x", tmp_path / "logs" / "spoke.log", window)
    qtbot.addWidget(crash)
    crash.show()
    findings.check("unexpected error", crash)
    conflicts = ConflictsDialog(runner, services, admin, window)
    qtbot.addWidget(conflicts)
    conflicts.show()
    findings.check("details changed on two computers", conflicts)
    window.sync.stop()
    findings.assert_none()


# --- 2. switching the language in the running app -----------------------------------------------------------------
def tab_texts(window) -> list[str]:
    return [window.tabs.tabText(i) for i in range(window.tabs.count())]


def choose(box: QComboBox, code: str) -> None:
    """Picks a language as the user does (activated, not a programmatic change)."""
    index = box.findData(code)
    assert index >= 0, f"{code} is not offered: {[box.itemText(i) for i in range(box.count())]}"
    box.setCurrentIndex(index)
    box.activated.emit(index)


def test_the_language_is_switched_while_signed_in_and_nothing_typed_is_lost(qtbot, paths, services, admin, app,
                                                                             screenshot):
    controller, login = app
    i18n.set_language("en")
    kamla = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60))
    old = controller.window
    assert tab_texts(old)[:4] == ["Home", "Patients", "Devices", "Users"]
    offered = [old.languages.itemText(i) for i in range(old.languages.count())]
    assert offered == ["English", "हिन्दी"], "each language named in its own language"
    type_into(qtbot, old.patients.search, "kamla")
    asked = queued(services, admin, services.patients.register(admin, PatientForm(name="Ravi Kumar", sex="male",
                                                                                    age_years=34)))
    pull(services, ("question", "q-1", records.question("q-1", asked.id, text="A photo of her feet, please.")))
    answering = loaded(qtbot, old.open_case(asked.id))
    answering.questions.answer.setPlainText("Feet swollen since a week")
    type_into(qtbot, answering.vitals.inputs["pulse_per_min"], "96")   # new vitals while the doctor waits
    editor = old.open_case(services.cases.open_case(admin, kamla.id).id)
    type_without_waiting(qtbot, editor)   # the autosave has not run: the text is only in the form

    choose(old.languages, "hi")
    new = controller.window
    assert new is not old and new.isVisible() and not old.isVisible()
    assert controller.user.id == admin.id and new.user.id == admin.id, "still signed in, as the same user"
    assert login.answers == ["decline"], "no sign-in was asked for"
    assert tab_texts(new)[:4] == ["होम", "मरीज़", "डिवाइस", "उपयोगकर्ता"]
    assert new.windowTitle() == "Spoke — HWC Rampur" and "साइन आउट" in [b.text() for b in new.findChildren(QAbstractButton)]
    assert new.languages.currentData() == "hi"
    answering, again = (loaded(qtbot, e) for e in new.open_case_editors())
    assert new.tabs.currentWidget() is again, "the tab that was open is open again"
    assert answering.questions.answer.toPlainText() == "Feet swollen since a week", "the answer being written"
    assert answering.vitals.inputs["pulse_per_min"].text() == "96", "vitals typed for the doctor who asked"
    assert again.complaints.other.text() == TYPED and again.vitals.inputs["pulse_per_min"].text() == "104", \
        "what was typed before the switch is there after it"
    assert again.vitals.title() == i18n._("Vital signs") != "Vital signs", "labels built in the vitals form too"
    assert again.vitals.findChildren(QLabel)[0].text() == i18n._("BP systolic") != "BP systolic"
    assert new.patients.search.text() == "kamla"
    qtbot.waitUntil(lambda: new.patients.model.rowCount() == 1, timeout=5_000)
    screenshot(new, "hindi-switched")
    assert controller.runner.wait(10_000)
    assert services.settings.get(LANGUAGE) == "hi", "remembered for the next start"

    choose(new.languages, "en")
    back = controller.window
    assert back is not new and tab_texts(back)[:4] == ["Home", "Patients", "Devices", "Users"]
    assert loaded(qtbot, back.open_case_editors()[1]).complaints.other.text() == TYPED
    with qtbot.waitSignal(back.open_case_editors()[0].saved, timeout=10_000):
        back.open_case_editors()[0].save()   # the vitals carried over count as typed: saving records them
    assert [v.vitals.pulse_per_min for v in services.cases.get(asked.id).vitals] == [118, 96]
    assert back.user.id == admin.id and login.answers == ["decline"]
    qtbot.waitUntil(lambda: back.patients.model.rowCount() == 1, timeout=5_000)   # the search it runs again
    assert controller.runner.wait(10_000)
    assert services.settings.get(LANGUAGE) == "en"


def test_the_sign_in_screen_switches_at_once_and_keeps_the_user_name(qtbot, runner, services, admin):
    i18n.set_language("en")
    login = LoginDialog(runner, services.auth, "HWC Rampur (HWC-UP-0042)")
    qtbot.addWidget(login)
    login.show()
    assert login.windowTitle() == "Sign in to Spoke"
    assert {"User name", "Password", "Language"} <= {label.text() for label in login.findChildren(QLabel)}
    type_into(qtbot, login.username, "admin")
    type_into(qtbot, login.password, "wrong-password")
    login.submit()
    qtbot.waitUntil(lambda: login.message.isVisible(), timeout=10_000)
    with qtbot.waitSignal(login.language_chosen) as chosen:
        choose(login.languages, "hi")
    assert chosen.args == ["hi"] and i18n.current_language() == "hi"
    assert login.windowTitle() == "Spoke में साइन इन करें" and not login.message.isVisible()
    assert login.username.text() == "admin"
    labels = [label.text() for label in login.findChildren(QLabel) if label.isVisible()]
    assert "उपयोगकर्ता नाम" in labels and "पासवर्ड" in labels and "भाषा" in labels, labels
    assert [b.text() for b in login.buttons.buttons()] == ["ठीक है", "रद्द करें"]
    assert not untranslated(login), untranslated(login)
    type_into(qtbot, login.password, ADMIN_PASSWORD)
    with qtbot.waitSignal(login.accepted, timeout=10_000):
        login.submit()


class HindiLogin(Login):
    """Picks हिन्दी on the sign-in screen the app opens, then signs in as admin; declines the next sign-in."""

    def tick(self) -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, LoginDialog) and dialog.languages.currentData() != "hi":
            choose(dialog.languages, "hi")
            return
        super().tick()


def run_app(paths, login_class) -> tuple[str, list[str]]:
    """Starts the app on the data folder as Spoke does (no --language), signs in; the language and the tabs shown."""
    from spoke_client.app import AppController

    i18n.set_language(None)   # neither --language nor SPOKE_LANGUAGE
    login = login_class()
    controller = AppController(paths)
    try:
        assert controller.start()
        assert controller.runner.wait(10_000)
        return i18n.current_language(), tab_texts(controller.window)
    finally:
        login.stop()
        window = controller.window
        controller.shutdown()
        if window is not None:
            window.close()
            window.deleteLater()


def test_the_language_chosen_at_sign_in_is_the_one_spoke_starts_in_next_time(qtbot, paths, services, admin):
    i18n.set_language(None)
    if i18n.current_language() != "en":
        pytest.skip("this machine's locale chooses a language already")
    assert run_app(paths, HindiLogin)[1][0] == "होम", "chosen on the sign-in screen: the main window follows"
    assert services.settings.get(LANGUAGE) == "hi"
    assert run_app(paths, Login) == ("hi", ["होम", "मरीज़", "डिवाइस", "उपयोगकर्ता"]), "and the next start is in Hindi"


def test_a_language_given_on_the_command_line_wins_over_the_one_remembered(qtbot, paths, services, admin):
    from spoke_client.app import AppController

    services.settings.remember_language(admin, "hi")
    i18n.set_language("en")   # --language en
    controller = AppController(paths)
    try:
        assert controller.open_store()
        controller.apply_remembered_language()
        assert i18n.current_language() == "en"
    finally:
        controller.shutdown()


def test_only_a_language_spoke_has_is_remembered(services):
    from spoke_client.domain.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        services.settings.remember_language(None, "xx")
    assert services.settings.get(LANGUAGE) == ""
