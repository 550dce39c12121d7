"""Small shared widgets: labelled fields with an inline error line, colours for red-flag severities."""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QLabel, QVBoxLayout, QWidget

from spoke_client.domain.errors import ValidationFailed
from spoke_client.domain.redflags import Severity

SEVERITY_COLOURS = {
    Severity.INFO: ("#1b5e20", "#e8f5e9"),
    Severity.LOW: ("#7a5a00", "#fff8e1"),
    Severity.URGENT: ("#b34700", "#ffe0cc"),
    Severity.EMERGENCY: ("#ffffff", "#c62828"),
}


def severity_style(level: Severity) -> str:
    fg, bg = SEVERITY_COLOURS[level]
    return f"color: {fg}; background: {bg}; border-radius: 4px; padding: 6px; font-weight: bold;"


class ErrorLabel(QLabel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setStyleSheet("color: #b00020;")
        self.hide()

    def show_message(self, text: str | None, *, warning: bool = False) -> None:
        self.setStyleSheet("color: #8a5a00;" if warning else "color: #b00020;")
        self.setText(text or "")
        self.setVisible(bool(text))


class FieldForm(QWidget):
    """A QFormLayout where each field has an error line under it, addressed by the service's field name."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.form = QFormLayout(self)
        self.errors: dict[str, ErrorLabel] = {}
        self.widgets: dict[str, QWidget] = {}

    def add(self, name: str, label: str, widget: QWidget) -> QWidget:
        box = QWidget(self)
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(widget)
        err = ErrorLabel(box)
        lay.addWidget(err)
        err.setObjectName(f"error_{name}")
        widget.setObjectName(name)
        self.form.addRow(label, box)
        self.errors[name] = err
        self.widgets[name] = widget
        return widget

    def clear_errors(self) -> None:
        for e in self.errors.values():
            e.show_message(None)

    def show_errors(self, exc: ValidationFailed) -> list[str]:
        """Shows each problem under its field; returns the messages that had no field here."""
        self.clear_errors()
        unplaced = []
        first = None
        for p in exc.problems:
            if p.field in self.errors:
                self.errors[p.field].show_message(p.message)
                first = first or self.widgets[p.field]
            else:
                unplaced.append(p.message)
        if first is not None:
            first.setFocus()
        return unplaced
