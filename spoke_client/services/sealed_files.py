"""Photos, recordings and documents sealed at rest (the media store, services/media.py, keeps its files so).

A file keeps its name, the SHA-256 of its plain content, so sync and deduplication are unchanged. On the disk:

    MAGIC (b"SPKM1\\n"), a 16-byte random salt, then the content in 64 KiB chunks, each sealed with
    ChaCha20-Poly1305 under HKDF-SHA256(media key, salt), the nonce an 11-byte counter and a last-chunk flag
    (age's STREAM construction), the file's name (its SHA-256) as associated data of every chunk.

The media key is derived from the database key (HKDF, its own label), so one unlock opens both. A chunk changed,
a file cut short, chunks reordered, or a file put under another file's name all fail to open.

A download from the hub (or a file of a return bundle) is sealed as it arrives, before it is whole or checked:
`SealedPartial` keeps it in media/incoming/ as MAGIC_PARTIAL (b"SPKP1\\n"), a 16-byte random salt, then records
of a 4-byte length and a block of at most 64 KiB sealed with ChaCha20-Poly1305 under HKDF-SHA256(media key, salt)
(its own label), the nonce the record's number, the file's name as associated data. Records can be appended after
a cut link; a record cut short by a crash is dropped and fetched again. The whole content is checked against its
SHA-256 before it is kept, so a record dropped or changed on the disk only costs a new download.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"SPKM1\n"
MAGIC_PARTIAL = b"SPKP1\n"
SALT = 16
CHUNK = 64 * 1024
TAG = 16


class SealedFileError(OSError):
    """A sealed file that does not open: damaged, cut short, or not this PC's (another key or another name). An
    OSError, as a file that cannot be read is to the code that reads it."""


def is_sealed(path: Path) -> bool:
    return starts_with(path, MAGIC)


def starts_with(path: Path, magic: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError:
        return False


def media_key(database_key: bytes) -> bytes:
    return _hkdf(database_key, b"", b"spoke media key v1")


def seal(key: bytes, name: str, chunks: Iterable[bytes], out: Path) -> int:
    """Writes the content given in pieces to `out` (via a temporary name, fsynced, renamed); returns its size."""
    salt = os.urandom(SALT)
    aead = ChaCha20Poly1305(_hkdf(key, salt, b"spoke media file v1"))
    aad = name.encode("ascii")
    temp = out.with_name(out.name + ".sealing")
    pending = bytearray()
    counter = size = 0
    try:
        with open(temp, "wb") as f:
            f.write(MAGIC + salt)
            for piece in chunks:
                pending += piece
                size += len(piece)
                while len(pending) > CHUNK:   # one chunk held back: the last is sealed as last
                    f.write(aead.encrypt(_nonce(counter, False), bytes(pending[:CHUNK]), aad))
                    del pending[:CHUNK]
                    counter += 1
            f.write(aead.encrypt(_nonce(counter, True), bytes(pending), aad))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return size


def open_sealed(key: bytes, name: str, path: Path) -> Iterator[bytes]:
    """The plain content of a sealed file, chunk by chunk (a SealedFileError at the first that does not open)."""
    aad = name.encode("ascii")
    with open(path, "rb") as f:
        head = f.read(len(MAGIC) + SALT)
        if len(head) != len(MAGIC) + SALT or not head.startswith(MAGIC):
            raise SealedFileError("not a sealed file")
        aead = ChaCha20Poly1305(_hkdf(key, head[len(MAGIC):], b"spoke media file v1"))
        remaining = os.fstat(f.fileno()).st_size - len(head)
        counter = 0
        while True:
            take = min(CHUNK + TAG, remaining)
            block = f.read(take)
            remaining -= len(block)
            if len(block) < TAG:
                raise SealedFileError("cut short")
            try:
                yield aead.decrypt(_nonce(counter, remaining == 0), block, aad)
            except InvalidTag:
                raise SealedFileError("damaged, cut short, or not this file") from None
            if remaining == 0:
                return
            counter += 1


def read_sealed(key: bytes, name: str, path: Path) -> bytes:
    return b"".join(open_sealed(key, name, path))


class SealedPartial:
    """A download kept sealed between tries (the module's docstring has the format); a PartialDownload of sync."""

    def __init__(self, key: bytes, name: str, path: Path) -> None:
        self.key, self.path, self._aad = key, path, name.encode("ascii")

    def _scan(self, decrypt: bool = False) -> Iterator[tuple[int, int, int, bytes | None]]:
        """(record number, plain bytes so far, file offset after the record, its plain block when decrypting) for
        each whole record; stops at the first one cut short. Nothing when the file is absent or not a sealed
        download."""
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return
        with f:
            head = f.read(len(MAGIC_PARTIAL) + SALT)
            if len(head) != len(MAGIC_PARTIAL) + SALT or not head.startswith(MAGIC_PARTIAL):
                return
            aead = ChaCha20Poly1305(_hkdf(self.key, head[len(MAGIC_PARTIAL):], b"spoke media download v1")) \
                if decrypt else None
            counter = plain = 0
            file_size = os.fstat(f.fileno()).st_size
            while True:
                size = f.read(4)
                length = int.from_bytes(size, "big") if len(size) == 4 else 0
                if not TAG <= length <= CHUNK + TAG:
                    return
                record = f.read(length) if aead is not None else None
                if record is None:
                    f.seek(length, os.SEEK_CUR)
                    if f.tell() > file_size:
                        return
                elif len(record) < length:
                    return
                block = None
                if aead is not None:
                    try:
                        block = aead.decrypt(counter.to_bytes(12, "big"), record, self._aad)
                    except InvalidTag:
                        raise SealedFileError("a kept download is damaged or not this file") from None
                plain += length - TAG
                yield counter, plain, f.tell(), block
                counter += 1

    def _end(self) -> tuple[int, int, int]:
        """(records, plain bytes, file offset) of the whole records."""
        last = (-1, 0, len(MAGIC_PARTIAL) + SALT, None)
        for last in self._scan():
            pass
        return last[0] + 1, last[1], last[2]

    def size(self) -> int:
        return self._end()[1]

    @contextlib.contextmanager
    def writer(self, offset: int) -> Iterator[Callable[[bytes], None]]:
        """Appends from `offset`: 0 (starting over, with a new salt) or the size already here. Each block is
        sealed and written as a record; flushed and fsynced when the block of code ends, however it ends."""
        records, plain, end = self._end()
        if offset not in (0, plain):
            raise ValueError(f"a kept download holds {plain} bytes, not {offset}")
        if offset == 0 or records == 0:
            if self.path.exists() and not starts_with(self.path, MAGIC_PARTIAL):
                zero(self.path)         # a download kept in clear before the data was encrypted
            salt = os.urandom(SALT)
            f = open(self.path, "wb")
            f.write(MAGIC_PARTIAL + salt)
            records = 0
        else:
            f = open(self.path, "r+b")
            f.seek(len(MAGIC_PARTIAL))
            salt = f.read(SALT)
            f.seek(end)
            f.truncate()
        aead = ChaCha20Poly1305(_hkdf(self.key, salt, b"spoke media download v1"))
        counter = records

        def write(data: bytes) -> None:
            nonlocal counter
            view = memoryview(data)
            for at in range(0, len(view), CHUNK):
                sealed = aead.encrypt(counter.to_bytes(12, "big"), bytes(view[at:at + CHUNK]), self._aad)
                f.write(len(sealed).to_bytes(4, "big") + sealed)
                counter += 1

        try:
            yield write
        finally:
            f.flush()
            os.fsync(f.fileno())
            f.close()

    def blocks(self) -> Iterator[bytes]:
        for _n, _plain, _end, block in self._scan(decrypt=True):
            yield block

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def zero(path: Path) -> None:
    """Overwrites a clear file's content with zeros (as far as the file system lets it reach)."""
    try:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
    except FileNotFoundError:
        pass


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt or None, info=info).derive(secret)
