"""Searches log files for patient data: the names, villages and identifiers that tests and the demo seed use."""

from __future__ import annotations

import re
from pathlib import Path

from spoke_client.services.seed import REGIONS

# Names the tests type in (patients, relatives), beyond the demo seed's.
TEST_NAMES = ["Kamla Devi", "Ravi Kumar", "Sunita Yadav", "Mohammed Rafiq", "Lakshmi Bai", "Ganesan", "Phoolmati",
              "Ramvati", "Meena Kumari", "Mohd. Irfan", "Pooja", "Bablu Mondal", "Someone Else", "Malar Perumal"]
# Seed words that are also ordinary words of a technical log.
COMMON = {"More", "Pal", "Das", "Roy", "Rai", "Sah", "Ram", "Balu", "Kale", "Rina", "Kiran", "Khan", "Gopal", "Prakash",
          "Kanti", "Paroo", "Canning", "Vijay", "Raju", "Usha", "Selvam", "Velu"}
MASKED = ("<phone>", "<abha-number>", "<abha-address>")   # the mask caught something that code logged


def _words() -> re.Pattern:
    words = set()
    for region in REGIONS.values():
        for key in ("female", "male", "surnames", "villages"):
            words.update(w for w in region[key] if len(w) >= 4 and w not in COMMON)
    words.update(TEST_NAMES)
    return re.compile(r"\b(" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + r")\b")


def find_patient_data(roots: list[Path]) -> list[tuple[str, str]]:
    pattern = _words()
    found: list[tuple[str, str]] = []
    for root in roots:
        if not root.exists():
            continue
        files = [root] if root.is_file() else sorted(
            p for p in root.rglob("*.log*") if p.is_file() and re.match(r"(spoke|hub)\.log", p.name))
        for path in files:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if pattern.search(line) or any(m in line for m in MASKED):
                        found.append((str(path.name), line.rstrip()))
    return found
