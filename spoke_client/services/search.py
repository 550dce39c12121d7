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

CANDIDATES = 200          # rows fetched from the index before re-ranking
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
        by_number = digits.isdigit() and len(digits) >= MIN_TRIGRAM
        with self.store.read() as s:
            if by_number:
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
            # Rank on the light, already-normalised index columns; load whole records for the winners only.
            light = s.execute(select(literal_column("patient.rowid"), PatientRow.search_names, PatientRow.search_village,
                                     PatientRow.phone, PatientRow.abha_number)
                              .where(literal_column("patient.rowid").in_(ids))).all()
            scorer = _Ranker(query, digits if by_number else None)
            ranked = sorted((scorer.score(*r[1:]) + (r[0],) for r in light), key=lambda x: (-x[0], -x[2]))[:limit]
            rows = {r[0]: r[1] for r in s.execute(select(literal_column("patient.rowid"), PatientRow)
                                                  .where(literal_column("patient.rowid").in_([x[2] for x in ranked])))}
            return [PatientHit(to_patient(rows[rowid]), score, matched) for score, matched, rowid in ranked]


class _Ranker:
    """Scores a candidate 0..100 against the query, from the index columns (no per-row key computation)."""

    WEIGHTS = (("name", 1.0), ("relative", 0.8), ("village", 0.9))

    def __init__(self, query: str, digits: str | None) -> None:
        self.digits = digits
        self.tokens = [(t, phonetic_key(t)) for t in normalize_name(query).split()]

    def score(self, names: str, village: str, phone: str, abha: str) -> tuple[float, str]:
        if self.digits:
            d = self.digits
            if abha and d in abha:
                return (100.0 if d == abha else 90.0), "abha"
            return (100.0 if d == phone else 90.0 if phone.endswith(d) else 80.0), "phone"
        own, _sep, relative = names.partition(" / ")
        fields = (own.split(), relative.split(), village.split())
        total, best_where, best_any = 0.0, "name", -1.0
        for token, key in self.tokens:
            if token.isdigit():
                best, where = (95.0, "phone") if token in phone else (0.0, "phone")
            else:
                best, where = 0.0, "name"
                for (fname, weight), words in zip(self.WEIGHTS, fields):
                    if not words:
                        continue
                    if any(w.startswith(token) or w.startswith(key) for w in words):
                        s = 100.0
                    else:
                        s = max(process.extractOne(token, words, scorer=fuzz.ratio)[1],
                                process.extractOne(key, words, scorer=fuzz.ratio)[1] * 0.95)
                    s *= weight
                    if s > best:
                        best, where = s, fname
            total += best
            if best > best_any:
                best_any, best_where = best, where
        return round(total / max(len(self.tokens), 1), 2), best_where


def count_indexed(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(text("patient_fts"))) or 0
