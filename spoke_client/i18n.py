"""The one string catalog (gettext) for the UI, the CLI and printed documents.

Strings are translated where they are shown, never when a module is imported: the language can change while Spoke
runs. A string kept in a constant is marked with `N_` (so the extraction finds it) and passed through `_` at use."""

from __future__ import annotations

import gettext
import os
import re
from datetime import datetime
from pathlib import Path

DOMAIN = "spoke"
RESOURCES = Path(os.environ.get("SPOKE_RESOURCES") or Path(__file__).resolve().parent.parent / "resources")
LOCALE_DIR = RESOURCES / "locale"

SOURCE_LANGUAGE = "en"   # the language the strings are written in
SOURCE_LANGUAGE_NAME = "English"
# A language's name in its own language comes from its catalog's "X-Language-Name" header; these are for a catalog
# without one.
KNOWN_NAMES = {"hi": "हिन्दी", "bn": "বাংলা", "mr": "मराठी", "ta": "தமிழ்", "te": "తెలుగు", "gu": "ગુજરાતી",
               "kn": "ಕನ್ನಡ", "ml": "മലയാളം", "or": "ଓଡ଼ିଆ", "pa": "ਪੰਜਾਬੀ", "as": "অসমীয়া", "ur": "اردو"}

# A catalog is offered as a language of the screens once it translates at least half of the template's messages (a
# catalog made for the printed paper only, with its few labels, is not: its screens would be English).
SCREEN_COVERAGE = 0.5

_translation: gettext.NullTranslations = gettext.NullTranslations()
_language = SOURCE_LANGUAGE
_chosen = False   # True once a language was asked for by name (command line, environment, the user's choice)


def set_language(language: str | None) -> None:
    """Switch the catalog; None or an unknown language falls back to English (the source strings)."""
    global _translation, _language, _chosen
    languages = [language] if language else None
    _translation = gettext.translation(DOMAIN, LOCALE_DIR, languages=languages, fallback=True)
    _chosen = bool(language)
    if type(_translation) is gettext.NullTranslations:
        _language = SOURCE_LANGUAGE
    else:   # the catalog found (from the environment's languages when none was given) says which it is
        _language = _translation.info().get("language") or language or SOURCE_LANGUAGE


def current_language() -> str:
    """The language the UI's text (and the red flags' messages) is in now: "hi", or "en" for the source strings."""
    return _language


def language_chosen() -> bool:
    """Whether the language now in use was asked for by name, rather than taken from the system's locale."""
    return _chosen


def available_languages() -> list[tuple[str, str]]:
    """The languages Spoke's screens can be shown in, each with its name in its own language: English first, then
    every compiled catalog in resources/locale that translates much of the template (adding a language is adding its
    catalog)."""
    found = [(SOURCE_LANGUAGE, SOURCE_LANGUAGE_NAME)]
    if not LOCALE_DIR.is_dir():
        return found
    template = _template_size()
    for mo in sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.mo")):
        code = mo.parent.parent.name
        if code == SOURCE_LANGUAGE:
            continue
        try:
            with mo.open("rb") as f:
                catalog = gettext.GNUTranslations(f)
        except (OSError, ValueError):
            continue
        translated = len({key if isinstance(key, str) else key[0] for key in catalog._catalog} - {""})  # noqa: SLF001
        if template and translated < SCREEN_COVERAGE * template:
            continue
        found.append((code, catalog.info().get("x-language-name") or KNOWN_NAMES.get(code, code)))
    return found


def _template_size() -> int | None:
    """How many messages the template (spoke.pot) holds; None without one."""
    try:
        text = (LOCALE_DIR / f"{DOMAIN}.pot").read_text(encoding="utf-8")
    except OSError:
        return None
    return max(len(re.findall(r"^msgid ", text, flags=re.M)) - 1, 0)   # less the header


def _(message: str) -> str:
    return _translation.gettext(message)


def N_(message: str) -> str:  # noqa: N802 - gettext's own name for the marker
    """Marks a string for the catalog without translating it now: it is kept in a constant and translated with `_`
    where it is shown, in the language of that moment."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translation.ngettext(singular, plural, n)


# Qt's own words that Spoke's screens show, by the Qt context that asks for them: standard buttons (dialogs, message
# boxes, input dialogs), the context menu of text fields, the tab's close button. Qt's catalogs are not shipped (Qt
# has none in Hindi): `scripts/i18n.sh compile` writes these from Spoke's catalog into each language's qt.qm.
QT_WORDS = {
    "QPlatformTheme": (N_("OK"), N_("Save"), N_("Save All"), N_("Open"), N_("&Yes"), N_("Yes to &All"), N_("&No"),
                       N_("N&o to All"), N_("Abort"), N_("Retry"), N_("Ignore"), N_("Close"), N_("Cancel"),
                       N_("Discard"), N_("Help"), N_("Apply"), N_("Reset"), N_("Restore Defaults")),
    "QLineEdit": (N_("&Undo"), N_("&Redo"), N_("Cu&t"), N_("&Copy"), N_("&Paste"), N_("Delete"), N_("Select All")),
    "QWidgetTextControl": (N_("&Undo"), N_("&Redo"), N_("Cu&t"), N_("&Copy"), N_("&Paste"), N_("Delete"),
                           N_("Select All")),
    "QMessageBox": (N_("Show Details..."), N_("Hide Details...")),
    "CloseButton": (N_("Close Tab"),),   # a tab's close button (QTabBar)
}


MONTHS = (N_("Jan"), N_("Feb"), N_("Mar"), N_("Apr"), N_("May"), N_("Jun"), N_("Jul"), N_("Aug"), N_("Sep"),
          N_("Oct"), N_("Nov"), N_("Dec"))


def when_text(moment: datetime, *, year: bool = False) -> str:
    """'24 Nov 14:05' (with the year: '24 Nov 2026 14:05') in local time, the month in the UI's language. (strftime's
    %b would give the C locale's English month whatever the language.)"""
    local = moment.astimezone()
    day = f"{local.day:02d} {_(MONTHS[local.month - 1])}"
    return f"{day} {local.year} {local:%H:%M}" if year else f"{day} {local:%H:%M}"


set_language(os.environ.get("SPOKE_LANGUAGE"))
