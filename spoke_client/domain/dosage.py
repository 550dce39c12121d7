"""How to take a medicine, written out in words in the patient's language: "1 tablet twice a day after food, for
5 days" and "1 गोली दिन में दो बार खाने के बाद, 5 दिन तक".

The doctor writes the dose as "1 tablet" or "5 mL", the frequency as a code (OD, BD, TDS, QID, HS, SOS) or as
morning-noon-night counts (1-0-1), and the instructions from a short list ("after food"). Each piece goes
through the catalog of the language asked for; what is not in these forms (a dose the doctor typed freely)
is printed as written. `tr` is a gettext translation (gettext and ngettext), so one print can be in Hindi while
the screen is in English.
"""

from __future__ import annotations

import gettext
import re
from typing import Protocol

_DOSE = re.compile(r"^\s*(\d+(?:\.\d+)?|\d+/\d+|½)\s*([A-Za-z]+)\.?\s*$")


class Translation(Protocol):
    def gettext(self, message: str, /) -> str: ...
    def ngettext(self, singular: str, plural: str, n: int, /) -> str: ...


ENGLISH: Translation = gettext.NullTranslations()


def _amount(text: str) -> tuple[str, float]:
    if text == "½":
        return "½", 0.5
    if "/" in text:
        a, b = text.split("/")
        return text, int(a) / max(int(b), 1)
    value = float(text)
    return (str(int(value)) if value.is_integer() else text), value


def dose_words(dose: str, tr: Translation = ENGLISH) -> str:
    """'1 tablet' -> '1 गोली'; a dose in another form stays as the doctor wrote it."""
    _, ngettext = tr.gettext, tr.ngettext
    m = _DOSE.match(dose)
    if not m:
        return dose.strip()
    shown, value = _amount(m.group(1))
    n = 1 if value <= 1 else 2
    unit = m.group(2).lower().rstrip("s") if m.group(2).lower() not in ("ml",) else "ml"
    units = {
        "tablet": ngettext("{n} tablet", "{n} tablets", n), "tab": ngettext("{n} tablet", "{n} tablets", n),
        "capsule": ngettext("{n} capsule", "{n} capsules", n), "cap": ngettext("{n} capsule", "{n} capsules", n),
        "ml": ngettext("{n} mL", "{n} mL", n), "drop": ngettext("{n} drop", "{n} drops", n),
        "puff": ngettext("{n} puff", "{n} puffs", n), "sachet": ngettext("{n} sachet", "{n} sachets", n),
        "teaspoon": ngettext("{n} teaspoon", "{n} teaspoons", n), "unit": ngettext("{n} unit", "{n} units", n),
        "application": ngettext("{n} application", "{n} applications", n),
    }
    if unit not in units:
        return dose.strip()
    return units[unit].format(n=shown)


def frequency_words(frequency: str, tr: Translation = ENGLISH) -> str:
    """'BD' -> 'twice a day'; '1-0-1' -> 'in the morning and at night'; an unknown code stays as written."""
    _ = tr.gettext
    code = frequency.strip().upper()
    named = {"OD": _("once a day"), "BD": _("twice a day"), "TDS": _("three times a day"),
             "QID": _("four times a day"), "HS": _("at bedtime"), "SOS": _("only when needed"),
             "STAT": _("at once, one time")}
    if code in named:
        return named[code]
    if re.fullmatch(r"[0-9](-[0-9]){2}", code):
        counts = [int(x) for x in code.split("-")]
        times = [t for t, c in zip((_("in the morning"), _("in the afternoon"), _("at night")), counts) if c]
        if not times:
            return frequency.strip()
        if len(set(c for c in counts if c)) > 1:   # different amounts at different times: keep the numbers
            return _("{pattern} (morning-afternoon-night)").format(pattern=code)
        if len(times) == 1:
            return times[0]
        return _("{first} and {last}").format(first=", ".join(times[:-1]), last=times[-1])
    return frequency.strip()


def instructions_words(instructions: str, tr: Translation = ENGLISH) -> str:
    _ = tr.gettext
    known = {"before food": _("before food"), "after food": _("after food"), "with food": _("with food"),
             "empty stomach": _("on an empty stomach"), "at bedtime": _("at bedtime")}
    return known.get(instructions.strip().lower(), instructions.strip())


def duration_words(days: int, tr: Translation = ENGLISH) -> str:
    if days <= 0:
        return ""
    return tr.ngettext("for {n} day", "for {n} days", days).format(n=days)


def sentence(dose: str, frequency: str, days: int, instructions: str = "", tr: Translation = ENGLISH) -> str:
    """The whole line: '1 tablet twice a day after food, for 5 days'."""
    _ = tr.gettext
    how = _("{dose} {frequency}").format(dose=dose_words(dose, tr), frequency=frequency_words(frequency, tr))
    if instructions.strip():
        how = _("{dose_and_frequency} {instructions}").format(dose_and_frequency=how,
                                                             instructions=instructions_words(instructions, tr))
    duration = duration_words(days, tr)
    return _("{how}, {duration}").format(how=how, duration=duration) if duration else how
