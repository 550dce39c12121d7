"""File helpers shared by both ends: a file's SHA-256, making a rename durable, and a download kept between tries."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    """After a rename into `path`: the directory entry reaches the disk too (POSIX; a no-op elsewhere)."""
    if os.name == "posix":
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class PartialDownload(Protocol):
    """A file being fetched, kept between tries so a cut link resumes where it stopped: how many bytes of the
    content are here, appending from there (or from 0, starting over), the content's SHA-256 and its blocks once
    whole. A spoke whose data is encrypted keeps its downloads sealed as they arrive (its services/sealed_files.py);
    `PlainPartial` is the plain file."""

    def size(self) -> int: ...
    def writer(self, offset: int) -> contextlib.AbstractContextManager[Callable[[bytes], None]]: ...
    def blocks(self) -> Iterator[bytes]: ...
    def discard(self) -> None: ...


class PlainPartial:
    """A download in a plain file; its content is the file's bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    @contextlib.contextmanager
    def writer(self, offset: int) -> Iterator[Callable[[bytes], None]]:
        """Writes from `offset` (0, or the size already here), flushed and fsynced when the block ends, however
        it ends: what was written before a cut link stays for the next try."""
        with open(self.path, "r+b" if offset and self.path.exists() else "wb") as f:
            f.seek(offset)
            f.truncate()
            try:
                yield f.write
            finally:
                f.flush()
                os.fsync(f.fileno())

    def blocks(self) -> Iterator[bytes]:
        with open(self.path, "rb") as f:
            yield from iter(lambda: f.read(1 << 20), b"")

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def sha256_blocks(blocks) -> str:
    h = hashlib.sha256()
    for block in blocks:
        h.update(block)
    return h.hexdigest()
