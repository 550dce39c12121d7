"""Photos, recordings and documents sealed at rest (the media store, services/media.py, keeps its files so).

A file keeps its name, the SHA-256 of its plain content, so sync and deduplication are unchanged. On the disk:

    MAGIC (b"SPKM1\\n"), a 16-byte random salt, then the content in 64 KiB chunks, each sealed with
    ChaCha20-Poly1305 under HKDF-SHA256(media key, salt), the nonce an 11-byte counter and a last-chunk flag
    (age's STREAM construction), the file's name (its SHA-256) as associated data of every chunk.

The media key is derived from the database key (HKDF, its own label), so one unlock opens both. A chunk changed,
a file cut short, chunks reordered, or a file put under another file's name all fail to open.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"SPKM1\n"
SALT = 16
CHUNK = 64 * 1024
TAG = 16


class SealedFileError(OSError):
    """A sealed file that does not open: damaged, cut short, or not this PC's (another key or another name). An
    OSError, as a file that cannot be read is to the code that reads it."""


def is_sealed(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
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


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt or None, info=info).derive(secret)
