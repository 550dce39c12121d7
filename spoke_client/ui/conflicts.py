"""Patient details that two computers (or a computer and the hub) changed at once: the user keeps the merged value
or takes the other one. Nothing was lost either way; this only decides which value the record shows."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from spoke_client.domain.model import User
from spoke_client.i18n import _
from spoke_client.services.conflicts import ConflictView
from spoke_client.services.runtime import Services
from spoke_client.ui.tasks import TaskRunner
from spoke_client.ui.widgets import ErrorLabel


class ConflictsDialog(QDialog):
    def __init__(self, runner: TaskRunner, services: Services, user: User, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.services, self.user = runner, services, user
        self.setWindowTitle(_("Details changed on two computers at once"))
        self.resize(820, 380)
        lay = QVBoxLayout(self)
        intro = QLabel(_("The same detail of these patients was changed in two places before they could see each "
                         "other's change. Spoke kept the later one. Check with the patient, then keep it or use the "
                         "other value."))
        intro.setWordWrap(True)
        lay.addWidget(intro)
        self.table = QTreeWidget()
        self.table.setObjectName("conflicts")
        self.table.setRootIsDecorated(False)
        self.table.setHeaderLabels([_("Patient"), _("Detail"), _("Now shown"), _("Other value"), _("Other value from")])
        lay.addWidget(self.table, 1)
        self.message = ErrorLabel(self)
        lay.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.keep_button = buttons.addButton(_("Keep what is shown"), QDialogButtonBox.ButtonRole.ActionRole)
        self.keep_button.setObjectName("keep")
        self.other_button = buttons.addButton(_("Use the other value"), QDialogButtonBox.ButtonRole.ActionRole)
        self.other_button.setObjectName("use_other")
        self.keep_button.clicked.connect(lambda: self._settle(use_other=False))
        self.other_button.clicked.connect(lambda: self._settle(use_other=True))
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.items: list[ConflictView] = []
        self.refresh()

    def refresh(self) -> None:
        self.runner.run(self.services.conflicts.open_conflicts, self._show, self._failed, lane="read")

    def _show(self, items: list[ConflictView]) -> None:
        self.items = items
        self.table.clear()
        for c in items:
            self.table.addTopLevelItem(QTreeWidgetItem([c.patient_name, c.what, c.kept, c.other, c.other_from]))
        for i in range(4):
            self.table.resizeColumnToContents(i)
        if items:
            self.table.setCurrentItem(self.table.topLevelItem(0))
        self.keep_button.setEnabled(bool(items))
        self.other_button.setEnabled(bool(items))

    def _settle(self, use_other: bool) -> None:
        row = self.table.indexOfTopLevelItem(self.table.currentItem()) if self.table.currentItem() else -1
        if row < 0:
            self.message.show_message(_("Select a row first."))
            return
        conflict = self.items[row]
        if use_other:
            work = lambda: self.services.patients.use_conflict_value(self.user, conflict.id)  # noqa: E731
        else:
            work = lambda: self.services.conflicts.keep(self.user, conflict.id)  # noqa: E731
        self.runner.run(work, lambda _r: self.refresh(), self._failed)

    def _failed(self, exc: Exception) -> None:
        self.message.show_message(getattr(exc, "message", None) or str(exc))
