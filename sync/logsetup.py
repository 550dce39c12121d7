"""Logging for both ends: one rotated file in the program's logs folder, with identifiers a patient could be
traced by (phone, ABHA number and address) masked on the way out.

Code never logs a patient's name, phone, ABHA number or address in the first place; the mask is the second
line of defence, for an exception message that quotes a value (a database error, a parser's complaint).
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"
MAX_BYTES, BACKUPS = 2 * 1024 * 1024, 5     # 12 MB at most on a spoke PC's small disk

# An ABHA number (14 digits, dashed or not), an Indian mobile number (10 digits, optionally +91/0 in front),
# an ABHA address (name@abdm, @sbx, @ndhm). Digit runs of other lengths (ids, counters, sizes) are left alone,
# and so are digits inside a word (a UUID's hex, a file's hash).
_MASKS = (
    (re.compile(r"(?<![0-9A-Za-z])[0-9]{2}-?[0-9]{4}-?[0-9]{4}-?[0-9]{4}(?![0-9A-Za-z])"), "<abha-number>"),
    # Not after "-": the last group of a UUID can be twelve digits ("...-a54e-919876543210", seen in a CI log).
    (re.compile(r"(?<![0-9A-Za-z+-])(?:\+?91[ -]?|0)?[6-9][0-9]{4}[ -]?[0-9]{5}(?![0-9A-Za-z])"), "<phone>"),
    (re.compile(r"[A-Za-z0-9._-]+@(?:abdm|sbx|ndhm)\b", re.IGNORECASE), "<abha-address>"),
)


def mask(text: str) -> str:
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text


class MaskingFormatter(logging.Formatter):
    """Formats as usual (traceback included), then masks identifiers in the whole record."""

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


def configure(log_dir: Path | None, file_name: str, *, level: int = logging.INFO, stderr: bool = False,
              rotate: bool = True) -> Path | None:
    """Sends the root logger to `log_dir/file_name` (rotated), and to stderr when asked. Safe to call twice:
    handlers it added before are replaced. Returns the log file's path (None when only stderr).

    rotate=False for the worker processes of one hub, which append to their parent's file (appends of one
    line are atomic on a local disk) and leave rotation to the parent, so two workers never rotate at once."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_spoke", False):
            root.removeHandler(handler)
            handler.close()
    formatter = MaskingFormatter(LOG_FORMAT)
    path = None
    if log_dir is not None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            path = log_dir / file_name
            handler: logging.Handler = (
                logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8",
                                                     delay=True)
                if rotate else logging.handlers.WatchedFileHandler(path, encoding="utf-8", delay=True))
        except OSError:
            path, stderr = None, True   # a read-only or full disk must not stop the program: log to stderr
        else:
            handler.setFormatter(formatter)
            handler._spoke = True  # type: ignore[attr-defined]
            root.addHandler(handler)
    if stderr:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter)
        handler._spoke = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    return path
