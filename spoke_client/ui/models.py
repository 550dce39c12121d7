"""Item models for the tables: cases, patients, users. They hold service dataclasses, never rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from spoke_client.domain.abha import format_abha_number
from spoke_client.domain.consultation import PrescriptionStatus, PrescriptionSummary
from spoke_client.domain.model import Patient, Relation, Sex, User
from spoke_client.domain.redflags import Severity
from spoke_client.i18n import _, when_text
from spoke_client.services.cases import CaseSummary, status_label
from spoke_client.services.search import PatientHit
from spoke_client.ui.widgets import SEVERITY_COLOURS

T = TypeVar("T")
Index = QModelIndex | QPersistentModelIndex


class ListTableModel(QAbstractTableModel, Generic[T]):
    """A read-only table over a list of items, one column per (header, getter)."""

    def __init__(self, columns: Sequence[tuple[str, Callable[[T], str]]], parent=None) -> None:
        super().__init__(parent)
        self.columns = list(columns)
        self.items: list[T] = []

    def set_items(self, items: Sequence[T]) -> None:
        self.beginResetModel()
        self.items = list(items)
        self.endResetModel()

    def item(self, row: int) -> T:
        return self.items[row]

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 - Qt override
        return 0 if parent.isValid() else len(self.items)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 - Qt override
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.columns):
            return self.columns[section][0]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.items) or index.column() >= len(self.columns):
            return None
        item = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.columns[index.column()][1](item)
        return self.extra(item, role)

    def extra(self, item: T, role: int) -> Any:
        return None




class CaseTableModel(ListTableModel[CaseSummary]):
    def __init__(self, parent=None) -> None:
        super().__init__([
            (_("Priority"), lambda c: priority_text(c.priority)),
            (_("Patient"), lambda c: c.patient.name),
            (_("Age/Sex"), lambda c: age_sex(c.patient)),
            (_("Village"), lambda c: c.patient.village),
            (_("Complaints"), lambda c: c.complaints),
            (_("Status"), lambda c: status_label(c.status)),
            (_("Opened"), lambda c: when_text(c.created_at)),
        ], parent)

    def extra(self, item: CaseSummary, role: int) -> Any:
        if item.priority >= Severity.URGENT:
            fg, bg = SEVERITY_COLOURS[Severity(item.priority)]
            if role == Qt.ItemDataRole.BackgroundRole:
                return QBrush(QColor(bg))
            if role == Qt.ItemDataRole.ForegroundRole:
                return QBrush(QColor(fg))
        return None


class PrescriptionTableModel(ListTableModel[PrescriptionSummary]):
    """Prescriptions received, newest first; a cancelled one or one whose signature failed says so."""

    def __init__(self, parent=None) -> None:
        super().__init__([
            (_("Patient"), lambda p: p.patient.name),
            (_("Age/Sex"), lambda p: age_sex(p.patient)),
            (_("Issued"), lambda p: when_text(p.issued_at)),
            (_("Doctor"), lambda p: p.doctor),
            (_("Medicines"), lambda p: str(p.medicines)),
            (_("Status"), prescription_state),
        ], parent)

    def extra(self, item: PrescriptionSummary, role: int) -> Any:
        if not item.signature_ok or item.status == PrescriptionStatus.CANCELLED:
            if role == Qt.ItemDataRole.ForegroundRole:
                return QBrush(QColor("#b00020"))
        return None


def prescription_state(p: PrescriptionSummary) -> str:
    if p.status == PrescriptionStatus.CANCELLED:
        return _("Cancelled")
    return _("Signature checked") if p.signature_ok else _("SIGNATURE NOT CHECKED")


def priority_text(priority: int) -> str:
    return {3: _("EMERGENCY"), 2: _("Urgent"), 1: _("Watch")}.get(priority, "")


def relation_label(relation: Relation) -> str:
    """S/o, D/o, W/o, H/o, C/o as the registers of the UI's language write them."""
    # TRANSLATORS: how a register names a relative before the relative's name: son of, daughter of, wife of,
    # husband of, care of
    return {Relation.SON_OF: _("S/o"), Relation.DAUGHTER_OF: _("D/o"), Relation.WIFE_OF: _("W/o"),
            Relation.HUSBAND_OF: _("H/o"), Relation.CARE_OF: _("C/o")}.get(relation, relation.value)


def relative_text(p: Patient) -> str:
    return f"{relation_label(p.relative_relation)} {p.relative_name}" if p.relative_relation and p.relative_name \
        else p.relative_name


def age_sex(p: Patient) -> str:
    """'~60 y F', as a register's column writes it."""
    # TRANSLATORS: one letter for the sex in a table's Age/Sex column: female, male, other
    letter = {Sex.FEMALE: _("F"), Sex.MALE: _("M"), Sex.OTHER: _("O")}.get(p.sex, "")
    return f"{p.age_text()} {letter}"


class PatientTableModel(ListTableModel[PatientHit]):
    def __init__(self, parent=None) -> None:
        super().__init__([
            (_("Name"), lambda h: h.patient.name),
            (_("Age/Sex"), lambda h: age_sex(h.patient)),
            (_("Relative"), lambda h: relative_text(h.patient)),
            (_("Village"), lambda h: h.patient.village),
            (_("Phone"), lambda h: h.patient.phone),
            (_("ABHA number"), lambda h: format_abha_number(h.patient.abha_number) if h.patient.abha_number else ""),
        ], parent)


class UserTableModel(ListTableModel[User]):
    def __init__(self, parent=None) -> None:
        super().__init__([
            (_("User name"), lambda u: u.username),
            (_("Full name"), lambda u: u.full_name),
            (_("Role"), lambda u: role_label(u.role.value)),
            (_("Active"), lambda u: _("yes") if u.active else _("no")),
        ], parent)


def role_label(role: str) -> str:
    return {"paramedic": _("Paramedic / CHO"), "generalist": _("Generalist (medical officer)"),
            "admin": _("Administrator")}.get(role, role)
