"""The selfcheck's Qt part: does Qt load its platform plugin here, and is there a font that writes Hindi?"""

from __future__ import annotations

import sys

from spoke_client.i18n import _


def qt_checks(report) -> None:
    try:
        from PySide6 import __version__ as qt_version
        from PySide6.QtGui import QFontDatabase, QGuiApplication

        app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])
        report.check(True, _("Qt {v} on the '{p}' platform").format(v=qt_version, p=app.platformName()))
        families = QFontDatabase.families(QFontDatabase.WritingSystem.Devanagari)
        report.check(bool(families), _("a font for Devanagari: {f}").format(f=families[0] if families else _("none")))
    except Exception as exc:  # noqa: BLE001 - a missing plugin or library is what this check is for
        report.check(False, _("Qt does not start here: {e}").format(e=exc))
