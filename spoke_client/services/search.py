"""Patient search: FTS5 trigram over names as typed and their phonetic keys, then typo-tolerant fallback."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from rapidfuzz import fuzz, process
from sqlalchemy import func, literal_column, select, text
from sqlalchemy.orm import Session

from spoke_client.db.models import PatientRow, SearchVocabRow
from spoke_client.domain.model import Patient
from spoke_client.domain.names import normalize_name, phonetic_key
from spoke_client.services.store import Store

CANDIDATES = 300          # rows fetched from the index before re-ranking
VOCAB_REFRESH_S = 30.0    # how stale the in-memory vocabulary may get from other processes' writes
MIN_TRIGRAM = 3


@dataclass(frozen=True)
class PatientHit:
    patient: Patient
    score: float          # 0..100, higher is better
    matched: str          # "name", "phone", "abha", "village", "relative"


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


class PatientIndex:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._vocab: list[str] = []
        self._vocab_set: set[str] = set()
        self._vocab_loaded_at = 0.0
        self._lock = threading.Lock()

    # --- vocabulary for typo tolerance ----------------------------------------------------------
    def add_vocabulary(self, session: Session, row: PatientRow) -> None:
        keys = {phonetic_key(w) for w in normalize_name(f"{row.name} {row.relative_name} {row.village}").split()}
        keys = {k for k in keys if len(k) >= MIN_TRIGRAM}
        new = keys - self._vocab_set
        if new:
            session.execute(
                text("INSERT OR IGNORE INTO search_vocab(key) VALUES (:k)"), [{"k": k} for k in sorted(new)]
            )
            with self._lock:
                for k in new:
                    if k not in self._vocab_set:
                        self._vocab_set.add(k)
                        self._vocab.append(k)

    def _vocabulary(self) -> list[str]:
        with self._lock:
            if time.monotonic() - self._vocab_loaded_at > VOCAB_REFRESH_S:
                with self.store.read() as s:
                    keys = list(s.scalars(select(SearchVocabRow.key)))
                self._vocab, self._vocab_set = keys, set(keys)
                self._vocab_loaded_at = time.monotonic()
            return self._vocab

    def _similar_keys(self, key: str) -> list[str]:
        if len(key) < 4:
            return []
        cutoff = 80 if len(key) >= 6 else 75
        matches = process.extract(key, self._vocabulary(), scorer=fuzz.ratio, score_cutoff=cutoff, limit=12)
        return [m[0] for m in matches if m[0] != key]

    # --- queries --------------------------------------------------------------------------------
    def _match_expression(self, query: str, fuzzy: bool) -> str | None:
        terms = []
        for token in normalize_name(query).split():
            if token.isdigit():
                if len(token) >= MIN_TRIGRAM:
                    terms.append("{phone abha_number} : " + _quote(token))
                continue
            alternatives = {token, phonetic_key(token)}
            if fuzzy:
                alternatives.update(self._similar_keys(phonetic_key(token)))
            alternatives = {a for a in alternatives if len(a) >= MIN_TRIGRAM}
            if alternatives:
                terms.append("{search_names search_village} : (" + " OR ".join(_quote(a) for a in sorted(alternatives)) + ")")
        return " AND ".join(terms) if terms else None

    def _rowids(self, session: Session, expression: str, limit: int) -> list[int]:
        # Newest first when a fragment is common: the patient at the desk was most likely seen recently.
        return list(session.scalars(
            text("SELECT rowid FROM patient_fts WHERE patient_fts MATCH :q ORDER BY rowid DESC LIMIT :n"),
            {"q": expression, "n": limit},
        ))

    def candidate_rows(self, session: Session, query: str, limit: int = CANDIDATES) -> list[PatientRow]:
        expression = self._match_expression(query, fuzzy=True)
        if expression is None:
            return []
        ids = self._rowids(session, expression, limit)
        if not ids:
            return []
        return list(session.scalars(select(PatientRow).where(literal_column("patient.rowid").in_(ids))))

    def search(self, query: str, limit: int = 30) -> list[PatientHit]:
        from spoke_client.services.patients import to_patient  # one mapping, owned by the patient service

        digits = re.sub(r"[\s-]", "", query)
        with self.store.read() as s:
            if digits.isdigit() and len(digits) >= MIN_TRIGRAM:
                ids = self._rowids(s, "{phone abha_number} : " + _quote(digits), CANDIDATES)
            else:
                expression = self._match_expression(query, fuzzy=False)
                if expression is None:
                    return []
                ids = self._rowids(s, expression, CANDIDATES)
                if len(ids) < limit:
                    fuzzy = self._match_expression(query, fuzzy=True)
                    if fuzzy and fuzzy != expression:
                        ids = list(dict.fromkeys(ids + self._rowids(s, fuzzy, CANDIDATES)))
            if not ids:
                return []
            rows = list(s.scalars(select(PatientRow).where(literal_column("patient.rowid").in_(ids))))
        hits = [self._score(query, digits, row) for row in rows]
        hits.sort(key=lambda h: (-h.score, h.row.name))
        return [PatientHit(to_patient(h.row), h.score, h.matched) for h in hits[:limit]]

    @staticmethod
    def _score(query: str, digits: str, row: PatientRow) -> "_Scored":
        if digits.isdigit() and len(digits) >= MIN_TRIGRAM:
            if row.abha_number and digits in row.abha_number:
                return _Scored(100.0 if digits == row.abha_number else 90.0, "abha", row)
            return _Scored(100.0 if digits == row.phone else 80.0 + 10 * row.phone.endswith(digits), "phone", row)
        tokens = normalize_name(query).split()
        fields = {
            "name": normalize_name(row.name).split(),
            "relative": normalize_name(row.relative_name).split(),
            "village": normalize_name(row.village).split(),
        }
        weights = {"name": 1.0, "relative": 0.8, "village": 0.9}
        total, best_field = 0.0, "name"
        best_field_score = -1.0
        for token in tokens:
            tkey = phonetic_key(token)
            best, where = 0.0, "name"
            for fname, words in fields.items():
                for word in words:
                    if token.isdigit():
                        continue
                    if word.startswith(token):
                        s = 100.0
                    else:
                        s = max(fuzz.ratio(token, word), fuzz.ratio(tkey, phonetic_key(word)) * 0.95,
                                fuzz.partial_ratio(token, word) * 0.9 if len(token) >= 3 else 0.0)
                    s *= weights[fname]
                    if s > best:
                        best, where = s, fname
            if token.isdigit() and token in row.phone:
                best, where = 95.0, "phone"
            total += best
            if best > best_field_score:
                best_field_score, best_field = best, where
        return _Scored(round(total / max(len(tokens), 1), 2), best_field, row)


@dataclass(frozen=True)
class _Scored:
    score: float
    matched: str
    row: PatientRow


def rebuild(session: Session) -> None:
    """Rebuild the FTS index from the patient table (used by selfcheck --repair)."""
    session.execute(text("INSERT INTO patient_fts(patient_fts) VALUES ('rebuild')"))


def count_indexed(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(text("patient_fts"))) or 0
