"""The one string catalog (gettext) for the UI, the CLI and printed documents."""

from __future__ import annotations

import gettext
import os
from pathlib import Path

DOMAIN = "spoke"
RESOURCES = Path(os.environ.get("SPOKE_RESOURCES") or Path(__file__).resolve().parent.parent / "resources")
LOCALE_DIR = RESOURCES / "locale"

SOURCE_LANGUAGE = "en"   # the language the strings are written in

_translation: gettext.NullTranslations = gettext.NullTranslations()
_language = SOURCE_LANGUAGE


def set_language(language: str | None) -> None:
    """Switch the catalog; None or an unknown language falls back to English (the source strings)."""
    global _translation, _language
    languages = [language] if language else None
    _translation = gettext.translation(DOMAIN, LOCALE_DIR, languages=languages, fallback=True)
    if type(_translation) is gettext.NullTranslations:
        _language = SOURCE_LANGUAGE
    else:   # the catalog found (from the environment's languages when none was given) says which it is
        _language = _translation.info().get("language") or language or SOURCE_LANGUAGE


def current_language() -> str:
    """The language the UI's text (and the red flags' messages) is in now: "hi", or "en" for the source strings."""
    return _language


def _(message: str) -> str:
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translation.ngettext(singular, plural, n)


set_language(os.environ.get("SPOKE_LANGUAGE"))
