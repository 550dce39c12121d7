"""The app's print queue through a real CUPS server with the cups-pdf virtual printer (tests/printing/cups.py): a
prescription pulled from a real hub is printed and its PDF comes out of cups-pdf; with the printer stopped the job
waits and the queue says so; started again, it prints; a job that failed prints on "Try again"."""

from __future__ import annotations

import re
import subprocess
import time

import pytest
from sqlalchemy import select

from spoke_client.db.models import AuditRow, PrintJobRow
from spoke_client.domain.errors import SpokeError
from spoke_client.services.printers import JobState
from spoke_client.services.printing import PrintJob
from tests.printing.conftest import need, wait_until

@pytest.fixture
def printing(printing):
    services, admin, case_id = printing
    return services, admin, services.printing.prescription_of_case(case_id)


def paper_of(services, cups_server, job: PrintJob):
    """cups-pdf's output of this job (by the print system's job number), not of another test's job that came out
    late on the same server."""
    with services.store.read() as s:
        system_job = s.get(PrintJobRow, job.id).system_job
    return cups_server.wait_for_pdf(job_id=system_job)


def printed(services, job: PrintJob) -> PrintJob:
    return wait_until(lambda: services.printing.refresh_job(job.id), lambda j: j.state != JobState.PRINTING
                      and j.state != JobState.WAITING)


def one_page_pdf(path, paper: str = "A5") -> None:
    """cups-pdf's output: a PDF of one page on the paper asked for (its text is re-rendered as Type 3 glyphs, so
    it is checked by its pages, not by its text)."""
    assert path.read_bytes()[:5] == b"%PDF-"
    info = subprocess.run([need("pdfinfo"), str(path)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^Pages:\s+1$", info, re.M), info
    assert re.search(rf"^Page size:.*\({paper}\)", info, re.M), info


def test_a_prescription_prints_through_cups_and_a_second_paper_is_a_duplicate(printing, cups_server):
    services, admin, rx = printing
    job = services.printing.print(admin, rx)
    assert job.copy == 1 and job.printer == cups_server.printer and job.language == "hi"
    done = printed(services, job)
    assert done.state == JobState.PRINTED, done
    one_page_pdf(paper_of(services, cups_server, job))
    with services.store.read() as s:
        assert s.get(PrintJobRow, job.id).document is None   # the paper is out: its PDF is not kept
    second = printed(services, services.printing.print(admin, rx))
    assert second.state == JobState.PRINTED and second.copy == 2 and second.duplicate
    one_page_pdf(paper_of(services, cups_server, second))
    [latest, first] = services.printing.jobs()[:2]
    assert (latest.id, first.id) == (second.id, job.id) and latest.patient_name == "Sunita Devi"
    with services.store.read() as s:
        actions = list(s.scalars(select(AuditRow.action).where(AuditRow.entity_id == rx).order_by(AuditRow.seq)))
    assert actions[-2:] == ["print", "reprint"]


def test_a_stopped_printer_keeps_the_job_waiting_and_it_prints_when_started(printing, cups_server):
    services, admin, rx = printing
    before = set(cups_server.pdfs())
    cups_server.disable("out of paper")
    try:
        job = services.printing.print(admin, rx)
        waiting = wait_until(lambda: services.printing.refresh_job(job.id), lambda j: j.state == JobState.WAITING)
        assert "stopped" in waiting.detail, waiting
        time.sleep(1.0)   # a stopped printer holds the job: it stays waiting, and nothing comes out
        assert services.printing.refresh_job(job.id).state == JobState.WAITING
        assert [j.state for j in services.printing.refresh() if j.id == job.id] == [JobState.WAITING]
        assert set(cups_server.pdfs()) == before
    finally:
        cups_server.enable()
    done = printed(services, job)
    assert done.state == JobState.PRINTED, done
    one_page_pdf(paper_of(services, cups_server, job))


def test_a_failed_job_prints_on_try_again_with_the_same_copy_number(printing, cups_server):
    services, admin, rx = printing
    failed = services.printing.print(admin, rx, printer="No-Such-Printer")
    assert failed.state == JobState.FAILED and "No printer called No-Such-Printer" in failed.detail
    with pytest.raises(SpokeError):
        services.printing.retry(admin, services.printing.print(admin, rx).id)   # only a failed job is retried
    again = printed(services, services.printing.retry(admin, failed.id))
    assert again.state == JobState.PRINTED and again.id == failed.id and again.copy == 1
    assert again.printer == cups_server.printer


def test_no_printer_chosen_and_none_by_default_says_so(prescribed, cups_server, monkeypatch):
    for key, value in cups_server.env.items():
        monkeypatch.setenv(key, value)
    services, admin, _paths, case_id, _issued, _me = prescribed
    with pytest.raises(SpokeError, match="No printer is chosen"):
        services.printing.print(admin, services.printing.prescription_of_case(case_id))
    assert services.printing.jobs() == []
