"""The operating system's printers: sending a PDF prescription to one and following the job until it is on paper.

`CupsPrintSystem` drives CUPS through its own command-line tools (`lp`, `lpstat`, `cancel`), run with a deadline and
`LC_ALL=C` so that their answers can be read. `CUPS_SERVER` in the environment chooses the server, as for any CUPS
program (the tests point it at a private one). `lpinfo -v` is never run: it starts the network discovery backends.

What lpstat shows of a job, and what it does not: `lpstat -W not-completed` lists the jobs still queued (pending,
held, printing, or stopped by a filter error), `lpstat -W completed` the finished ones, each with its
job-state-reasons as "Alerts". CUPS gives every finished job, printed, cancelled or aborted alike, the one reason
"processing-to-stop-point", and lpstat never prints the job-state itself. The one command-line answer that tells them
apart is the scheduler's refusal to cancel a finished job, which names its state ("Job #3 is already completed -
can't cancel."): that is how a finished job is read here. Refused, it changes nothing.

Nothing here logs more than job ids and states: a job's title is the caller's ("Prescription RX-ab12"), never a
patient's name, and even that is not logged.
"""

from __future__ import annotations

import enum
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

COMMAND_DEADLINE_S = 10.0


class JobState(enum.StrEnum):
    WAITING = "waiting"
    PRINTING = "printing"
    PRINTED = "printed"
    FAILED = "failed"


@dataclass(frozen=True)
class PrinterInfo:
    name: str
    ready: bool
    detail: str          # plain words: "idle", "printing", "stopped: the printer is off or paused"


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    detail: str          # plain words for the paramedic: "waiting: the printer is stopped (off or out of paper)"


class PrintError(Exception):
    """Printing is not possible; the message is in the user's terms ("No printer called X on this computer")."""


class PrintSystem(Protocol):
    def printers(self) -> list[PrinterInfo]: ...

    def default_printer(self) -> str | None: ...

    def submit(self, printer: str, pdf: Path, title: str, copies: int = 1, paper: str | None = None) -> str: ...

    def status(self, printer: str, job_id: str) -> JobStatus: ...

    def cancel(self, job_id: str) -> None: ...


NOT_INSTALLED = "Printing is not set up on this computer (CUPS is not installed)"
NOT_RUNNING = "The print system is not running"
NO_ANSWER = "The print system did not answer in time"

# A printer's state reasons ("Alerts"), without their -error/-warning/-report suffix, that keep it from printing.
PRINTER_PROBLEMS = {
    "media-empty": "out of paper",
    "media-needed": "out of paper",
    "media-jam": "paper jam",
    "offline": "not answering: switched off or unplugged",
    "door-open": "a door is open",
    "cover-open": "a cover is open",
    "toner-empty": "out of toner",
    "marker-supply-empty": "out of ink or toner",
    "shutdown": "switched off",
    "cups-missing-filter": "its driver is missing a part",
    "cups-insecure-filter": "its driver is not installed safely",
}
# A queued job's reasons that say it waits on purpose, and why.
JOB_HELD = {
    "job-hold-until-specified": "held in the print queue",
    "resources-are-not-ready": "the printer did not answer; the print system will try again",
    "cups-held-for-authentication": "the printer asks for a password",
}
# A queued job's reasons that say a filter failed and CUPS stopped the job (job-state "stopped").
JOB_STOPPED = {"job-completed-with-errors", "cups-filter-crashed", "job-stopped", "document-format-error",
               "document-unprintable-error", "unsupported-document-format"}
JOB_PROCESSING = {"job-printing", "job-transforming", "job-interpreting", "job-outgoing", "job-queued-for-marker"}

_NAME = re.compile(r"[^\s/#\\'\"-][^\s/#\\'\"]*")   # a CUPS queue name (never an option: no leading "-")
_JOB_ID = re.compile(r"(?P<printer>[^\s/#\\'\"-][^\s/#\\'\"]*)-(?P<number>\d+)")


@dataclass(frozen=True)
class _Printer:
    name: str
    state: str               # "idle", "processing", "stopped", "holding"
    current_job: str | None  # the job it prints now, as "PDF-3"
    message: str             # printer-state-message: "Paused", "Rejecting Jobs", ...
    alerts: tuple[str, ...]  # printer-state-reasons
    accepting: bool


@dataclass(frozen=True)
class _Job:
    job_id: str
    message: str
    alerts: tuple[str, ...]


class CupsPrintSystem:
    """CUPS through lp, lpstat and cancel."""

    def __init__(self, deadline_s: float = COMMAND_DEADLINE_S) -> None:
        self.deadline_s = deadline_s
        # Finished jobs' states, read once: each read asks the scheduler to cancel the job, which it refuses and
        # notes in its error log. Keyed by server too, as job numbers repeat across servers.
        self._finished: dict[tuple[str, str, str], JobStatus] = {}

    # --- the protocol --------------------------------------------------------------------------------------------

    def printers(self) -> list[PrinterInfo]:
        return [self._info(p) for p in self._printers()]

    def default_printer(self) -> str | None:
        out = self._run("lpstat", "-d")
        for line in out.stdout.splitlines():
            m = re.match(r"system default destination: (\S+)", line)
            if m:
                return m.group(1)
        return None

    def submit(self, printer: str, pdf: Path, title: str, copies: int = 1, paper: str | None = None) -> str:
        """`paper`: the sheet to print on (A5, A4); None leaves the printer's own. A5 on a printer that has only A4
        loaded is the printer's call (CUPS scales or waits, as the driver says)."""
        self._check_name(printer)
        if copies < 1:
            raise ValueError("copies must be 1 or more")
        if paper is not None and paper not in ("A5", "A4"):
            raise ValueError("paper is A5 or A4")
        path = Path(pdf).resolve()          # absolute: lp never takes it for an option
        if not path.is_file():
            raise PrintError("The prescription's file to print is missing")
        media = ("-o", f"media={paper}") if paper else ()
        out = self._run("lp", "-d", printer, "-t", title, "-n", str(copies), *media, str(path), check=False)
        if out.returncode != 0:
            raise self._refusal(out.stderr, printer, path)
        m = re.search(r"request id is (\S+)", out.stdout)
        if not m:
            raise PrintError("The print system took the prescription but gave no job number")
        job_id = m.group(1)
        log.info("print job %s submitted", job_id)
        return job_id

    def status(self, printer: str, job_id: str) -> JobStatus:
        self._check_name(printer)
        self._check_job_id(job_id)
        # Not-completed first: a job only ever moves from that list to the completed one, so read in this order a job
        # that finishes between the two reads is found in the second.
        queued = self._jobs(printer, "not-completed")
        for position, job in enumerate(queued):
            if job.job_id == job_id:
                status = self._queued_status(printer, job, position, queued)
                break
        else:
            key = (os.environ.get("CUPS_SERVER", ""), printer, job_id)
            if key in self._finished:
                return self._finished[key]
            finished = next((j for j in self._jobs(printer, "completed") if j.job_id == job_id), None)
            if finished is None:
                status = JobStatus(JobState.FAILED, "failed: the print system lost the job")
            else:
                status = self._finished[key] = self._finished_status(finished)
        log.debug("print job %s %s", job_id, status.state)
        return status

    def cancel(self, job_id: str) -> None:
        self._check_job_id(job_id)
        out = self._run("cancel", job_id, check=False)
        if out.returncode == 0:
            log.info("print job %s cancelled", job_id)
            return
        state = self._already(out.stderr)
        if state in ("canceled", "aborted"):
            return
        if state == "completed":
            raise PrintError("The prescription has already been printed; it can no longer be cancelled")
        if "does not exist" in out.stderr:
            raise PrintError("The print system no longer knows this print job")
        raise self._failure(out.stderr)

    # --- printers ------------------------------------------------------------------------------------------------

    def _printers(self) -> list[_Printer]:
        out = self._run("lpstat", "-l", "-p", check=False)
        if out.returncode != 0:
            if "No destinations added" in out.stderr:
                return []
            raise self._failure(out.stderr)
        accepting = self._accepting()
        printers: list[_Printer] = []
        block: list[str] = []
        for line in [*out.stdout.splitlines(), "printer -end-"]:
            if line.startswith("printer ") and block:
                p = self._parse_printer(block, accepting)
                if p is not None:
                    printers.append(p)
                block = []
            block.append(line)
        return printers

    @staticmethod
    def _parse_printer(block: list[str], accepting: dict[str, bool]) -> _Printer | None:
        head = block[0]
        current = None
        if m := re.match(r"printer (\S+) is idle\.", head):
            state = "idle"
        elif m := re.match(r"printer (\S+) is holding new jobs\.", head):
            state = "holding"
        elif m := re.match(r"printer (\S+) now printing (\S+)\.", head):
            state, current = "processing", m.group(2)
        elif m := re.match(r"printer (\S+) disabled since", head):
            state = "stopped"
        else:
            return None
        name = m.group(1)
        message, alerts = "", ()
        in_message = True
        for line in block[1:]:
            text = line.strip()
            if re.match(r"(Form mounted|Content types|Printer types|Description|Alerts|Location|Connection|"
                        r"Interface|On fault|After fault|Users allowed|Forms allowed|Banner|Charset)\b", text):
                in_message = False
            if in_message and text and not message:
                message = "" if text == "reason unknown" else text
            elif text.startswith("Alerts:"):
                alerts = tuple(a for a in text.removeprefix("Alerts:").split() if a != "none")
        return _Printer(name, state, current, message, alerts, accepting.get(name, True))

    def _accepting(self) -> dict[str, bool]:
        out = self._run("lpstat", "-a", check=False)
        answer = {}
        for line in out.stdout.splitlines():
            if m := re.match(r"(\S+) (not )?accepting requests", line):
                answer[m.group(1)] = m.group(2) is None
        return answer

    @staticmethod
    def _problem(p: _Printer) -> str | None:
        for alert in p.alerts:
            keyword = re.sub(r"-(error|warning|report)$", "", alert)
            if keyword in PRINTER_PROBLEMS:
                return PRINTER_PROBLEMS[keyword]
        return None

    @classmethod
    def _stop_cause(cls, p: _Printer) -> str | None:
        """Why a stopped printer is stopped, when CUPS says more than that it is."""
        problem = cls._problem(p)
        if problem:
            return f"the printer is {problem}"
        message = _plain_message(p.message)
        return message if message not in ("", "Paused", "Rejecting Jobs") else None

    def _info(self, p: _Printer) -> PrinterInfo:
        problem = self._problem(p)
        if p.state == "stopped":
            return PrinterInfo(p.name, False, f"stopped: {self._stop_cause(p) or 'the printer is off or paused'}")
        if not p.accepting:
            return PrinterInfo(p.name, False, "not accepting prints at the moment")
        if p.state == "holding":
            return PrinterInfo(p.name, False, "holding new prints")
        if problem:
            return PrinterInfo(p.name, False, f"not ready: {problem}")
        return PrinterInfo(p.name, True, "printing" if p.state == "processing" else "idle")

    def _printer(self, name: str) -> _Printer:
        out = self._run("lpstat", "-l", "-p", name, check=False)
        if out.returncode != 0:
            raise self._failure(out.stderr, name)
        lines = out.stdout.splitlines()
        p = self._parse_printer(lines, self._accepting()) if lines else None
        if p is None:
            raise PrintError(f"The print system's answer about the printer {name} could not be read")
        return p

    # --- jobs ----------------------------------------------------------------------------------------------------

    def _jobs(self, printer: str, which: str) -> list[_Job]:
        out = self._run("lpstat", "-l", "-W", which, "-o", printer, check=False)
        if out.returncode != 0:
            raise self._failure(out.stderr, printer)
        jobs: list[_Job] = []
        job_id, message, alerts = None, "", ()
        for line in out.stdout.splitlines():
            if line and not line[0].isspace():
                if job_id is not None:
                    jobs.append(_Job(job_id, message, alerts))
                job_id, message, alerts = line.split()[0], "", ()
            elif (text := line.strip()).startswith("Status:"):
                message = text.removeprefix("Status:").strip()
            elif text.startswith("Alerts:"):
                alerts = tuple(text.removeprefix("Alerts:").split())
        if job_id is not None:
            jobs.append(_Job(job_id, message, alerts))
        return jobs

    def _queued_status(self, printer: str, job: _Job, position: int, queued: list[_Job]) -> JobStatus:
        reasons = set(job.alerts)
        if reasons & JOB_STOPPED:
            return JobStatus(JobState.FAILED, "failed: the print system could not prepare it for the printer"
                             + _because(job.message))
        if "processing-to-stop-point" in reasons:
            return JobStatus(JobState.WAITING, "waiting: the print job is being stopped")
        if "job-hold-until-specified" in reasons:
            return JobStatus(JobState.WAITING, f"waiting: {JOB_HELD['job-hold-until-specified']}")
        p = self._printer(printer)
        problem = self._problem(p)
        if p.state == "stopped":
            cause = self._stop_cause(p) or "off, paused or out of paper"
            return JobStatus(JobState.WAITING, f"waiting: the printer is stopped ({cause})")
        held = next((JOB_HELD[r] for r in job.alerts if r in JOB_HELD), None)
        if held is None and any(r.startswith("account-") for r in job.alerts):
            held = "the printer refuses this account"
        if held:
            return JobStatus(JobState.WAITING, f"waiting: {held}")
        started = p.current_job == job.job_id or bool(reasons & JOB_PROCESSING)
        if started:
            return JobStatus(JobState.PRINTING, f"printing: {problem}" if problem else "printing")
        if problem:
            return JobStatus(JobState.WAITING, f"waiting: the printer is {problem}")
        if p.state == "holding":
            return JobStatus(JobState.WAITING, "waiting: the printer is holding new prints")
        ahead = sum(1 for other in queued[:position] if not set(other.alerts) & (JOB_STOPPED | set(JOB_HELD)))
        if ahead:
            return JobStatus(JobState.WAITING,
                             f"waiting: {ahead} other print job{'s' if ahead > 1 else ''} ahead of it")
        return JobStatus(JobState.WAITING, "waiting: about to start")

    def _finished_status(self, job: _Job) -> JobStatus:
        # lpstat cannot tell printed from cancelled (see the module's docstring); the scheduler's refusal to cancel
        # a finished job names its state.
        out = self._run("cancel", job.job_id, check=False)
        state = self._already(out.stderr) if out.returncode != 0 else "canceled"
        why = _because(job.message)
        if state == "completed":
            return JobStatus(JobState.PRINTED, "printed")
        if state == "canceled":
            return JobStatus(JobState.FAILED, f"failed: the print job was cancelled{why}")
        if state == "aborted":
            return JobStatus(JobState.FAILED, f"failed: the print system gave up on it{why}")
        # Not ours to cancel, or an answer not understood: trust the reasons, where they say anything.
        reasons = set(job.alerts)
        if reasons & {"job-completed-successfully"}:
            return JobStatus(JobState.PRINTED, "printed")
        if any(r.startswith(("job-canceled", "canceled-")) for r in reasons):
            return JobStatus(JobState.FAILED, f"failed: the print job was cancelled{why}")
        if reasons & ({"aborted-by-system", "job-aborted-by-system"} | JOB_STOPPED):
            return JobStatus(JobState.FAILED, f"failed: the print system gave up on it{why}")
        return JobStatus(JobState.PRINTED, "printed (the print system says it is done)")

    @staticmethod
    def _already(stderr: str) -> str | None:
        m = re.search(r"is already (\w+)", stderr)
        return m.group(1) if m else None

    # --- running the tools ---------------------------------------------------------------------------------------

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, LC_ALL="C", LANG="C")
        env.pop("LANGUAGE", None)
        try:
            out = subprocess.run(argv, check=False, env=env, capture_output=True, text=True, errors="replace",
                                 timeout=self.deadline_s, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise PrintError(NOT_INSTALLED) from None
        except subprocess.TimeoutExpired:
            log.warning("the print system's %s did not answer within %.0f s", argv[0], self.deadline_s)
            raise PrintError(NO_ANSWER) from None
        except OSError as e:
            raise PrintError(f"The print system could not be asked ({e.strerror})") from None
        if check and out.returncode != 0:
            raise self._failure(out.stderr)
        return out

    def _scheduler_running(self) -> bool:
        out = self._run("lpstat", "-r", check=False)
        return "scheduler is running" in out.stdout

    def _failure(self, stderr: str, printer: str | None = None) -> PrintError:
        if "Scheduler is not running" in stderr or "Unable to connect" in stderr or "server-error" in stderr:
            return PrintError(NOT_RUNNING)
        if printer is not None and ("Invalid destination" in stderr or "does not exist" in stderr):
            # lp and lpstat say this too when there is no scheduler to ask.
            return PrintError(f"No printer called {printer} on this computer" if self._scheduler_running()
                              else NOT_RUNNING)
        return PrintError(f"The print system said: {self._plain(stderr)}")

    def _refusal(self, stderr: str, printer: str, path: Path) -> PrintError:
        if "not accepting jobs" in stderr:
            return PrintError(f"The printer {printer} is not accepting prints at the moment")
        if "does not exist" in stderr or "Invalid destination" in stderr:
            return self._failure(stderr, printer)
        if "Scheduler is not running" in stderr or "Unable to connect" in stderr:
            return PrintError(NOT_RUNNING)
        said = self._plain(stderr.replace(str(path), "the file"))
        return PrintError(f"The print system refused the prescription: {said}")

    @staticmethod
    def _plain(stderr: str) -> str:
        text = " ".join(stderr.split())
        text = re.sub(r"^(lp|lpstat|cancel): (Error - )?", "", text)
        return text or "no reason given"

    @staticmethod
    def _check_name(printer: str) -> None:
        if not printer or not _NAME.fullmatch(printer):
            raise PrintError(f"No printer called {printer} on this computer")

    @staticmethod
    def _check_job_id(job_id: str) -> None:
        if not _JOB_ID.fullmatch(job_id):
            raise PrintError(f"{job_id!r} is not a print job number of this computer")


def _plain_message(message: str) -> str:
    """A CUPS state message fit for the paramedic: without file paths, and nothing that sends one to a log file."""
    text = re.sub(r"(?<![\w.])/[^\s:]+:?", "", message)
    text = " ".join(text.split()).strip(" :;,")
    return "" if "error_log" in text or len(text) > 120 else text


def _because(message: str) -> str:
    text = _plain_message(message)
    return f" ({text})" if text else ""


def system_print_system() -> PrintSystem:
    """This computer's print system: CUPS on Linux and macOS."""
    if sys.platform == "win32":
        raise PrintError("Printing from Spoke on Windows is not available yet")
    return CupsPrintSystem()
