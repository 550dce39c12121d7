"""First-run set-up, sign-in, the idle lock screen, and the language chooser they and the main window show."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from spoke_client.domain.errors import DatabaseDamaged, SpokeError, ValidationFailed
from spoke_client.domain.model import Facility, User
from spoke_client.i18n import _, available_languages, current_language, set_language
from spoke_client.services.auth import AuthService, FacilityForm
from spoke_client.ui.tasks import TaskRunner
from spoke_client.ui.widgets import ErrorLabel, FieldForm


def _password() -> QLineEdit:
    w = QLineEdit()
    w.setEchoMode(QLineEdit.EchoMode.Password)
    return w


class LanguageBox(QComboBox):
    """The languages Spoke has catalogs for, each named in its own language ("English", "हिन्दी"), so a reader of
    either finds theirs whatever the screen is in now. `chosen` is emitted when the user picks another one."""

    chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("language")
        for code, name in available_languages():
            self.addItem(name, code)
        self.show_current()
        self.activated.connect(self._activated)

    def show_current(self) -> None:
        self.setCurrentIndex(max(self.findData(current_language()), 0))
        self.setToolTip(_("The language of Spoke's screens"))

    def _activated(self, index: int) -> None:
        code = self.itemData(index)
        if code and code != current_language():
            self.chosen.emit(code)


class _ServiceDialog(QDialog):
    """A dialog whose OK runs a service call on the write lane and shows the error in place."""

    language_chosen = Signal(str)   # the user picked another language here (dialogs with a language chooser)

    def __init__(self, runner: TaskRunner, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.setWindowTitle(title)
        self.layout_ = QVBoxLayout(self)
        self.fields = FieldForm(self)
        self.message = ErrorLabel(self)
        self.message.setObjectName("message")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        self.intro: QLabel | None = None
        self.languages: LanguageBox | None = None
        self.language_label: QLabel | None = None
        self._button_texts()

    def _button_texts(self) -> None:
        # Qt's own words for these come from Qt's catalogs, which Spoke does not ship: Spoke's catalog says them.
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(_("OK"))
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText(_("Cancel"))

    def _relabel(self, name: str, text: str) -> None:
        """A field's label, in the language of now."""
        label = self.fields.form.labelForField(self.fields.widgets[name].parentWidget())
        if isinstance(label, QLabel):
            label.setText(text)

    def _add_language_box(self) -> LanguageBox:
        """The language chooser at the top right; picking one switches the dialog at once (what was typed stays) and
        emits `language_chosen` for the app to remember it."""
        row = QHBoxLayout()
        row.addStretch(1)
        self.language_label = QLabel()
        self.languages = LanguageBox(self)
        self.language_label.setBuddy(self.languages)
        row.addWidget(self.language_label)
        row.addWidget(self.languages)
        self.layout_.addLayout(row)
        self.languages.chosen.connect(self.switch_language)
        return self.languages

    def switch_language(self, language: str) -> None:
        set_language(language)
        self.fields.clear_errors()        # said in the other language; the next try says it again in this one
        self.message.show_message(None)
        self.retranslate()
        self.language_chosen.emit(language)

    def retranslate(self) -> None:
        """Sets every text of the dialog in the language of now (the dialogs with a language chooser override it)."""
        self._button_texts()
        if self.languages is not None and self.language_label is not None:
            self.language_label.setText(_("Language"))
            self.languages.show_current()

    def finish_layout(self, intro: str) -> None:
        if intro:
            self.intro = QLabel(intro)
            self.intro.setWordWrap(True)
            self.layout_.addWidget(self.intro)
        self.layout_.addWidget(self.fields)
        self.layout_.addWidget(self.message)
        self.layout_.addWidget(self.buttons)

    def submit(self) -> None:
        self.buttons.setEnabled(False)
        self.message.show_message(None)
        self.runner.run(self.call, self.succeeded, self.failed)

    def call(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def succeeded(self, result) -> None:
        self.buttons.setEnabled(True)
        self.result_value = result
        self.accept()

    def failed(self, exc: Exception) -> None:
        self.buttons.setEnabled(True)
        if isinstance(exc, ValidationFailed):
            rest = self.fields.show_errors(exc)
            self.message.show_message("\n".join(rest) if rest else None)
        elif isinstance(exc, SpokeError):
            self.message.show_message(exc.message)
        else:
            self.message.show_message(_("Something went wrong: {error}").format(error=exc))


def _same_passwords(dialog) -> bool:
    """A dialog with `password` and `confirm`: False, and the reason shown under the second, when they differ."""
    if dialog.password.text() == dialog.confirm.text():
        return True
    dialog.fields.clear_errors()
    dialog.fields.errors["confirm"].show_message(_("The two passwords are not the same."))
    return False


class SetupDialog(_ServiceDialog):
    def __init__(self, runner: TaskRunner, auth: AuthService, parent: QWidget | None = None) -> None:
        super().__init__(runner, "", parent)
        self.auth = auth
        self._add_language_box()
        f, label = self.fields, self.labels()
        self.name = f.add("name", label["name"], QLineEdit())
        self.hwc_id = f.add("hwc_id", label["hwc_id"], QLineEdit())
        self.district = f.add("district", label["district"], QLineEdit())
        self.state = f.add("state", label["state"], QLineEdit())
        self.username = f.add("username", label["username"], QLineEdit())
        self.full_name = f.add("full_name", label["full_name"], QLineEdit())
        self.password = f.add("password", label["password"], _password())
        self.confirm = f.add("confirm", label["confirm"], _password())
        self.finish_layout(self.intro_text())
        self.retranslate()

    @staticmethod
    def labels() -> dict[str, str]:
        return {"name": _("Facility name"), "hwc_id": _("HWC identifier"), "district": _("District"),
                "state": _("State"), "username": _("Administrator's user name"),
                "full_name": _("Administrator's full name"), "password": _("Password"), "confirm": _("Password again")}

    @staticmethod
    def intro_text() -> str:
        return _("This computer is new. Describe the health-and-wellness centre and create its first administrator, "
                 "who can then add the other users.")

    def retranslate(self) -> None:
        super().retranslate()
        self.setWindowTitle(_("Set up Spoke on this computer"))
        for name, text in self.labels().items():
            self._relabel(name, text)
        if self.intro is not None:
            self.intro.setText(self.intro_text())

    def submit(self) -> None:
        if _same_passwords(self):
            super().submit()

    def call(self) -> tuple[Facility, User]:
        form = FacilityForm(self.name.text(), self.hwc_id.text(), self.district.text(), self.state.text())
        return self.auth.setup(form, self.username.text(), self.full_name.text(), self.password.text())


class LoginDialog(_ServiceDialog):
    """Sign-in. `auth` is the open store's users service, or (the first sign-in of a session) a vault.Gate, which
    opens the encrypted data with the user's key slot. When the data is encrypted and closed, the screen says so
    and offers the recovery key; a database that fails its check on opening ends the dialog with `damaged` set."""

    def __init__(self, runner: TaskRunner, auth, facility_name: str, parent: QWidget | None = None) -> None:
        super().__init__(runner, "", parent)
        self.auth = auth
        self.facility_name = facility_name
        self.damaged: DatabaseDamaged | None = None
        self.locked = bool(getattr(auth, "locked", False))
        self._add_language_box()
        label = self.labels()
        self.username = self.fields.add("username", label["username"], QLineEdit())
        self.password = self.fields.add("password", label["password"], _password())
        self.recover_button = None
        if self.locked:
            self.recover_button = self.buttons.addButton("", QDialogButtonBox.ButtonRole.ResetRole)
            self.recover_button.setObjectName("recover")
            self.recover_button.clicked.connect(self.use_recovery_key)
        self.finish_layout(self.intro_text())
        self.retranslate()
        self.username.setFocus(Qt.FocusReason.OtherFocusReason)

    def submit(self) -> None:
        super().submit()
        if hasattr(self.auth, "conversion_progress"):
            # An administrator's first sign-in after the update may encrypt a large database: say so, with how far.
            self._progress_timer = QTimer(self)
            self._progress_timer.timeout.connect(self._show_conversion)
            self._progress_timer.start(300)

    def _show_conversion(self) -> None:
        progress = self.auth.conversion_progress()
        if progress is not None:
            # xgettext:no-python-format
            self.message.show_message(_("Encrypting the data on this computer (once, after the update): {percent} % "
                                        "done. Keep the computer on until it is finished.").format(
                percent=int(progress * 100)))

    def _stop_progress(self) -> None:
        timer = getattr(self, "_progress_timer", None)
        if timer is not None:
            timer.stop()
            self._progress_timer = None

    def succeeded(self, result) -> None:
        self._stop_progress()
        super().succeeded(result)

    def intro_text(self) -> str:
        if not self.locked:
            return self.facility_name
        return "\n".join(x for x in (self.facility_name, _(
            "The patient data on this computer is encrypted. It opens when a user signs in; until then nothing of it "
            "can be read, and nothing is sent to the hub.")) if x)

    def use_recovery_key(self) -> None:
        dialog = RecoverDialog(self.runner, self.auth, self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.result_value = dialog.result_value
            self.accept()

    @staticmethod
    def labels() -> dict[str, str]:
        return {"username": _("User name"), "password": _("Password")}

    def retranslate(self) -> None:
        super().retranslate()
        self.setWindowTitle(_("Sign in to Spoke"))
        for name, text in self.labels().items():
            self._relabel(name, text)
        if self.intro is not None:
            self.intro.setText(self.intro_text())
        if self.recover_button is not None:
            self.recover_button.setText(_("Every password lost? Use the recovery key"))

    def call(self) -> User:
        return self.auth.login(self.username.text(), self.password.text())

    def failed(self, exc: Exception) -> None:
        self._stop_progress()
        if isinstance(exc, DatabaseDamaged):
            self.damaged = exc       # the app offers the last good copy
            self.reject()
            return
        super().failed(exc)
        self.password.clear()
        self.password.setFocus()


class RecoverDialog(_ServiceDialog):
    """Every password lost: the recovery key printed at set-up opens the data, and an administrator gets a new
    password (and so a new key slot)."""

    def __init__(self, runner: TaskRunner, gate, parent: QWidget | None = None) -> None:
        super().__init__(runner, _("Open the data with the recovery key"), parent)
        self.gate = gate
        self.recovery_key = self.fields.add("recovery_key", _("Recovery key"), QLineEdit())
        self.recovery_key.setPlaceholderText("XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX")
        self.username = self.fields.add("username", _("Administrator's user name"), QLineEdit())
        self.password = self.fields.add("password", _("New password"), _password())
        self.confirm = self.fields.add("confirm", _("New password again"), _password())
        self.finish_layout(_("Type the recovery key kept in the centre's records (8 groups of 4 letters and digits) "
                             "and choose a new password for an administrator. The other users keep their passwords."))

    def submit(self) -> None:
        if _same_passwords(self):
            super().submit()

    def call(self) -> User:
        return self.gate.recover(self.recovery_key.text(), self.username.text(), self.password.text())


class RecoveryKeyDialog(QDialog):
    """The recovery key, shown once to the administrator who set up (or first encrypted) the data. OK waits until
    they say it is written down."""

    def __init__(self, recovery_key: str, users_without_key: list[str] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(_("The recovery key of this computer's data"))
        layout = QVBoxLayout(self)
        intro = QLabel(_("The patient data on this computer is encrypted. If every password is forgotten, only this "
                         "recovery key opens it. Write it down or print it now, and keep it with the centre's records, "
                         "away from this computer. It is not shown again."))
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.key_label = QLabel(recovery_key)
        self.key_label.setObjectName("recovery_key")
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setPointSize(font.pointSize() + 6)
        self.key_label.setFont(font)
        self.key_label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)   # not to the clipboard
        layout.addWidget(self.key_label, alignment=Qt.AlignmentFlag.AlignCenter)
        if users_without_key:
            others = QLabel(_("These users cannot open the data yet, as their accounts are older than its encryption: "
                              "{users}. Each gets a key at their next sign-in on this computer while Spoke is open, or "
                              "when you set their password again.").format(users=", ".join(users_without_key)))
            others.setObjectName("users_without_key")
            others.setWordWrap(True)
            layout.addWidget(others)
        self.written = QCheckBox(_("I have written down the recovery key"))
        self.written.setObjectName("written")
        layout.addWidget(self.written)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(_("OK"))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
        self.written.toggled.connect(self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled)
        self.buttons.accepted.connect(self.accept)
        layout.addWidget(self.buttons)
        self.setWindowFlag(Qt.WindowType.WindowCloseButtonHint, False)

    def reject(self) -> None:   # Escape does not skip it
        if self.written.isChecked():
            super().reject()


class LockDialog(_ServiceDialog):
    """Shown after the idle time: the same user re-enters the password, or signs out."""

    def __init__(self, runner: TaskRunner, auth: AuthService, user: User, parent: QWidget | None = None) -> None:
        super().__init__(runner, _("Spoke is locked"), parent)
        self.auth = auth
        self.user = user
        self.password = self.fields.add("password", _("Password"), _password())
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText(_("Sign out"))
        self.finish_layout(_("Spoke locked itself after a period of no use. {name}, enter your password to go on.").format(
            name=user.full_name))
        self.setWindowFlag(Qt.WindowType.WindowCloseButtonHint, False)

    def call(self) -> User:
        return self.auth.unlock(self.user, self.password.text())

    def failed(self, exc: Exception) -> None:
        super().failed(exc)
        self.password.clear()
