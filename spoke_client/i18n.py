"""The one string catalog (gettext) for the UI, the CLI and printed documents."""

from __future__ import annotations

import gettext
import os
from pathlib import Path

DOMAIN = "spoke"
RESOURCES = Path(os.environ.get("SPOKE_RESOURCES") or Path(__file__).resolve().parent.parent / "resources")
LOCALE_DIR = RESOURCES / "locale"

_translation: gettext.NullTranslations = gettext.NullTranslations()


def set_language(language: str | None) -> None:
    """Switch the catalog; None or an unknown language falls back to English (the source strings)."""
    global _translation
    languages = [language] if language else None
    _translation = gettext.translation(DOMAIN, LOCALE_DIR, languages=languages, fallback=True)


def _(message: str) -> str:
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translation.ngettext(singular, plural, n)


set_language(os.environ.get("SPOKE_LANGUAGE"))
