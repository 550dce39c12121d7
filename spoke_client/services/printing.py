"""Printing a received prescription: the paper (spoke_client.services.rx_pdf), the app's print queue, duplicates.

Every paper is a job in the local database (print_job) before it reaches the operating system's print system,
so the queue survives a restart and shows what happened: waiting (the printer is off, paused or out of paper:
the print system keeps the job and prints it when the printer comes back), printing, printed, failed (with
"Try again", which sends the same paper again). The first paper of a prescription is copy 1; every later one is
stamped DUPLICATE with its copy number, and each is written in the audit trail. The job's PDF is kept in the
database (not in a loose file) until it is printed.

A prescription whose signature did not check against the hub's key is not printed: a pharmacist must be able to
trust the paper.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from spoke_client.db.models import (
    CaseRow,
    FacilityRow,
    PatientRow,
    PrescriptionRow,
    PrintJobRow,
    SettingRow,
    VitalsRow,
)
from spoke_client.domain.consultation import Prescription, PrescriptionStatus
from spoke_client.domain.errors import NotFound, SpokeError
from spoke_client.domain.model import User, VitalsStatus
from spoke_client.i18n import _
from spoke_client.services.cases import _vitals_record
from spoke_client.services.consultation import to_prescription
from spoke_client.services.hub_link import HUB_FACILITY_NAME
from spoke_client.services.patients import to_patient
from spoke_client.services.printers import (
    JobState,
    JobStatus,
    PrintError,
    PrinterInfo,
    PrintSystem,
    system_print_system,
)
from spoke_client.services.store import Store, new_id

if TYPE_CHECKING:   # reportlab, numpy and the QR code's libraries load with the first paper, not with the store
    from spoke_client.services import rx_pdf

log = logging.getLogger(__name__)

PRINTER, PRINT_LANGUAGE, PRINT_PAPER = "printer_name", "print_language", "print_paper"
DEFAULT_LANGUAGE, DEFAULT_PAPER = "hi", "A5"
OPEN_STATES = (JobState.WAITING.value, JobState.PRINTING.value)
QUEUE_SHOWN = 50


class NotPrintable(SpokeError):
    """This prescription cannot be printed (its signature failed, or it is not on this computer)."""


@dataclass(frozen=True)
class PrintJob:
    id: str
    prescription_id: str
    case_id: str
    copy: int
    language: str
    paper: str
    printer: str
    state: JobState
    detail: str
    created_at: datetime
    updated_at: datetime
    patient_name: str = ""      # for the queue on screen only; never logged

    @property
    def duplicate(self) -> bool:
        return self.copy > 1


def _job(row: PrintJobRow, patient_name: str = "") -> PrintJob:
    return PrintJob(id=row.id, prescription_id=row.prescription_id, case_id=row.case_id, copy=row.copy,
                    language=row.language, paper=row.paper, printer=row.printer, state=JobState(row.state),
                    detail=row.detail, created_at=row.created_at, updated_at=row.updated_at, patient_name=patient_name)


class PrintService:
    def __init__(self, store: Store, print_system: Callable[[], PrintSystem] = system_print_system) -> None:
        self.store = store
        self._print_system = print_system

    # --- settings ---------------------------------------------------------------------------------
    def printers(self) -> list[PrinterInfo]:
        return self._print_system().printers()

    def printer(self) -> str | None:
        """The printer chosen in the settings, else the operating system's default printer."""
        chosen = self.store.get_setting(PRINTER)
        if chosen:
            return chosen
        try:
            return self._print_system().default_printer()
        except PrintError:
            return None

    def choose(self, actor: User, printer: str | None = None, language: str | None = None,
               paper: str | None = None) -> None:
        from spoke_client.services import rx_pdf

        if language is not None and language not in rx_pdf.languages():
            raise SpokeError(_("Prescriptions cannot be printed in {language}.").format(language=language))
        if paper is not None and paper not in rx_pdf.SIZES:
            raise SpokeError(_("The paper size is A5 or A4."))
        for key, value in ((PRINTER, printer), (PRINT_LANGUAGE, language), (PRINT_PAPER, paper)):
            if value is not None:
                self.store.set_setting(key, value, actor.id)

    def language(self) -> str:
        return self.store.get_setting(PRINT_LANGUAGE) or DEFAULT_LANGUAGE

    def paper(self) -> str:
        return self.store.get_setting(PRINT_PAPER) or DEFAULT_PAPER

    # --- the paper ----------------------------------------------------------------------------------
    def prescription_of_case(self, case_id: str) -> str:
        """The prescription a case's paper shows: its newest issued one, else its newest (cancelled) one."""
        with self.store.read() as s:
            rows = list(s.execute(select(PrescriptionRow.id, PrescriptionRow.status)
                                  .where(PrescriptionRow.case_id == case_id)
                                  .order_by(PrescriptionRow.issued_at.desc(), PrescriptionRow.id)))
        if not rows:
            raise NotFound(_("This case has no prescription from the hub yet."))
        issued = [r.id for r in rows if r.status == PrescriptionStatus.ISSUED.value]
        return issued[0] if issued else rows[0].id

    def document(self, prescription_id: str, copy: int = 1, today: date | None = None) -> "rx_pdf.RxDocument":
        from spoke_client.services import rx_pdf

        with self.store.read() as s:
            row = s.get(PrescriptionRow, prescription_id)
            if row is None:
                raise NotFound(_("This prescription is not on this computer."))
            if not row.signature_ok:
                raise NotPrintable(_("This prescription's signature does not match the hub's key, so it is not "
                                     "printed: ask the hub to check it."))
            prescription: Prescription = to_prescription(row)
            patient = s.get(PatientRow, row.patient_id)
            case = s.get(CaseRow, row.case_id)
            if patient is None or case is None:
                raise NotFound(_("The patient or the case of this prescription is not on this computer."))
            vitals_row = s.scalars(select(VitalsRow).where(VitalsRow.case_id == case.id,
                                                           VitalsRow.status == VitalsStatus.FINAL.value)
                                   .order_by(VitalsRow.recorded_at.desc(), VitalsRow.id.desc()).limit(1)).first()
            named = s.get(SettingRow, HUB_FACILITY_NAME)
            facility = (named.value if named else "") or s.scalars(select(FacilityRow.name).limit(1)).first() or ""
            return rx_pdf.RxDocument(
                prescription=prescription, patient=to_patient(patient), facility_name=facility,
                vitals=_vitals_record(vitals_row) if vitals_row is not None else None,
                complaints=tuple(case.complaints or ()), complaint_text=case.complaint_text or "",
                duration=case.duration or "", findings=case.examination or "",
                qr_text=prescription.qr, copy=copy, printed_on=today or date.today())

    def pdf(self, prescription_id: str, language: str | None = None, paper: str | None = None,
            copy: int = 1) -> bytes:
        from spoke_client.services import rx_pdf

        return rx_pdf.render(self.document(prescription_id, copy), language or self.language(), paper or self.paper())

    def save_pdf(self, actor: User, prescription_id: str, out: Path, language: str | None = None,
                 paper: str | None = None) -> Path:
        """The paper as a PDF file (to print elsewhere): counted as a paper like a print, and audited."""
        copy = self._next_copy(prescription_id)
        data = self.pdf(prescription_id, language, paper, copy)
        tmp = out.with_name(out.name + ".part")
        try:
            tmp.write_bytes(data)
            tmp.replace(out)
        except OSError as exc:   # a full or read-only drive, a folder that is not there: nothing half-written stays
            tmp.unlink(missing_ok=True)
            raise SpokeError(_("Could not write {file}: {reason}").format(
                file=out.name, reason=exc.strerror or exc)) from None
        with self.store.write(actor.id) as w:
            now = w.now
            w.session.add(PrintJobRow(
                id=new_id(), prescription_id=prescription_id, case_id=self._case_of(prescription_id), copy=copy,
                language=language or self.language(), paper=paper or self.paper(), printer="", state=JobState.PRINTED.value,
                detail=_("saved as a PDF file"), system_job="", document=None, created_at=now, created_by=actor.id,
                updated_at=now))
            w.audit("print_pdf" if copy == 1 else "reprint_pdf", "prescription", prescription_id, f"copy {copy}")
        return out

    # --- the queue ----------------------------------------------------------------------------------
    def _case_of(self, prescription_id: str) -> str:
        with self.store.read() as s:
            row = s.get(PrescriptionRow, prescription_id)
            if row is None:
                raise NotFound(_("This prescription is not on this computer."))
            return row.case_id

    def _next_copy(self, prescription_id: str) -> int:
        """1 for the first paper; a job that failed gave no paper and does not count."""
        with self.store.read() as s:
            made = s.scalar(select(func.max(PrintJobRow.copy)).where(
                PrintJobRow.prescription_id == prescription_id, PrintJobRow.state != JobState.FAILED.value))
        return (made or 0) + 1

    def print(self, actor: User, prescription_id: str, language: str | None = None, paper: str | None = None,
              printer: str | None = None) -> PrintJob:
        """Makes the paper and sends it to the printer; the job is in the queue whatever happens next."""
        printer = printer or self.printer()
        if not printer:
            raise SpokeError(_("No printer is chosen: choose one in Settings > Printer."))
        language, paper = language or self.language(), paper or self.paper()
        copy = self._next_copy(prescription_id)
        data = self.pdf(prescription_id, language, paper, copy)
        case_id = self._case_of(prescription_id)
        with self.store.write(actor.id) as w:
            now = w.now
            row = PrintJobRow(id=new_id(), prescription_id=prescription_id, case_id=case_id, copy=copy,
                              language=language, paper=paper, printer=printer, state=JobState.WAITING.value,
                              detail=_("waiting to be sent to the printer"), system_job="", document=data,
                              created_at=now, created_by=actor.id, updated_at=now)
            w.session.add(row)
            w.audit("print" if copy == 1 else "reprint", "prescription", prescription_id,
                    f"copy {copy}, {paper}, {language}")
        log.info("print job %s: copy %d of prescription %s queued", row.id, copy, prescription_id)
        return self._submit(row.id)

    def retry(self, actor: User, job_id: str) -> PrintJob:
        """'Try again' on a failed job: the same paper (same copy number) sent again."""
        with self.store.write(actor.id) as w:
            row = w.session.get(PrintJobRow, job_id)
            if row is None:
                raise NotFound(_("This print job is no longer in the queue."))
            if row.state != JobState.FAILED.value:
                raise SpokeError(_("Only a failed print can be tried again."))
            if row.document is None:
                row.document = self.pdf(row.prescription_id, row.language, row.paper, row.copy)
            row.printer = self.printer() or row.printer
            row.state, row.detail, row.system_job, row.updated_at = (
                JobState.WAITING.value, _("waiting to be sent to the printer"), "", w.now)
            w.audit("print_retry", "prescription", row.prescription_id, f"copy {row.copy}")
        return self._submit(job_id)

    def _submit(self, job_id: str) -> PrintJob:
        with self.store.read() as s:
            row = s.get(PrintJobRow, job_id)
            document, printer, prescription_id, copy, paper = (row.document, row.printer, row.prescription_id, row.copy,
                                                               row.paper)
        title = f"Prescription {prescription_id[:8]}" + (f" (copy {copy})" if copy > 1 else "")
        tmp = None
        try:
            with tempfile.NamedTemporaryFile(prefix="spoke-rx-", suffix=".pdf", delete=False) as f:
                f.write(document or b"")
                tmp = Path(f.name)
            system_job = self._print_system().submit(printer, tmp, title, paper=paper)
        except PrintError as exc:
            log.warning("print job %s could not be sent to the printer", job_id)
            return self._update(job_id, JobState.FAILED, str(exc))
        finally:
            if tmp is not None:
                _remove_later(tmp)
        self._update(job_id, JobState.PRINTING, _("sent to the printer"), system_job)
        return self.refresh_job(job_id)

    def _update(self, job_id: str, state: JobState, detail: str, system_job: str | None = None) -> PrintJob:
        with self.store.write(None, background=True) as w:
            row = w.session.get(PrintJobRow, job_id)
            row.state, row.detail, row.updated_at = state.value, detail, w.now
            if system_job is not None:
                row.system_job = system_job
            if state == JobState.PRINTED:
                row.document = None     # the paper is out: the PDF (patient data) is not kept
            return _job(row)

    def refresh_job(self, job_id: str) -> PrintJob:
        with self.store.read() as s:
            row = s.get(PrintJobRow, job_id)
            if row is None:
                raise NotFound(_("This print job is no longer in the queue."))
            state, detail, printer, system_job = row.state, row.detail, row.printer, row.system_job
        if state not in OPEN_STATES or not system_job:
            return self.job(job_id)
        try:
            status = self._print_system().status(printer, system_job)
        except PrintError as exc:   # the print system is not answering: the job is still in its hands
            status = JobStatus(JobState.WAITING, str(exc))
        if (status.state.value, status.detail) != (state, detail):   # a write only when something changed
            self._update(job_id, status.state, status.detail)
        return self.job(job_id)

    def refresh(self) -> list[PrintJob]:
        """Asks the print system about every open job (the queue on screen calls it every few seconds)."""
        with self.store.read() as s:
            open_ids = list(s.scalars(select(PrintJobRow.id).where(PrintJobRow.state.in_(OPEN_STATES))))
        for job_id in open_ids:
            self.refresh_job(job_id)
        return self.jobs()

    def job(self, job_id: str) -> PrintJob:
        with self.store.read() as s:
            row = s.get(PrintJobRow, job_id)
            if row is None:
                raise NotFound(_("This print job is no longer in the queue."))
            patient = s.scalar(select(PatientRow.name).join(CaseRow, CaseRow.patient_id == PatientRow.id)
                               .where(CaseRow.id == row.case_id))
            return _job(row, patient or "")

    def jobs(self, limit: int = QUEUE_SHOWN) -> list[PrintJob]:
        """The queue, newest first: the open jobs and the latest finished ones."""
        with self.store.read() as s:
            rows = s.execute(select(PrintJobRow, PatientRow.name).join(CaseRow, CaseRow.id == PrintJobRow.case_id)
                             .join(PatientRow, PatientRow.id == CaseRow.patient_id)
                             .order_by(PrintJobRow.created_at.desc(), PrintJobRow.id).limit(limit))
            return [_job(r, name) for r, name in rows]

    def open_jobs(self) -> list[PrintJob]:
        """The jobs not finished yet (for the status bar): each asked about once."""
        return [j for j in self.refresh() if j.state in (JobState.WAITING, JobState.PRINTING)]

    def jobs_of(self, prescription_id: str) -> list[PrintJob]:
        with self.store.read() as s:
            rows = s.scalars(select(PrintJobRow).where(PrintJobRow.prescription_id == prescription_id)
                             .order_by(PrintJobRow.created_at, PrintJobRow.id))
            return [_job(r) for r in rows]


def _remove_later(path: Path) -> None:
    """The print system has its own copy once `lp` returned; the temporary file goes."""
    try:
        path.unlink()
    except OSError:
        pass
