#!/usr/bin/env python3
"""Build resources/formulary/nlem2022.csv: India's National List of Essential Medicines 2022 with TPG lists.

Inputs (all under resources/formulary/):
  sources/nlem2022_text.txt         text extraction of the NLEM 2022 PDF (see sources/README.md)
  sources/sih2026_nlem2022_names.txt a second, independent transcription of the 384 names (cross-check)
  corrections.csv                   every fix applied to the extraction, with its reason
  tpg_rules.csv                     Telemedicine Practice Guidelines list for each medicine, with its source

Output: nlem2022.csv, one row per medicine x dosage form x strength.

  python scripts/build_formulary.py            build and write nlem2022.csv
  python scripts/build_formulary.py --check    rebuild in memory; fail if the committed CSV differs
  python scripts/build_formulary.py --dump     print the parsed section listings (for reviewing corrections)

The build fails (exit 1, a message per problem) when the 384 numbered medicines do not reconcile, when a section
code or level is malformed, when a row has no TPG list, or when a correction no longer matches anything.
Standard library only; no network.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORMULARY = ROOT / "resources" / "formulary"
SOURCE_TEXT = FORMULARY / "sources" / "nlem2022_text.txt"
SOURCE_NAMES = FORMULARY / "sources" / "sih2026_nlem2022_names.txt"
CORRECTIONS = FORMULARY / "corrections.csv"
TPG_RULES = FORMULARY / "tpg_rules.csv"
OUTPUT = FORMULARY / "nlem2022.csv"

EXPECTED_MEDICINES = 384
COLUMNS = [
    "medicine_no", "medicine", "section_code", "section", "dosage_form", "strength", "level",
    "tpg_list", "tpg_source", "entry_code", "listings", "paediatric",
]

# Page ranges of the NLEM 2022 document as the extraction numbers them ("=== PAGE n ===").
MAIN_LIST_PAGES = range(4, 85)          # Sections 1-27, the medicines themselves
NUMBERED_LIST_PAGES = range(86, 102)    # "Alphabetical List of Medicines in NLEM 2022", numbered 1..384
TOC_PAGES = range(2, 4)

SECTION_CODE_RE = re.compile(r"^\d+(\.\d+)*$")
LEVEL_VALUE_RE = re.compile(r"^P?(,?S)?(,?T)?$")
LEVEL_TOKEN = r"(?:P\s*,\s*S\s*,\s*T|S\s*,\s*T|P\s*,\s*T|P\s*,\s*S|P|S|T)"
LEVEL_RE = re.compile(rf"(?<![\w(]){LEVEL_TOKEN}(?![\w)])")
NUMBERED_RE = re.compile(r"^([1-9]\d?(?:\.\d+)+)(?![\d.])\s*(?!mg\b|mcg\b|g\b|%)(.*)$")
SECTION_RE = re.compile(r"^Section\s+(\d+(?:\.\d+)*)\s*-?\s*(.*)$")
FOOTNOTE_RE = re.compile(r"^\*+\s*[A-Z][a-z]")
HEADER_LINES = {
    "medicine level of", "healthcare dosage form(s) and strength(s)", "medicine", "level of",
    "healthcare", "dosage form(s) and", "strength(s)", "level of dosage form(s) and strength(s)",
    "mdi- metered dose inhaler", "dpi- dry powder inhaler",
}

# Dosage forms as the NLEM writes them (lower case) -> the form written to the CSV. Longest match wins, so a
# line's form is read without guessing; a line whose form is not here fails the build.
FORMS = {
    "tablet": "Tablet", "tablets": "Tablet", "chewable tablet": "Chewable tablet",
    "dispersible tablet": "Dispersible tablet", "modified release tablet": "Modified release tablet",
    "sublingual tablet": "Sublingual tablet", "tablet (sub-lingual)": "Sublingual tablet",
    "enteric coated tablet": "Enteric coated tablet",
    "effervescent/ dispersible/ enteric coated tablet": "Effervescent/dispersible/enteric coated tablet",
    "conventional/effervescent/ dispersible/ enteric coated tablets":
        "Conventional/effervescent/dispersible/enteric coated tablet",
    "tablet/capsule": "Tablet/capsule", "capsule/tablet": "Capsule/tablet", "capsule": "Capsule",
    "capsule/ sachet (containing pellets/granules)": "Capsule/sachet (pellets/granules)",
    "oral liquid": "Oral liquid", "oral solution": "Oral liquid", "dry syrup": "Dry syrup",
    "powder for oral liquid": "Powder for oral liquid", "powder for oral solution": "Powder for oral solution",
    "sachet": "Sachet", "granules": "Granules", "granules/ husk/ powder": "Granules/husk/powder",
    "solid oral dosage form": "Solid oral dosage form", "oral dosage forms": "Oral dosage form",
    "injection": "Injection", "injection (long acting)": "Long-acting injection",
    "powder for injection": "Powder for injection", "solution for injection": "Solution for injection",
    "liquid for inhalation": "Liquid for inhalation", "inhalation (mdi/dpi)": "Inhalation (MDI/DPI)",
    "inhalation (mdi/dpi*)": "Inhalation (MDI/DPI)", "inhalation (mdi)": "Inhalation (MDI)",
    "inhalation (dpi)": "Inhalation (DPI)",
    "respirator solution for use in nebulizer": "Respirator solution for nebulizer",
    "respirator solution": "Respirator solution for nebulizer",
    "as licensed for medical purpose": "Medicinal gas (as licensed)", "as licensed": "As licensed",
    "as licensed as per the standards of drugs rules, 1945": "As licensed (Drugs Rules, 1945)",
    "topical forms": "Topical forms", "topical preparation": "Topical preparation", "topical": "Topical",
    "cream": "Cream", "ointment": "Ointment", "lotion": "Lotion", "gel": "Gel", "solution": "Solution",
    "drops": "Drops", "eye drops": "Eye drops", "eye drop": "Eye drops", "nasal spray": "Nasal spray",
    "nasal drops": "Nasal drops", "suppository": "Suppository", "pessary": "Pessary",
    "retention enema": "Retention enema", "combi pack": "Combi pack", "powder": "Powder",
    "crystals for topical solution": "Crystals for topical solution", "ophthalmic strips": "Ophthalmic strips",
    "suspension for intratracheal instillation": "Suspension for intratracheal instillation",
    "contains": "Intrauterine device", "soluble/ liquid polyvalent": "Soluble/liquid polyvalent",
    "lyophilized polyvalent": "Lyophilized polyvalent",
}
FORM_KEYS = sorted(FORMS, key=len, reverse=True)
# Lines that open a form group whose members follow ("Modified Release -" then "Tablet 200 mg" ...).
GROUP_PREFIX = {"modified release -": "Modified release tablet", "combi pack (a+b)": "Combi pack"}


class BuildError(Exception):
    pass


@dataclass
class Form:
    level: str
    text: str                           # the form line(s) as printed, wrapped lines joined


@dataclass
class Entry:
    code: str                           # the NLEM's own code for this listing, e.g. "2.1.5"
    name: str
    section_code: str                   # innermost heading above the entry, e.g. "2.1"
    page: int
    forms: list[Form] = field(default_factory=list)
    level_now: str = ""                 # the level of care of the forms being read


# ----------------------------------------------------------------------------------------------------------------
# reading the extraction

def pages_of(text: str) -> dict[int, list[str]]:
    pages: dict[int, list[str]] = {}
    current = None
    for line in text.split("\n"):
        m = re.match(r"^=== PAGE (\d+) ===$", line)
        if m:
            current = int(m.group(1))
            pages[current] = []
        elif current is not None:
            pages[current].append(line.strip())
    return pages


def _norm_level(token: str) -> str:
    return re.sub(r"\s+", "", token)


def _split_level(line: str) -> tuple[str, str, str]:
    """A line as (text before the level, level, text after). Level '' when the line has none."""
    m = LEVEL_RE.search(line)
    if not m:
        return line, "", ""
    return line[: m.start()].strip(), _norm_level(m.group(0)), line[m.end():].strip()


def toc_titles(pages: dict[int, list[str]]) -> dict[str, str]:
    joined = " ".join(line for p in TOC_PAGES for line in pages.get(p, []))
    titles = {}
    for m in re.finditer(r"Section (\d+) (.+?)\s*\.{2,}\s*\d+", joined):
        titles[m.group(1)] = re.sub(r"\s+", " ", m.group(2)).strip()
    return titles


CONNECTORS = ("of", "to", "with", "and", "in", "for", "the", "as", "per")


def _is_form_start(line: str) -> bool:
    low = line.lower()
    if re.match(r"^[abc]\)\s*(amphotericin|lipid|liposomal|soluble|lyophilized)", low):
        return True
    if low in GROUP_PREFIX or re.match(r"^[12] tablet\b", low):
        return True
    for k in FORM_KEYS:
        if low == k or low.startswith((k + " ", k + "(", k + "/")):
            return True
        if len(low) >= 12 and k.startswith(low):       # a long form name cut at the line's end
            return True
    return False


def _incomplete(text: str) -> bool:
    """True when a form line was cut: the next line carries on from it, even if it starts with a form word."""
    t = text.rstrip()
    low = t.lower()
    if low.endswith("release -"):
        return False
    if t.endswith(("+", "/", "-")) or low.rsplit(" ", 1)[-1] in CONNECTORS:
        return True
    if low.endswith(("licensed", "(as per ip)")):
        return False
    return not re.search(r"\d", t) and low not in FORMS and not t.endswith(")")


def _continuation(line: str) -> bool:
    """A wrapped piece of the previous form line (lower case, a digit, a bracket, a plus...)."""
    return bool(re.match(r"^[a-z0-9(+\[]", line))


unread: list[tuple[int, str]] = []                     # lines of the list that no rule read (reported)


def parse_main_list(pages: dict[int, list[str]]) -> tuple[list[Entry], dict[str, str]]:
    """Section listings of pages 4..84 as read, before any correction; and the heading titles by code.

    Reading rules (the extraction keeps the PDF's reading order but not its table cells):
      * footnotes ("*X formulations are also listed in ...") run to the end of their page and are skipped, as are
        repeated column headers and the notes that start with "#" or "(*";
      * a numbered line is an entry when a level of care follows before the next header or numbered line, and a
        heading otherwise;
      * a form line cut by the page width is joined to the line before it;
      * a level printed on a line of its own opens a level cell: its forms belong to the next entry of the same
        table when one follows (the PDF centres the name in its row), otherwise to the entry before;
      * everything else belongs to the entry before it in reading order. Where that is wrong (a row bleeding
        into the next) corrections.csv moves the lines, with the reason.
    """
    headings: dict[str, str] = dict(toc_titles(pages))
    entries: list[Entry] = []
    unread.clear()
    section = ""                                        # innermost heading code

    for page in MAIN_LIST_PAGES:
        lines = [ln for ln in pages.get(page, []) if ln]
        current: Entry | None = None                    # the entry forms go to
        naming: Entry | None = None                     # an entry (or heading) whose name is still being read
        naming_level = ""
        name_parts: list[str] = []
        pending_level = ""
        pending: list[Form] = []                        # forms waiting for the name of their entry
        group = ""
        last_form: Form | None = None
        in_note = False
        in_heading_text = False                         # title or notes under a heading, before its table

        def promote_heading():
            nonlocal naming, name_parts, section, naming_level, in_heading_text
            title = naming.name
            for part in name_parts:
                title = _join(title, part)
            title = title.strip(" -")
            headings.setdefault(naming.code, re.sub(r"\s+", " ", title))
            section = naming.code
            in_heading_text = True
            naming, name_parts, naming_level = None, [], ""

        def open_entry(entry: Entry, level: str):
            nonlocal current, naming, name_parts, pending, pending_level, naming_level, in_heading_text
            in_heading_text = False
            entry.name = " ".join([entry.name] + name_parts).strip()
            entry.section_code = section
            entry.forms[0:0] = pending
            entries.append(entry)
            pending, pending_level, name_parts, naming_level = [], "", [], ""
            current, naming = entry, None
            entry.level_now = level

        def add_form(text: str, level: str):
            nonlocal last_form, group
            low = text.lower()
            if low in GROUP_PREFIX:
                group, last_form = GROUP_PREFIX[low], None
                return
            if group and (low.startswith("tablet") or re.match(r"^[12] tablet\b", low)):
                text = f"{group}: {text}"
            else:
                group = ""
            form = Form(level, text)
            (pending if current is None else current.forms).append(form)
            last_form = form

        for line in lines:
            low = line.lower()
            if FOOTNOTE_RE.match(line) or line.startswith("All modified release formulations"):
                break
            if in_note:
                if line.startswith("(*") or (line.endswith(")") and not _is_form_start(line)):
                    in_note = line.startswith("(*") and not line.endswith(")")
                    continue
                if not (_is_form_start(line) or NUMBERED_RE.match(line) or SECTION_RE.match(line)):
                    continue
                in_note = False
            if line.startswith("#") or line.startswith("(*"):
                in_note = not (line.startswith("(*") and line.endswith(")"))
                last_form = None
                continue
            if low in HEADER_LINES or low.startswith("medicine level of"):
                if naming is not None and not naming_level:
                    promote_heading()
                last_form, in_heading_text = None, False
                continue
            sec = SECTION_RE.match(line)
            num = NUMBERED_RE.match(line)
            if (sec or num) and naming is not None and not naming_level:
                promote_heading()
            if sec:
                if sec.group(2).strip(" -"):
                    headings.setdefault(sec.group(1), sec.group(2).strip(" -"))
                section = sec.group(1)
                in_heading_text = True
                if pending and current is not None:
                    current.forms.extend(pending)
                pending, pending_level, current, naming, group, last_form = [], "", None, None, "", None
                continue
            if num:
                code, rest = num.group(1), num.group(2)
                before, level, after = _split_level(rest)
                entry = Entry(code=code, name=before, section_code=section, page=page)
                group, last_form = "", None
                lvl = level or pending_level or (pending[-1].level if pending else "")
                if lvl and after:
                    naming, name_parts = entry, []
                    open_entry(entry, lvl)
                    add_form(after, lvl)
                else:
                    current = None if (pending or pending_level) else current
                    naming, name_parts, naming_level = entry, [], lvl
                    if level:
                        naming_level = level
                continue
            before, level, after = _split_level(re.sub(r"^\*+\s*(?=[PST]\b)", "", line))
            if naming is not None:
                if level:
                    if before:
                        name_parts.append(before)
                    open_entry(naming, level)
                    if after:
                        add_form(after, level)
                    continue
                if naming_level and _is_form_start(line):
                    lvl = naming_level
                    open_entry(naming, lvl)
                    add_form(line, lvl)
                    continue
                if len(line) > 60 and not naming_level:  # a paragraph under a heading
                    promote_heading()
                    continue
                name_parts.append(line)
                continue
            if level and not before:
                if after:                                   # a level cell that starts with its first form
                    if current is not None:
                        current.level_now = level
                    add_form(after, level)
                else:                                       # a level cell on its own line
                    pending_level = level
                    current = None
                    last_form = None
                continue
            if last_form is not None and (_incomplete(last_form.text) or
                                          (_continuation(line) and not _is_form_start(line))):
                last_form.text = _join(last_form.text, line)
                continue
            if _is_form_start(line):
                lvl = pending_level or (current.level_now if current is not None else "")
                if not lvl and current is None and entries:
                    lvl = entries[-1].level_now
                add_form(line, lvl)
                continue
            if not in_heading_text:
                unread.append((page, line))                 # a stray fragment no rule reads
            last_form = None
        if naming is not None:
            if naming_level:
                open_entry(naming, naming_level)
            else:
                promote_heading()
        if pending and entries:                             # a level cell that ended its table
            entries[-1].forms.extend(pending)
    for e in entries:
        e.name = re.sub(r"\s+", " ", e.name).strip()
    return entries, headings


def _join(a: str, b: str) -> str:
    if a.endswith("-") and not a.endswith(" -") and b[:1].islower():
        return a + b
    return f"{a} {b}"


def parse_numbered_list(pages: dict[int, list[str]]) -> dict[int, str]:
    numbered: dict[int, str] = {}
    for page in NUMBERED_LIST_PAGES:
        for line in pages.get(page, []):
            m = re.match(r"^(\d+)\.\s+(.+)$", line)
            if m:
                no = int(m.group(1))
                if no in numbered:
                    raise BuildError(f"numbered list: {no} appears twice ({numbered[no]!r}, {m.group(2)!r})")
                numbered[no] = m.group(2).strip()
    return numbered


# ----------------------------------------------------------------------------------------------------------------
# corrections

CORRECTION_KINDS = {"fix_text", "ignore_line", "drop_pages", "move_form", "set_form", "alias"}


@dataclass
class Correction:
    id: str
    kind: str
    page: str
    entry_code: str
    match: str
    value: str
    reason: str
    applied: int = 0


def load_corrections(path: Path | None = None) -> list[Correction]:
    out = []
    with (path or CORRECTIONS).open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            c = Correction(**{k: (row.get(k) or "").strip() for k in
                              ("id", "kind", "page", "entry_code", "match", "value", "reason")})
            if c.kind not in CORRECTION_KINDS:
                raise BuildError(f"corrections.csv {c.id}: unknown kind {c.kind!r}")
            if not c.reason:
                raise BuildError(f"corrections.csv {c.id}: a correction needs its reason")
            out.append(c)
    ids = [c.id for c in out]
    if len(set(ids)) != len(ids):
        raise BuildError("corrections.csv: duplicate ids")
    return out


def apply_text_fixes(pages: dict[int, list[str]], corrections: list[Correction]) -> None:
    for c in corrections:
        if c.kind != "fix_text":
            continue
        lines = pages.get(int(c.page), [])
        hits = [i for i, ln in enumerate(lines) if c.match in ln]
        if len(hits) != 1:
            raise BuildError(f"correction {c.id}: {c.match!r} found {len(hits)} times on page {c.page}, not once")
        lines[hits[0]] = lines[hits[0]].replace(c.match, c.value)
        c.applied += 1


def check_dropped_pages(pages: dict[int, list[str]], corrections: list[Correction]) -> None:
    read = set(MAIN_LIST_PAGES) | set(NUMBERED_LIST_PAGES) | set(TOC_PAGES)
    for c in corrections:
        if c.kind != "drop_pages":
            continue
        first, last = (int(x) for x in c.page.split("-"))
        span = set(range(first, last + 1))
        if span & read:
            raise BuildError(f"correction {c.id}: pages {c.page} overlap pages the build reads")
        opening = " ".join(pages.get(first, [])[:6])
        if c.match.lower() not in opening.lower():
            raise BuildError(f"correction {c.id}: page {first} does not open with {c.match!r}")
        c.applied += 1


def _find_form(entry: Entry, match: str) -> int:
    text, _, nth = match.partition("#")
    hits = [i for i, f in enumerate(entry.forms) if f.text == text]
    k = int(nth) - 1 if nth else 0
    if len(hits) <= k:
        return -1
    return hits[k]


def apply_entry_corrections(entries: list[Entry], unread_lines: list[tuple[int, str]],
                            corrections: list[Correction]) -> None:
    by_code: dict[str, Entry] = {}
    for e in entries:
        if e.code in by_code:
            raise BuildError(f"entry code {e.code} read twice ({by_code[e.code].name!r}, {e.name!r})")
        by_code[e.code] = e
    moved_into: dict[str, int] = {}
    for c in corrections:
        if c.kind == "ignore_line":
            key = (int(c.page), c.match)
            if key not in unread_lines:
                raise BuildError(f"correction {c.id}: no unread line {c.match!r} on page {c.page}")
            unread_lines.remove(key)
            c.applied += 1
        elif c.kind in ("move_form", "set_form"):
            src = by_code.get(c.entry_code)
            if src is None:
                raise BuildError(f"correction {c.id}: no entry {c.entry_code}")
            i = _find_form(src, c.match)
            if i < 0:
                raise BuildError(f"correction {c.id}: entry {c.entry_code} has no form {c.match!r}")
            if c.kind == "set_form":
                src.forms[i].text = c.value
            else:
                dst = by_code.get(c.value)
                if dst is None:
                    raise BuildError(f"correction {c.id}: no target entry {c.value}")
                form = src.forms.pop(i)
                at = moved_into.get(dst.code, 0)
                dst.forms.insert(at, form)           # printed above the name of its own row: it comes first
                moved_into[dst.code] = at + 1
            c.applied += 1


# ----------------------------------------------------------------------------------------------------------------
# names, forms, rows

def clean_name(name: str) -> str:
    """Footnote marks dropped, spacing around '+' made even: 'Budesonide (A) +Formoterol (B)*' -> ... + ..."""
    name = re.sub(r"[*#]+", "", name)
    name = re.sub(r"\s*\+\s*", " + ", name)
    return re.sub(r"\s+", " ", name).strip(" ,")


def name_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", clean_name(name).lower())


def second_source_names(path: Path | None = None) -> tuple[list[str], list[str]]:
    medicines, removed, part = [], [], None
    for line in (path or SOURCE_NAMES).read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.strip() in ("[medicines]", "[removed]"):
            part = line.strip()
            continue
        (medicines if part == "[medicines]" else removed).append(line.strip())
    return medicines, removed


def deleted_2015_names(pages: dict[int, list[str]]) -> list[str]:
    """Names of 'Alphabetical List of Medicines Deleted from NLEM 2015' (pages 129-130), to keep them out."""
    names = []
    for p in (129, 130):
        for line in pages.get(p, []):
            m = re.match(r"^\d+\.\s+(.+)$", line)
            if m:
                names.append(m.group(1))
    return names


def normalise_strength(s: str) -> str:
    s = s.strip().strip("*").strip().lstrip("- ").strip()
    s = re.sub(r"^as licensed", "As licensed", s, flags=re.I)
    if s.startswith("(") and s.endswith(")") and s.count("(") == 1:
        s = s[1:-1].strip()
    s = re.sub(r"\s*/\s*", "/", s)
    s = re.sub(r"(\d)\s*(mg|mcg|g|mL|ml|IU|KU)\b", r"\1 \2", s)
    s = re.sub(r"(\d)\s+%", r"\1%", s)
    s = re.sub(r"\bml\b", "mL", s)
    return re.sub(r"\s+", " ", s).strip()


def split_form(text: str) -> tuple[str, str, str]:
    """(dosage form, strength, paediatric) of one form line: 'Oral liquid 100 mg/5 mL (p)' -> Oral liquid ..."""
    paediatric = "yes" if re.search(r"\(p\)", text) else ""
    t = re.sub(r"\s*\(p\)", "", text).strip()
    variant = ""
    m = re.match(r"^[abc]\)\s*(.+?)\s*-\s*(.*)$", t)
    if m:
        head, t = m.group(1).strip(), m.group(2).strip()
        if head.lower() in FORMS:
            return FORMS[head.lower()], normalise_strength(t), paediatric
        variant = head
    group = ""
    if ": " in t and t.split(": ", 1)[0] in GROUP_PREFIX.values():
        group, t = t.split(": ", 1)
    low = t.lower()
    for key in FORM_KEYS:
        if low == key or low.startswith((key + " ", key + "(")):
            form = FORMS[key]
            strength = normalise_strength(t[len(key):])
            break
    else:
        if group == "Combi pack":
            form, strength = "Combi pack", normalise_strength(t)
        else:
            raise BuildError(f"dosage form not recognised in {text!r}")
    if group == "Modified release tablet":
        form = group
    elif group == "Combi pack":
        form, strength = "Combi pack", normalise_strength(t)
    if variant:
        form = f"{form}, {variant}"
    return form, strength, paediatric


LEVEL_ORDER = "PST"


def merge_levels(*levels: str) -> str:
    got = {ch for lv in levels for ch in lv.split(",") if ch}
    return ",".join(ch for ch in LEVEL_ORDER if ch in got)


# ----------------------------------------------------------------------------------------------------------------
# TPG lists

TPG_LISTS = {"O", "A", "B", "Prohibited"}


@dataclass
class TpgRule:
    rule_id: str
    medicine: str
    form_regex: str
    strength_regex: str
    section_prefix: str
    tpg_list: str
    source: str
    used: int = 0

    def matches(self, row: dict) -> bool:
        if self.medicine and self.medicine != row["medicine"]:
            return False
        if self.form_regex and not re.search(self.form_regex, row["dosage_form"], re.I):
            return False
        if self.strength_regex and not re.search(self.strength_regex, row["strength"], re.I):
            return False
        if self.section_prefix:
            codes = row["listings"].split(";")
            p = self.section_prefix
            if not any(c == p or c.startswith(p + ".") for c in codes):
                return False
        return True


def load_tpg_rules(path: Path | None = None) -> list[TpgRule]:
    rules = []
    with (path or TPG_RULES).open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            r = TpgRule(**{k: (row.get(k) or "").strip() for k in
                           ("rule_id", "medicine", "form_regex", "strength_regex", "section_prefix",
                            "tpg_list", "source")})
            if r.tpg_list not in TPG_LISTS:
                raise BuildError(f"tpg_rules.csv {r.rule_id}: list {r.tpg_list!r} is not O, A, B or Prohibited")
            if not r.source:
                raise BuildError(f"tpg_rules.csv {r.rule_id}: a rule needs its source")
            rules.append(r)
    if not rules or any([rules[-1].medicine, rules[-1].form_regex, rules[-1].strength_regex,
                         rules[-1].section_prefix]):
        raise BuildError("tpg_rules.csv: the last rule must be the default (no conditions)")
    return rules


# ----------------------------------------------------------------------------------------------------------------
# the build

@dataclass
class Result:
    rows: list[dict]
    corrections: list[Correction]
    rules: list[TpgRule]
    numbered: dict[int, str]
    problems: list[str]


def build() -> Result:
    problems: list[str] = []
    pages = pages_of(SOURCE_TEXT.read_text(encoding="utf-8"))
    corrections = load_corrections()
    apply_text_fixes(pages, corrections)
    check_dropped_pages(pages, corrections)
    entries, headings = parse_main_list(pages)
    unread_lines = list(unread)
    apply_entry_corrections(entries, unread_lines, corrections)
    for page, line in unread_lines:
        problems.append(f"page {page}: line not read and not explained in corrections.csv: {line!r}")

    numbered = parse_numbered_list(pages)
    key_to_no: dict[str, int] = {}
    for no, name in numbered.items():
        k = name_key(name)
        if k in key_to_no:
            problems.append(f"numbered list: {no} and {key_to_no[k]} are the same name {name!r}")
        key_to_no[k] = no
    missing_numbers = sorted(set(range(1, EXPECTED_MEDICINES + 1)) - set(numbered))
    extra_numbers = sorted(set(numbered) - set(range(1, EXPECTED_MEDICINES + 1)))
    if missing_numbers or extra_numbers:
        problems.append(f"numbered list: missing {missing_numbers}, outside 1..{EXPECTED_MEDICINES}: {extra_numbers}")

    # second, independent transcription of the 384 names: every name must agree (spacing and case aside)
    second, second_removed = second_source_names()
    second_keys = {name_key(n) for n in second}
    if len(second) != EXPECTED_MEDICINES:
        problems.append(f"second source lists {len(second)} medicines, not {EXPECTED_MEDICINES}")
    for no, name in sorted(numbered.items()):
        if name_key(name) not in second_keys:
            problems.append(f"medicine {no} {name!r} is not in the second source")
    for name in second:
        if name_key(name) not in key_to_no:
            problems.append(f"second source has {name!r}, which the NLEM numbered list does not")

    aliases = {c.match: c for c in corrections if c.kind == "alias"}
    entry_no: dict[str, int] = {}
    for e in entries:
        nm = clean_name(e.name)
        no = key_to_no.get(name_key(nm))
        if nm in aliases:
            c = aliases[nm]
            if no is not None:
                problems.append(f"correction {c.id}: {nm!r} already matches medicine {no}; alias not needed")
            no = int(c.value)
            c.applied += 1
        if no is None:
            problems.append(f"entry {e.code} {nm!r} matches no numbered medicine")
            continue
        entry_no[e.code] = no

    # rows: one per medicine x dosage form x strength, across all the sections that list it
    merged: dict[tuple, dict] = {}
    for e in entries:
        no = entry_no.get(e.code)
        if no is None:
            continue
        if not e.forms:
            problems.append(f"entry {e.code} {e.name!r} has no dosage form")
        for f in e.forms:
            if not f.level:
                problems.append(f"entry {e.code}: form {f.text!r} has no level of care")
            try:
                form, strength, paed = split_form(f.text)
            except BuildError as exc:
                problems.append(f"entry {e.code}: {exc}")
                continue
            key = (no, form.lower(), strength.lower())
            row = merged.get(key)
            if row is None:
                merged[key] = row = {
                    "medicine_no": no, "medicine": clean_name(numbered[no]), "section_code": e.section_code,
                    "section": headings.get(e.section_code, ""), "dosage_form": form, "strength": strength,
                    "level": merge_levels(f.level), "entry_code": e.code, "listings": e.code,
                    "paediatric": paed, "_order": len(merged),
                }
            else:
                row["level"] = merge_levels(row["level"], f.level)
                if e.code not in row["listings"].split(";"):
                    row["listings"] += ";" + e.code
                if paed:
                    row["paediatric"] = paed
    rows = sorted(merged.values(), key=lambda r: (r["medicine_no"], r["_order"]))

    rules = load_tpg_rules()
    for row in rows:
        for r in rules:
            if r.matches(row):
                row["tpg_list"], row["tpg_source"] = r.tpg_list, f"{r.rule_id}: {r.source}"
                r.used += 1
                break
    for r in rules:
        if not r.used:
            problems.append(f"tpg_rules.csv {r.rule_id} matches no row (a misspelt medicine?)")
        if r.medicine and r.medicine not in {clean_name(n) for n in numbered.values()}:
            problems.append(f"tpg_rules.csv {r.rule_id}: {r.medicine!r} is not a medicine of the numbered list")

    # reconciliation and well-formedness
    nos = {r["medicine_no"] for r in rows}
    if len(nos) != EXPECTED_MEDICINES:
        problems.append(f"{len(nos)} distinct medicine numbers have rows, not {EXPECTED_MEDICINES}")
    gaps = sorted(set(range(1, EXPECTED_MEDICINES + 1)) - nos)
    if gaps:
        problems.append("medicines with no row: " + ", ".join(f"{n} {numbered.get(n, '?')}" for n in gaps))
    names_by_no: dict[int, set[str]] = {}
    for r in rows:
        names_by_no.setdefault(r["medicine_no"], set()).add(r["medicine"])
    for no, names in names_by_no.items():
        if len(names) > 1:
            problems.append(f"medicine {no} has several names: {sorted(names)}")
    deleted = {name_key(n) for n in deleted_2015_names(pages)} | {name_key(n) for n in second_removed}
    for r in rows:
        if not SECTION_CODE_RE.match(r["section_code"]):
            problems.append(f"medicine {r['medicine_no']}: section code {r['section_code']!r} is not N(.N)*")
        if not all(SECTION_CODE_RE.match(c) for c in r["listings"].split(";")):
            problems.append(f"medicine {r['medicine_no']}: listing codes {r['listings']!r} malformed")
        if not r["section"]:
            problems.append(f"medicine {r['medicine_no']}: no title for section {r['section_code']}")
        if r["level"] not in {"P", "S", "T", "P,S", "P,T", "S,T", "P,S,T"}:
            problems.append(f"medicine {r['medicine_no']}: level {r['level']!r} is not a P/S/T combination")
        if r.get("tpg_list") not in TPG_LISTS or not r.get("tpg_source"):
            problems.append(f"medicine {r['medicine_no']} {r['dosage_form']}: no TPG list")
        if name_key(r["medicine"]) in deleted:
            problems.append(f"medicine {r['medicine_no']} {r['medicine']!r} is on the deleted-from-2015 list")
    for c in corrections:
        if not c.applied:
            problems.append(f"correction {c.id} ({c.kind}) was not applied: it no longer matches the source")
    for r in rows:
        r.pop("_order", None)
    return Result(rows, corrections, rules, numbered, problems)


def render(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in COLUMNS})
    return buf.getvalue()


def summary(res: Result) -> str:
    kinds: dict[str, int] = {}
    for c in res.corrections:
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    tpg: dict[str, int] = {}
    for r in res.rows:
        tpg[r["tpg_list"]] = tpg.get(r["tpg_list"], 0) + 1
    meds = len({r["medicine_no"] for r in res.rows})
    return (f"{len(res.rows)} rows, {meds} medicines; corrections applied: "
            + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
            + "; TPG rows: " + ", ".join(f"{k} {v}" for k, v in sorted(tpg.items())))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="fail if the committed nlem2022.csv is not what the "
                                                         "sources build")
    ap.add_argument("--dump", action="store_true", help="print the section listings as read, before corrections")
    args = ap.parse_args(argv)
    if args.dump:
        entries, headings = parse_main_list(pages_of(SOURCE_TEXT.read_text(encoding="utf-8")))
        for e in entries:
            print(f"{e.code:10} [{e.section_code:7}] {e.name}")
            for f in e.forms:
                print(f"{'':12}{f.level:6} {f.text}")
        for k, v in headings.items():
            print("H", k, v)
        for pg, ln in unread:
            print("UNREAD", pg, ln)
        return 0
    try:
        res = build()
    except BuildError as exc:
        print(f"build_formulary: FAILED: {exc}", file=sys.stderr)
        return 1
    if res.problems:
        print(f"build_formulary: FAILED, {len(res.problems)} problem(s):", file=sys.stderr)
        for p in res.problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    text = render(res.rows)
    if args.check:
        committed = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if committed != text:
            old, new = committed.splitlines(), text.splitlines()
            where = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
            print(f"build_formulary: FAILED: {OUTPUT.relative_to(ROOT)} is not what the sources build "
                  f"(first difference at line {where + 1}); run scripts/build_formulary.py", file=sys.stderr)
            return 1
        print(f"build_formulary: {OUTPUT.relative_to(ROOT)} is up to date: {summary(res)}")
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"build_formulary: wrote {OUTPUT.relative_to(ROOT)}: {summary(res)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
