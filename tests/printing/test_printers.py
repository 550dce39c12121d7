"""CupsPrintSystem against a real, private CUPS server with a cups-pdf queue (tests/printing/cups.py): no mocks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from reportlab.pdfgen import canvas

from tests.printing.conftest import wait_until
from spoke_client.services.printers import (
    NOT_INSTALLED,
    NOT_RUNNING,
    CupsPrintSystem,
    JobState,
    JobStatus,
    PrintError,
    system_print_system,
)

@pytest.fixture(scope="session")
def prescription_pdf(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("print") / "RX-ab12.pdf"
    c = canvas.Canvas(str(path))
    c.setTitle("Prescription RX-ab12")
    c.drawString(72, 760, "e-Prescription RX-ab12")
    c.drawString(72, 740, "Tab. Paracetamol 500 mg, 1-0-1 after food, 3 days")
    c.showPage()
    c.save()
    return path


@pytest.fixture
def cups(cups_server, monkeypatch):
    """The private server, its queue enabled and empty, and CupsPrintSystem pointed at it."""
    monkeypatch.setenv("CUPS_SERVER", cups_server.env["CUPS_SERVER"])
    cups_server.enable()
    yield cups_server
    cups_server.run("cancel", "-a", cups_server.printer, check=False)
    cups_server.enable()


@pytest.fixture
def system() -> CupsPrintSystem:
    return CupsPrintSystem()


def states_until_final(system: CupsPrintSystem, printer: str, job: str) -> tuple[JobStatus, list[JobState]]:
    seen: list[JobState] = []

    def probe() -> JobStatus:
        status = system.status(printer, job)
        seen.append(status.state)
        return status

    final = wait_until(probe, lambda s: s.state in (JobState.PRINTED, JobState.FAILED))
    return final, seen


def test_a_prescription_prints_and_lands_as_a_pdf(cups, system, prescription_pdf):
    job = system.submit(cups.printer, prescription_pdf, "Prescription RX-ab12")
    assert job.startswith(f"{cups.printer}-")

    final, seen = states_until_final(system, cups.printer, job)

    assert final == JobStatus(JobState.PRINTED, "printed")
    assert set(seen) <= {JobState.WAITING, JobState.PRINTING, JobState.PRINTED}
    out = cups.wait_for_pdf(timeout=10, job_id=job)
    assert out.read_bytes().startswith(b"%PDF")
    assert system.status(cups.printer, job).state == JobState.PRINTED     # and it stays so


def test_copies_reach_the_print_system(cups, system, prescription_pdf):
    job = system.submit(cups.printer, prescription_pdf, "Prescription RX-ab12", copies=2)
    final, _ = states_until_final(system, cups.printer, job)
    assert final.state == JobState.PRINTED
    cups.wait_for_pdf(timeout=10, job_id=job)
    # cups-pdf makes one PDF whatever the copies (a real printer makes them); cupsd's page log counts them.
    number = job.rsplit("-", 1)[1]
    page_log = cups.root / "log" / "page_log"

    def logged() -> list[str]:
        lines = page_log.read_text().splitlines() if page_log.exists() else []
        return [line for line in lines if line.split()[2:3] == [number]]

    line = wait_until(logged, bool, 5)[0]
    assert " total 2 " in line


def test_the_queue_is_listed_as_ready(cups, system):
    printers = {p.name: p for p in system.printers()}
    assert cups.printer in printers
    assert printers[cups.printer].ready
    assert printers[cups.printer].detail in ("idle", "printing")


def test_a_stopped_printer_keeps_the_job_waiting_until_it_is_started_again(cups, system, prescription_pdf):
    cups.disable()
    info = next(p for p in system.printers() if p.name == cups.printer)
    assert not info.ready
    assert info.detail.startswith("stopped: the printer is ")

    job = system.submit(cups.printer, prescription_pdf, "Prescription RX-ab12")
    status = system.status(cups.printer, job)
    assert status.state == JobState.WAITING
    assert "the printer is stopped" in status.detail

    cups.enable()
    final, _ = states_until_final(system, cups.printer, job)
    assert final.state == JobState.PRINTED
    assert cups.wait_for_pdf(timeout=10, job_id=job).read_bytes().startswith(b"%PDF")


def test_cancelling_a_waiting_job_fails_it(cups, system, prescription_pdf):
    cups.disable()
    job = system.submit(cups.printer, prescription_pdf, "Prescription RX-ab12")
    assert system.status(cups.printer, job).state == JobState.WAITING

    system.cancel(job)

    status = wait_until(lambda: system.status(cups.printer, job), lambda s: s.state != JobState.WAITING, 5)
    assert status.state == JobState.FAILED
    assert "cancelled" in status.detail
    cups.enable()
    assert system.status(cups.printer, job).state == JobState.FAILED
    system.cancel(job)                                  # cancelling twice is no error


def test_a_printed_job_can_no_longer_be_cancelled(cups, system, prescription_pdf):
    job = system.submit(cups.printer, prescription_pdf, "Prescription RX-ab12")
    final, _ = states_until_final(system, cups.printer, job)
    assert final.state == JobState.PRINTED
    cups.wait_for_pdf(timeout=10, job_id=job)
    with pytest.raises(PrintError, match="already been printed"):
        system.cancel(job)
    assert system.status(cups.printer, job).state == JobState.PRINTED


def test_a_file_the_filters_cannot_read_fails_the_job(cups, system, tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 8)   # a PDF header, then nothing a PDF reader can use
    job = system.submit(cups.printer, broken, "Prescription RX-broken")
    final, _ = states_until_final(system, cups.printer, job)
    assert final.state == JobState.FAILED
    assert final.detail.startswith("failed: ")


def test_an_unknown_printer_is_named_in_the_error(cups, system, prescription_pdf):
    with pytest.raises(PrintError, match=r"^No printer called NoSuchPrinter on this computer$"):
        system.submit("NoSuchPrinter", prescription_pdf, "Prescription RX-ab12")
    with pytest.raises(PrintError, match=r"^No printer called NoSuchPrinter on this computer$"):
        system.status("NoSuchPrinter", "NoSuchPrinter-1")
    with pytest.raises(PrintError, match="No printer called -d on this computer"):
        system.submit("-d", prescription_pdf, "Prescription RX-ab12")


def test_a_job_the_server_does_not_know_is_lost(cups, system):
    status = system.status(cups.printer, f"{cups.printer}-999999")
    assert status == JobStatus(JobState.FAILED, "failed: the print system lost the job")


def test_the_default_printer_is_the_servers(cups, system, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))          # no lpoptions of the user's
    monkeypatch.delenv("LPDEST", raising=False)
    monkeypatch.delenv("PRINTER", raising=False)
    # A queue of this test's own as the default, removed at the end: deleting the default queue leaves the server
    # with none again, as the other tests on this session's server expect ("no printer chosen and none by default").
    cups.run("lpadmin", "-p", "Default-Test", "-v", "file:/dev/null", "-E")
    try:
        cups.run("lpadmin", "-d", "Default-Test")
        assert system.default_printer() == "Default-Test"
    finally:
        cups.run("lpadmin", "-x", "Default-Test")
    assert system.default_printer() is None


def test_a_print_system_that_is_not_running_says_so(monkeypatch, tmp_path, system, prescription_pdf):
    monkeypatch.setenv("CUPS_SERVER", str(tmp_path / "no-cupsd.sock"))
    with pytest.raises(PrintError, match=f"^{re.escape(NOT_RUNNING)}$"):
        system.printers()
    with pytest.raises(PrintError, match=f"^{re.escape(NOT_RUNNING)}$"):
        system.submit("PDF", prescription_pdf, "Prescription RX-ab12")
    with pytest.raises(PrintError, match=f"^{re.escape(NOT_RUNNING)}$"):
        system.status("PDF", "PDF-1")


def test_without_cups_printing_is_not_set_up(monkeypatch, tmp_path, system, prescription_pdf):
    monkeypatch.setenv("PATH", str(tmp_path))           # no lp, lpstat or cancel to be found
    with pytest.raises(PrintError, match=r"^Printing is not set up on this computer \(CUPS is not installed\)$"):
        system.submit("PDF", prescription_pdf, "Prescription RX-ab12")
    with pytest.raises(PrintError, match=f"^{re.escape(NOT_INSTALLED)}$"):
        system.printers()


def test_the_system_print_system_is_cups_here():
    assert isinstance(system_print_system(), CupsPrintSystem)
