"""Search keys for Indian names written in Latin letters: one key for the usual spelling variants."""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher
from functools import lru_cache

# Greedy, longest first: aspirates lose their h, the common vowel spellings fold, 'ksh'/'ks' become x.
_SEQUENCES = [
    ("ksh", "x"), ("chh", "c"), ("ks", "x"), ("ch", "c"), ("sh", "s"), ("kh", "k"), ("gh", "g"), ("bh", "b"),
    ("dh", "d"), ("th", "t"), ("ph", "f"), ("jh", "j"), ("ck", "k"), ("aa", "a"), ("ee", "i"), ("ii", "i"),
    ("oo", "u"), ("ou", "o"), ("au", "o"), ("w", "v"), ("z", "j"), ("q", "k"),
]
_SEQ = re.compile("|".join(re.escape(a) for a, _b in _SEQUENCES))
_MAP = dict(_SEQUENCES)
VOWELS = set("aeiou")


@lru_cache(maxsize=200_000)
def normalize_name(text: str) -> str:
    """Lower case, diacritics stripped, letters and digits only, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    cleaned = re.sub(r"[^\w]+", " ", stripped.lower().replace("_", " "))
    return " ".join(cleaned.split())


def _once(word: str) -> str:
    w = _SEQ.sub(lambda m: _MAP[m.group(0)], word)
    w = re.sub(r"(.)\1+", r"\1", w)                              # doubled letters: Mohammad/Mohamad
    w = re.sub(r"e([b-df-hj-np-tv-z])$", r"a\1", w)                # final -ed/-esh: Mohammed/Mohammad
    w = w.replace("o", "u")                                        # Mohan/Muhan, Pooja/Puja (after oo -> u)
    w = re.sub(r"(?<=[b-df-hj-np-tv-z])y", "i", w)                # Shyam/Shiam, Pinky/Pinki
    # Hindi schwa deletion: the a of V C a C V is not spoken (Kamala/Kamla, Kamalesh/Kamlesh).
    w = re.sub(r"(?<=[aeiu][b-df-hj-np-tv-z])a(?=[b-df-hj-np-tv-z][aeiu])", "", w)
    return re.sub(r"(.)\1+", r"\1", w)


@lru_cache(maxsize=200_000)
def phonetic_key(word: str) -> str:
    """Deterministic and idempotent: phonetic_key(phonetic_key(w)) == phonetic_key(w). Names repeat (a
    district has a few thousand distinct name words), so each is worked out once: a replacement PC rebuilding
    100,000 patients would otherwise spend most of its time here."""
    w = normalize_name(word).replace(" ", "")
    if not w.isalpha():
        return w
    for _ in range(6):
        nxt = _once(w)
        if nxt == w:
            break
        w = nxt
    return w


@lru_cache(maxsize=200_000)
def name_key(text: str) -> str:
    return " ".join(phonetic_key(w) for w in normalize_name(text).split())


def name_similarity(a: str, b: str) -> float:
    ka, kb = name_key(a), name_key(b)
    if not ka or not kb:
        return 0.0
    return SequenceMatcher(None, ka, kb).ratio()
