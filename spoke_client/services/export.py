"""FHIR export of cases to files (the interoperability path to ABDM and any hub that speaks FHIR)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from spoke_client.db.models import CaseRow
from spoke_client.domain.errors import NotFound
from spoke_client.i18n import _
from spoke_client.services.files import atomic_write_bytes
from spoke_client.services.fhir import bundle_json, case_bundle

if TYPE_CHECKING:
    from spoke_client.services.runtime import Services


def case_bundle_text(services: "Services", case_id: str) -> str:
    facility = services.auth.facility()
    if facility is None:
        raise NotFound(_("This computer has no facility yet: finish the set-up first."))
    case = services.cases.get(case_id)
    patient = services.cases.patient_of(case)
    return bundle_json(case_bundle(facility, patient, case))


def export_case(services: "Services", case_id: str, out: Path) -> None:
    atomic_write_bytes(out, case_bundle_text(services, case_id).encode("utf-8"))
    with services.store.write(None) as w:
        w.audit("export_fhir", "case", case_id, str(out))


def export_all(services: "Services", out_dir: Path) -> int:
    with services.store.read() as s:
        ids = list(s.scalars(select(CaseRow.id).order_by(CaseRow.created_at)))
    for case_id in ids:
        atomic_write_bytes(out_dir / f"case-{case_id}.json", case_bundle_text(services, case_id).encode("utf-8"))
    with services.store.write(None) as w:
        w.audit("export_fhir", "case", "", f"{len(ids)} cases to {out_dir}")
    return len(ids)
