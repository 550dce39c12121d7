"""First-run set-up, sign-in, and the idle lock screen."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from spoke_client.domain.errors import SpokeError, ValidationFailed
from spoke_client.domain.model import Facility, User
from spoke_client.i18n import _
from spoke_client.services.auth import AuthService, FacilityForm
from spoke_client.ui.tasks import TaskRunner
from spoke_client.ui.widgets import ErrorLabel, FieldForm


def _password() -> QLineEdit:
    w = QLineEdit()
    w.setEchoMode(QLineEdit.EchoMode.Password)
    return w


class _ServiceDialog(QDialog):
    """A dialog whose OK runs a service call on the write lane and shows the error in place."""

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

    def finish_layout(self, intro: str) -> None:
        if intro:
            label = QLabel(intro)
            label.setWordWrap(True)
            self.layout_.addWidget(label)
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


class SetupDialog(_ServiceDialog):
    def __init__(self, runner: TaskRunner, auth: AuthService, parent: QWidget | None = None) -> None:
        super().__init__(runner, _("Set up Spoke on this computer"), parent)
        self.auth = auth
        f = self.fields
        self.name = f.add("name", _("Facility name"), QLineEdit())
        self.hwc_id = f.add("hwc_id", _("HWC identifier"), QLineEdit())
        self.district = f.add("district", _("District"), QLineEdit())
        self.state = f.add("state", _("State"), QLineEdit())
        self.username = f.add("username", _("Administrator's user name"), QLineEdit())
        self.full_name = f.add("full_name", _("Administrator's full name"), QLineEdit())
        self.password = f.add("password", _("Password"), _password())
        self.confirm = f.add("confirm", _("Password again"), _password())
        self.finish_layout(_("This computer is new. Describe the health-and-wellness centre and create its first "
                             "administrator, who can then add the other users."))

    def submit(self) -> None:
        if self.password.text() != self.confirm.text():
            self.fields.clear_errors()
            self.fields.errors["confirm"].show_message(_("The two passwords are not the same."))
            return
        super().submit()

    def call(self) -> tuple[Facility, User]:
        form = FacilityForm(self.name.text(), self.hwc_id.text(), self.district.text(), self.state.text())
        return self.auth.setup(form, self.username.text(), self.full_name.text(), self.password.text())


class LoginDialog(_ServiceDialog):
    def __init__(self, runner: TaskRunner, auth: AuthService, facility_name: str, parent: QWidget | None = None) -> None:
        super().__init__(runner, _("Sign in to Spoke"), parent)
        self.auth = auth
        self.username = self.fields.add("username", _("User name"), QLineEdit())
        self.password = self.fields.add("password", _("Password"), _password())
        self.finish_layout(facility_name)
        self.username.setFocus(Qt.FocusReason.OtherFocusReason)

    def call(self) -> User:
        return self.auth.login(self.username.text(), self.password.text())

    def failed(self, exc: Exception) -> None:
        super().failed(exc)
        self.password.clear()
        self.password.setFocus()


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
