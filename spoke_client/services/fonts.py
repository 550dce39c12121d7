"""Fonts for printed documents, chosen by script: text is cut into runs of one script at spaces, and each run is
set in the Noto font of its script, found in resources/fonts by name (NotoSans-*.ttf for Latin,
NotoSans<Script>-*.ttf for the others: NotoSansDevanagari, NotoSansTamil, NotoSansBengali...).

So another of India's languages prints once its catalog and its Noto font are added, nothing else. reportlab
has no font fallback and Noto's Indic fonts hold no Latin letters; a font switch inside a word breaks shaping
(../shared/PLATFORM.md), so runs change only at spaces, and a word of digits or punctuation stays with the run
before it.
"""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from spoke_client.i18n import RESOURCES

FONTS_DIR = RESOURCES / "fonts"
LATIN = "Latin"


class _LatinTTFont(TTFont):
    """Latin needs no shaping, but reportlab shapes every word of a paragraph that holds an Indic script, Latin
    words included (a third of a bilingual page's time). Its shaper passes over a font that has no HarfBuzz font
    (reportlab.pdfbase.ttfonts.shapeFragWord): the Latin font says it has none, so its words are set as they are,
    as in any paragraph without Indic text."""

    def hbFont(self, fontSize=10):  # noqa: N802 - reportlab's name
        raise AttributeError("Latin text is not shaped")


class FontMissing(RuntimeError):
    """No font in resources/fonts for a script the document needs."""


def script_of(ch: str) -> str | None:
    """'Devanagari' for 'क' or 'ि', 'Latin' for 'a', None for digits, punctuation and spaces (any font has them)."""
    if ch.isascii():
        return LATIN if ch.isalpha() else None
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return None
    if unicodedata.category(ch)[0] not in "LM":   # a danda or a rupee sign: take the run's font
        word = name.split()[0]
        return word.title() if word in ("DEVANAGARI", "TAMIL", "BENGALI") else None
    return name.split()[0].title()


def word_script(word: str) -> str | None:
    for ch in word:
        s = script_of(ch)
        if s is not None:
            return s
    return None


def font_file(script: str, bold: bool = False) -> Path:
    stem = "NotoSans" if script == LATIN else f"NotoSans{script}"
    return FONTS_DIR / f"{stem}-{'Bold' if bold else 'Regular'}.ttf"


@functools.cache
def font_name(script: str) -> str:
    """Registers the script's regular and bold fonts with reportlab (once) and names the family for <font>."""
    family = "NotoSans" if script == LATIN else f"NotoSans{script}"
    regular, bold = font_file(script), font_file(script, True)
    if not regular.exists():
        raise FontMissing(f"No font for {script} text: add {regular.name} to {FONTS_DIR}")
    kind = _LatinTTFont if script == LATIN else TTFont
    pdfmetrics.registerFont(kind(family, str(regular)))
    pdfmetrics.registerFont(kind(f"{family}-Bold", str(bold if bold.exists() else regular)))
    addMapping(family, 0, 0, family)
    addMapping(family, 1, 0, f"{family}-Bold")
    addMapping(family, 0, 1, family)
    addMapping(family, 1, 1, f"{family}-Bold")
    return family


def base_font() -> str:
    return font_name(LATIN)


def markup(text: str) -> str:
    """`text` as reportlab paragraph markup: escaped, with each run of another script than Latin in its font."""
    runs: list[tuple[str | None, list[str]]] = []
    for word in text.split(" "):
        script = word_script(word)
        if runs and (script is None or script == runs[-1][0] or runs[-1][0] is None):
            if runs[-1][0] is None:
                runs[-1] = (script, runs[-1][1])
            runs[-1][1].append(word)
        else:
            runs.append((script, [word]))
    out = []
    for script, words in runs:
        chunk = escape(" ".join(words))
        if script in (None, LATIN):
            out.append(chunk)
        else:
            out.append(f'<font name="{font_name(script)}">{chunk}</font>')
    return " ".join(out)


def needs_shaping(text: str) -> bool:
    """Whether `text` holds a script that must be shaped (any but Latin: conjuncts, vowel signs)."""
    return not text.isascii() and any(s not in (None, LATIN) for s in map(script_of, text))


def scripts_in(text: str) -> set[str]:
    return {s for s in (script_of(ch) for ch in text) if s}
