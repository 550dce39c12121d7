"""A private CUPS server for the printing tests: its own cupsd, listening only on a unix socket in a temporary folder,
with one cups-pdf queue whose PDFs land in a folder of that temporary tree.

Nothing of the machine's own CUPS is used or changed, but for one thing cups-pdf leaves no other way to: its settings
are read from /etc/cups only, from cups-pdf-NAME.conf for a queue whose device is `cups-pdf:/NAME` (else from the
machine's cups-pdf.conf, which sends a root job's PDF to /root/PDF). So the queue's device is named after this run,
`cups-pdf:/spoke-test-<pid>-<random>`, its file says where the PDFs go, and it is removed at the end (and any left by
a run that was killed, on the next start).

`cups_server_fixture()` makes the session fixture; tests/printing/conftest.py registers it as `cups_server`. A missing
cupsd or cups-pdf fails the tests that need it, never skips them.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PACKAGES = "cups printer-driver-cups-pdf"
CUPSD = "/usr/sbin/cupsd"
CUPS_PDF_BACKEND = "/usr/lib/cups/backend/cups-pdf"
CUPS_PDF_PPD_DIRS = ("/usr/share/ppd/cups-pdf", "/usr/share/cups/model", "/usr/share/ppd")
CUPS_PDF_CONF_DIR = Path("/etc/cups")
CONF_PREFIX = "cups-pdf-spoke-test-"
QUEUE = "PDF"
START_DEADLINE_S = 15.0
STOP_DEADLINE_S = 5.0


class CupsServer:
    """The running private server. `env` points CUPS's programs (and CupsPrintSystem) at it."""

    def __init__(self, root: Path, process: subprocess.Popen, printer: str, output_dir: Path) -> None:
        self.root = root
        self.socket = root / "cups.sock"
        self.process = process
        self.printer = printer
        self.output_dir = output_dir
        self.error_log = root / "log" / "error_log"
        self._returned: set[str] = set()

    @property
    def env(self) -> dict[str, str]:
        return {"CUPS_SERVER": str(self.socket)}

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A CUPS program run against this server."""
        out = subprocess.run(argv, check=False, env=dict(os.environ, LC_ALL="C", **self.env), capture_output=True,
                             text=True, timeout=20, stdin=subprocess.DEVNULL)
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({out.returncode}): {out.stderr.strip()}")
        return out

    def disable(self, reason: str | None = None) -> None:
        """Stops the queue (cupsdisable): jobs stay queued until enable()."""
        self.run("cupsdisable", *(["-r", reason] if reason else []), self.printer)

    def enable(self) -> None:
        self.run("cupsenable", self.printer)

    def pdfs(self) -> list[Path]:
        return sorted(self.output_dir.glob("*.pdf"))

    def wait_for_pdf(self, timeout: float = 10.0, job_id: str | None = None) -> Path:
        """The next cups-pdf output not returned before (or the one of `job_id`, "PDF-3"), once it is complete: it
        appears empty and grows while Ghostscript writes it, so its size must be non-zero and stay the same for
        a while (or end in %%EOF and stay the same from one look to the next)."""
        suffix = f"-job_{job_id.rsplit('-', 1)[1]}.pdf" if job_id else None
        deadline = time.monotonic() + timeout
        sizes: dict[Path, list[int]] = {}
        while True:
            for path in self.pdfs():
                if path.name in self._returned or (suffix and not path.name.endswith(suffix)):
                    continue
                try:
                    size = path.stat().st_size
                except FileNotFoundError:
                    continue
                seen = sizes.setdefault(path, [])
                seen.append(size)
                stable = len(seen) >= 2 and size > 0 and seen[-2] == size
                if stable and ((len(seen) >= 4 and len(set(seen[-4:])) == 1) or _ends_pdf(path)):
                    self._returned.add(path.name)
                    return path
            if time.monotonic() > deadline:
                raise AssertionError(f"no complete PDF from cups-pdf in {self.output_dir} within {timeout} s "
                                     f"(there: {[p.name for p in self.pdfs()]}; returned before: "
                                     f"{sorted(self._returned)})\n{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.error_log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no cupsd error_log)"
        return "cupsd error_log, last lines:\n" + "\n".join(text[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_DEADLINE_S)


def _ends_pdf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 32))
            return f.read().rstrip().endswith(b"%%EOF")
    except OSError:
        return False


def _require(condition: bool, what: str) -> None:
    if not condition:
        pytest.fail(f"The printing tests need a real CUPS server with cups-pdf: {what}. "
                    f"Install the Debian packages: apt-get install {PACKAGES}", pytrace=False)


def _cups_pdf_ppd() -> str:
    for folder in CUPS_PDF_PPD_DIRS:
        for name in ("CUPS-PDF_opt.ppd", "CUPS-PDF_noopt.ppd", "CUPS-PDF.ppd"):
            for path in Path(folder).rglob(name):
                return str(path)
    _require(False, f"no cups-pdf PPD (CUPS-PDF_opt.ppd) in {', '.join(CUPS_PDF_PPD_DIRS)}")
    raise AssertionError("unreachable")


def _remove_stale_confs() -> None:
    """cups-pdf settings files left by a run that was killed before its teardown."""
    for conf in CUPS_PDF_CONF_DIR.glob(f"{CONF_PREFIX}*.conf"):
        m = re.match(rf"{re.escape(CONF_PREFIX)}(\d+)-", conf.name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            conf.unlink(missing_ok=True)


def _write_confs(root: Path) -> tuple[Path, Path]:
    etc = root / "etc"
    etc.mkdir()
    (etc / "cupsd.conf").write_text(f"""\
Listen {root}/cups.sock
LogLevel info
MaxLogSize 0
Browsing No
BrowseLocalProtocols none
DefaultShared No
WebInterface No
DefaultAuthType None
PreserveJobHistory Yes
<Location />
  Order allow,deny
  Allow all
</Location>
<Policy default>
  JobPrivateAccess default
  JobPrivateValues default
  SubscriptionPrivateAccess default
  SubscriptionPrivateValues default
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
""")
    # TempDir stays the default, RequestRoot/tmp, which cupsd makes writable for the filters (user lp).
    (etc / "cups-files.conf").write_text(f"""\
ServerRoot {etc}
RequestRoot {root}/spool
CacheDir {root}/cache
StateDir {root}/state
AccessLog {root}/log/access_log
ErrorLog {root}/log/error_log
PageLog {root}/log/page_log
User lp
Group lp
SystemGroup root
""")
    return etc / "cupsd.conf", etc / "cups-files.conf"


def _start(cupsd: str, root: Path) -> subprocess.Popen:
    for sub in ("spool", "cache", "state", "log"):
        (root / sub).mkdir()
    conf, files_conf = _write_confs(root)
    with open(root / "cupsd.out", "wb") as out:     # cupsd keeps its own copy of the descriptor
        return subprocess.Popen([cupsd, "-f", "-c", str(conf), "-s", str(files_conf)], cwd=root,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ, LC_ALL="C"))


def cups_server_fixture(scope: str = "session", queue: str = QUEUE) -> Callable[..., Iterator[CupsServer]]:
    """Makes the fixture: a private cupsd with a cups-pdf queue named `queue`, stopped at the end."""

    @pytest.fixture(scope=scope)
    def cups_server() -> Iterator[CupsServer]:
        cupsd = CUPSD if Path(CUPSD).exists() else shutil.which("cupsd")
        _require(cupsd is not None, "cupsd is not installed")
        _require(Path(CUPS_PDF_BACKEND).exists(), f"the cups-pdf backend {CUPS_PDF_BACKEND} is missing")
        for tool in ("lpadmin", "lpstat", "lp", "cancel", "cupsenable", "cupsdisable"):
            _require(shutil.which(tool) is not None, f"the CUPS program {tool} is missing")
        ppd = _cups_pdf_ppd()
        _require(os.geteuid() == 0, "they must run as root (cups-pdf writes its PDFs as root, and the queue's "
                                    "settings live in /etc/cups)")
        _remove_stale_confs()

        # Not under pytest's tmp folder (mode 0700): the filters run as the user lp and must reach the spool.
        root = Path(tempfile.mkdtemp(prefix="spoke-cups-", dir="/tmp"))
        root.chmod(0o755)
        device = f"spoke-test-{os.getpid()}-{secrets.token_hex(3)}"
        conf = CUPS_PDF_CONF_DIR / f"cups-pdf-{device}.conf"
        output_dir = root / "pdf"
        output_dir.mkdir()
        conf.write_text(f"""\
# The Spoke printing tests' private cups-pdf queue (removed when they end).
Out {output_dir}
AnonDirName {output_dir}
AnonUser nobody
Spool {root}/cups-pdf-spool
Log {root}/log
LogType 3
Grp lp
Label 2
DecodeHexStrings 1
""")
        process = _start(cupsd, root)
        server = CupsServer(root, process, queue, output_dir)
        try:
            deadline = time.monotonic() + START_DEADLINE_S
            while "scheduler is running" not in server.run("lpstat", "-r", check=False).stdout:
                if process.poll() is not None or time.monotonic() > deadline:
                    out = (root / "cupsd.out").read_text(errors="replace")
                    pytest.fail(f"the private cupsd did not start (exit {process.poll()}): {out}\n"
                                f"{server.log_tail()}", pytrace=False)
                time.sleep(0.05)
            # -P: the PPD file itself, so cupsd never runs its driver search (cups-driverd, which also asks the
            # network for driverless printers); the queue is the same as `-m lsb/usr/cups-pdf/CUPS-PDF_opt.ppd`.
            server.run("lpadmin", "-p", queue, "-v", f"cups-pdf:/{device}", "-E", "-P", ppd)
            yield server
        finally:
            server.stop()
            conf.unlink(missing_ok=True)
            shutil.rmtree(root, ignore_errors=True)

    return cups_server

