"""USB bundles: a device's work (or the hub's answers) sealed in files that anyone may carry and relay.

A bundle is signed by its sender (Ed25519) and encrypted for its one receiver (X25519), so a relay PC and a
lost drive learn nothing but the readable header. One part, as written:

    MAGIC              b"SPOKE-BUNDLE\\n"
    header             HEADER_BYTES of JSON padded with spaces, ending in "\\n": what it is, from whom, for whom,
                       counts, the part's size, part n of m (readable by anyone, covered by the signature)
    header digest      SHA-256 of MAGIC and the header: a damaged header is told as damaged, not as a stranger
    recipient stanza   an ephemeral X25519 public key (32 bytes) and the part's file key wrapped for the
                       receiver with ChaCha20-Poly1305 under HKDF of the shared secret (48 bytes), then a
                       16-byte nonce: as age's X25519 recipient stanza
    payload            age's STREAM: 64 KiB chunks, each sealed with ChaCha20-Poly1305 under HKDF(file key,
                       nonce), the chunk nonce an 11-byte counter and a last-chunk flag (a cut or reordered
                       stream fails)
    trailer            b"SIG1" and an Ed25519 signature over b"spoke-bundle-v1\\n", the SHA-256 of the prefix
                       (magic to stanza) and the SHA-256 of the sealed payload

The decrypted payload of all parts, in order, is one stream of frames (a kind byte, a 4-byte length, the
body); what the frames are is the business of the two ends (spoke_client.services.bundles, sync.hub.bundles).

Written to a temporary name, fsynced, renamed, and read back and verified: a drive pulled halfway leaves
only a file whose name says it is unfinished.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

FORMAT = 1
MAGIC = b"SPOKE-BUNDLE\n"
HEADER_BYTES = 1024
STANZA_BYTES = 32 + 48 + 16
SIG_MAGIC = b"SIG1"
TRAILER_BYTES = len(SIG_MAGIC) + 64
CHUNK = 64 * 1024                     # plaintext bytes per sealed chunk
TAG = 16
PREFIX_BYTES = len(MAGIC) + HEADER_BYTES + 32 + STANZA_BYTES
MAX_FRAME = 16 * 1024 * 1024          # one frame's body: a batch of changes, a piece of a file
SUFFIX = ".spokebundle"
UNFINISHED = ".unfinished"            # the name while it is written: never looks complete
KINDS = ("spoke", "hub")              # a spoke's bundle for its hub, or the hub's return bundle for one spoke
_ID = re.compile(r"[0-9A-Za-z-]{1,64}")


class BundleError(Exception):
    """A bundle refused, with a code, an exit code for the command line, and a sentence for the user."""

    EXIT = {"not_a_bundle": 3, "unknown_version": 4, "truncated": 5, "damaged": 6, "unknown_sender": 7,
            "revoked": 8, "other_hub": 9, "other_spoke": 10, "replayed": 11, "part_missing": 12, "no_space": 13,
            "no_key": 14, "write_failed": 15, "retired_key": 16}

    def __init__(self, code: str, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.code, self.message = code, message
        # Set on a refusal of the format itself (raised here, in English): what a program needs to say it in the
        # user's language (a part's number, a format version); None when the message is already the user's.
        self.details = details

    @property
    def exit_code(self) -> int:
        return self.EXIT.get(self.code, 1)


def _refused(code: str, message: str, **details) -> BundleError:
    return BundleError(code, message, details)


@dataclass(frozen=True)
class Header:
    """What anyone may read of a part: never a patient's detail, only counts."""

    kind: str                 # spoke | hub
    bundle_id: str            # the same for every part of one bundle
    sender: str               # the device id, or "hub"
    facility_id: str
    facility_name: str
    hub: str                  # the hub's key id (key_id of its X25519 key)
    recipient: str            # key id of the receiver's X25519 key
    created_at: str           # ISO 8601, UTC
    sequence: int             # the sender's bundle number: only grows (an older one is a replay)
    changes: int              # in the whole bundle
    files: int
    size: int                 # this part's bytes on the drive
    part: int
    parts: int
    format: int = FORMAT

    def to_json(self) -> dict[str, Any]:
        return {"format": self.format, "kind": self.kind, "bundle_id": self.bundle_id, "sender": self.sender,
                "facility_id": self.facility_id, "facility_name": self.facility_name, "hub": self.hub,
                "recipient": self.recipient, "created_at": self.created_at, "sequence": self.sequence,
                "changes": self.changes, "files": self.files, "size": self.size, "part": self.part,
                "parts": self.parts}

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)


def key_id(public: X25519PublicKey | Ed25519PublicKey) -> str:
    """A short, stable name for a public key (the hub's, a spoke's): 16 hex digits of its SHA-256."""
    return hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def raw(public: X25519PublicKey | Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


# --- reading -------------------------------------------------------------------------------------------------
def read_header(path: Path) -> Header:
    """The header of a part, checked for its form and against the file's size (nothing is decrypted)."""
    try:
        with open(path, "rb") as f:
            prefix = f.read(PREFIX_BYTES)
            size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise _refused("not_a_bundle", f"The file cannot be read ({exc.strerror or exc}).") from None
    return parse_header(prefix, size)


def parse_header(prefix: bytes, size: int) -> Header:
    if not prefix.startswith(MAGIC):
        raise _refused("not_a_bundle", "This file is not a Spoke bundle.")
    if len(prefix) < len(MAGIC) + HEADER_BYTES + 32:
        raise _refused("truncated", "This bundle is cut short: the drive was probably removed while it was "
                                       "written. Export it again.")
    line = prefix[len(MAGIC):len(MAGIC) + HEADER_BYTES]
    digest = prefix[len(MAGIC) + HEADER_BYTES:len(MAGIC) + HEADER_BYTES + 32]
    if hashlib.sha256(MAGIC + line).digest() != digest:
        raise _refused("damaged", "This bundle's header is damaged (a changed byte); it cannot be trusted.")
    try:
        data = json.loads(line.decode("utf-8"))
        version = data["format"] if isinstance(data, dict) else None
    except (ValueError, KeyError):
        raise _refused("damaged", "This bundle's header is damaged; it cannot be read.") from None
    if version != FORMAT:
        if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT:
            raise _refused("unknown_version", f"This bundle was written in format {version}, newer than this "
                                              f"program reads ({FORMAT}): update Spoke here to import it.",
                           version=version)
        raise _refused("damaged", "This bundle's header is damaged; it cannot be read.")
    header = _header_from(data)
    if size < header.size:
        raise _refused("truncated", f"This bundle is cut short ({size:,} of {header.size:,} bytes): the drive was "
                                       "probably removed while it was written, or the copy stopped. Copy it again.")
    if size > header.size or header.size < PREFIX_BYTES + TAG + TRAILER_BYTES:
        raise _refused("damaged", "This bundle's size does not match its header; it cannot be trusted.")
    return header


def _header_from(data: dict) -> Header:
    def text(name: str, pattern: re.Pattern | None = _ID, limit: int = 200) -> str:
        value = data.get(name)
        if not isinstance(value, str) or len(value) > limit or (pattern and not pattern.fullmatch(value)):
            raise _refused("damaged", f"This bundle's header is damaged (its {name}).")
        return value

    def number(name: str, low: int = 0) -> int:
        value = data.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value < 2**53:
            raise _refused("damaged", f"This bundle's header is damaged (its {name}).")
        return value

    kind = text("kind")
    created = text("created_at", None, 40)
    try:
        when = datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise ValueError
    except ValueError:
        raise _refused("damaged", "This bundle's header is damaged (its creation time).") from None
    header = Header(kind=kind, bundle_id=text("bundle_id"), sender=text("sender"), facility_id=text("facility_id"),
                    facility_name=text("facility_name", None), hub=text("hub"), recipient=text("recipient"),
                    created_at=created, sequence=number("sequence", 1), changes=number("changes"),
                    files=number("files"), size=number("size"), part=number("part", 1), parts=number("parts", 1))
    if kind not in KINDS or header.part > header.parts:
        raise _refused("damaged", "This bundle's header is damaged (its kind or part number).")
    return header


def verify(path: Path, header: Header, sender: Ed25519PublicKey) -> None:
    """Checks the signature over the whole part, reading it once (nothing is decrypted)."""
    with open(path, "rb") as f:
        prefix = f.read(PREFIX_BYTES)
        body = hashlib.sha256()
        remaining = header.size - TRAILER_BYTES - len(prefix)
        while remaining > 0:
            block = f.read(min(remaining, 1 << 20))
            if not block:
                raise _refused("truncated", "This bundle is cut short; copy it again.")
            body.update(block)
            remaining -= len(block)
        trailer = f.read(TRAILER_BYTES)
    if len(trailer) != TRAILER_BYTES or not trailer.startswith(SIG_MAGIC):
        raise _refused("damaged", "This bundle's signature is missing or damaged; it cannot be trusted.")
    try:
        sender.verify(trailer[len(SIG_MAGIC):], _signed(hashlib.sha256(prefix).digest(), body.digest()))
    except InvalidSignature:
        raise _refused("damaged", "This bundle's signature does not match its content: it was changed or "
                                     "damaged on the way, and nothing of it was applied.") from None


def _signed(prefix_digest: bytes, body_digest: bytes) -> bytes:
    """What is signed: the SHA-256 of the part's prefix (magic, header, header digest, stanza) and that of the sealed
    payload (hashed as it is written, so the writer never reads the part back to sign it)."""
    return b"spoke-bundle-v1\n" + prefix_digest + body_digest


def frames(paths: list[Path], headers: list[Header], recipient: X25519PrivateKey) -> Iterator[tuple[bytes, bytes]]:
    """The frames of a bundle's parts, decrypted chunk by chunk (a few chunks in memory at most). Verify each
    part's signature first: this checks the encryption too, and a failure is still a BundleError."""
    buffer = bytearray()
    for path, header in zip(paths, headers):
        for chunk in _open_part(path, header, recipient):
            buffer += chunk
            while len(buffer) >= 5:
                kind, length = buffer[:1], struct.unpack(">I", buffer[1:5])[0]
                if length > MAX_FRAME:
                    raise _refused("damaged", "This bundle holds a piece larger than any Spoke writes.")
                if len(buffer) < 5 + length:
                    break
                body = bytes(buffer[5:5 + length])
                del buffer[:5 + length]
                yield bytes(kind), body
    if buffer:
        raise _refused("damaged", "This bundle ends in the middle of a record.")


def _open_part(path: Path, header: Header, recipient: X25519PrivateKey) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(len(MAGIC) + HEADER_BYTES + 32)
        stanza = f.read(STANZA_BYTES)
        ephemeral, wrapped, nonce = stanza[:32], stanza[32:80], stanza[80:96]
        try:
            shared = recipient.exchange(X25519PublicKey.from_public_bytes(ephemeral))
            wrap_key = _hkdf(shared, ephemeral + raw(recipient.public_key()), b"spoke-bundle-v1 key wrap")
            file_key = ChaCha20Poly1305(wrap_key).decrypt(b"\0" * 12, wrapped, None)
        except (InvalidTag, ValueError):
            raise _refused("no_key", "This bundle was sealed for another key: it cannot be opened here.") from None
        aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"spoke-bundle-v1 payload"))
        sealed = header.size - PREFIX_BYTES - TRAILER_BYTES
        counter = 0
        while sealed > 0:
            take = min(CHUNK + TAG, sealed)
            block = f.read(take)
            sealed -= take
            last = sealed == 0
            if len(block) != take:
                raise _refused("truncated", "This bundle is cut short; copy it again.")
            try:
                yield aead.decrypt(_nonce(counter, last), block, None)
            except InvalidTag:
                raise _refused("damaged", "A part of this bundle is damaged; nothing of it was applied.") from None
            counter += 1


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(secret)


# --- writing -------------------------------------------------------------------------------------------------
@dataclass
class _Part:
    path: Path          # the unfinished name
    file: BinaryIO
    aead: ChaCha20Poly1305
    stanza: bytes
    body: "hashlib._Hash"   # the sealed payload's SHA-256, as written
    counter: int = 0
    written: int = 0    # payload plaintext bytes in this part
    pending: bytearray | None = None


class BundleWriter:
    """Writes frames into one or more sealed parts of at most `max_size` bytes each.

    `finish()` rewrites each part's header with its final size and the number of parts, signs it, fsyncs and
    renames it to its final name, then reads each back and checks its signature; until then only files named
    *.unfinished exist. `abort()` (or leaving the `with` block by an exception) removes every part.
    """

    def __init__(self, out: Path, header: Header, signing_key: Ed25519PrivateKey, recipient: X25519PublicKey,
                 max_size: int | None = None) -> None:
        min_size = PREFIX_BYTES + CHUNK + TAG + TRAILER_BYTES
        if max_size is not None and max_size < min_size:
            raise ValueError(f"a part must be allowed at least {min_size} bytes")
        self.out, self.header, self.key, self.recipient = Path(out), header, signing_key, recipient
        self.capacity = None if max_size is None else _payload_capacity(max_size)
        self.parts: list[_Part] = []
        self.final: list[Path] = []
        self._open()

    def __enter__(self) -> "BundleWriter":
        return self

    def __exit__(self, kind, _exc, _tb) -> None:
        if kind is not None:
            self.abort()

    def frame(self, kind: bytes, body: bytes) -> None:
        if len(kind) != 1 or len(body) > MAX_FRAME:
            raise ValueError("a frame is one kind byte and at most MAX_FRAME bytes")
        self._write(kind + struct.pack(">I", len(body)))
        self._write(body)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            part = self.parts[-1]
            room = len(view) if self.capacity is None else min(len(view), self.capacity - part.written)
            if room == 0:
                self._seal(part, last=True)
                self._open()
                continue
            pending = part.pending
            pending += view[:room]
            part.written += room
            view = view[room:]
            while len(pending) > CHUNK:   # keep at least one chunk back: the last one is sealed as last
                self._emit(part, bytes(pending[:CHUNK]), last=False)
                del pending[:CHUNK]

    def _emit(self, part: _Part, plain: bytes, last: bool) -> None:
        sealed = part.aead.encrypt(_nonce(part.counter, last), plain, None)
        part.body.update(sealed)
        part.file.write(sealed)
        part.counter += 1

    def _seal(self, part: _Part, last: bool) -> None:
        self._emit(part, bytes(part.pending), last=True)
        part.pending = None

    def _open(self) -> None:
        n = len(self.parts) + 1
        path = self.out.with_name(f"{_stem(self.out)}{_part_suffix(n)}{SUFFIX}{UNFINISHED}")
        f = open(path, "w+b")
        try:
            f.write(MAGIC + b" " * HEADER_BYTES + b"\0" * 32)   # the header is written when the part is finished
            ephemeral = X25519PrivateKey.generate()
            ephemeral_raw = raw(ephemeral.public_key())
            shared = ephemeral.exchange(self.recipient)
            wrap_key = _hkdf(shared, ephemeral_raw + raw(self.recipient), b"spoke-bundle-v1 key wrap")
            file_key, nonce = os.urandom(32), os.urandom(16)
            stanza = ephemeral_raw + ChaCha20Poly1305(wrap_key).encrypt(b"\0" * 12, file_key, None) + nonce
            f.write(stanza)
        except BaseException:
            f.close()
            path.unlink(missing_ok=True)
            raise
        self.parts.append(_Part(path, f, ChaCha20Poly1305(_hkdf(file_key, nonce, b"spoke-bundle-v1 payload")),
                                stanza, hashlib.sha256(), pending=bytearray()))

    def finish(self) -> list[Path]:
        """Seals, signs, fsyncs, renames and verifies every part; returns their final paths."""
        try:
            last = self.parts[-1]
            if last.pending is not None:
                self._seal(last, last=True)
            count = len(self.parts)
            for n, part in enumerate(self.parts, start=1):
                self._sign(part, n, count)
            for n, part in enumerate(self.parts, start=1):
                final = part.path.with_name(part.path.name[:-len(UNFINISHED)])
                os.replace(part.path, final)
                part.path = final
                self.final.append(final)
            fsync_folder(self.out.parent)
            public = self.key.public_key()
            for path in self.final:   # read back from the drive: what was written is what was meant
                verify(path, read_header(path), public)
        except OSError as exc:
            self.abort()
            raise write_error(exc) from None
        except BaseException:
            self.abort()
            raise
        return self.final

    def _sign(self, part: _Part, n: int, count: int) -> None:
        f = part.file
        f.flush()
        size = f.seek(0, os.SEEK_END) + TRAILER_BYTES
        header = dataclasses.replace(self.header, size=size, part=n, parts=count)
        line = json.dumps(header.to_json(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if len(line) >= HEADER_BYTES:
            raise ValueError("the bundle header is too long")
        line = line + b" " * (HEADER_BYTES - 1 - len(line)) + b"\n"
        prefix = MAGIC + line + hashlib.sha256(MAGIC + line).digest() + part.stanza
        f.seek(0)
        f.write(prefix)
        f.seek(0, os.SEEK_END)
        f.write(SIG_MAGIC + self.key.sign(_signed(hashlib.sha256(prefix).digest(), part.body.digest())))
        f.flush()
        os.fsync(f.fileno())
        if hasattr(os, "posix_fadvise"):   # the read-back then comes from the drive, not from memory
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        f.close()

    def abort(self) -> None:
        for part in self.parts:
            try:
                part.file.close()
            except OSError:
                pass
            part.path.unlink(missing_ok=True)
        for path in self.final:
            path.unlink(missing_ok=True)
        self.final = []


def _payload_capacity(max_size: int) -> int:
    """Plaintext bytes that fit in a part of at most max_size bytes on the drive."""
    sealed = max_size - PREFIX_BYTES - TRAILER_BYTES
    chunks, rest = divmod(sealed, CHUNK + TAG)
    return chunks * CHUNK + max(rest - TAG, 0)


def sealed_size(plain: int, max_size: int | None = None) -> int:
    """Bytes on the drive for `plain` payload bytes, in parts of at most max_size (for "this will take...")."""
    capacity = plain if max_size is None else _payload_capacity(max_size)
    total, left = 0, plain
    while True:
        here = min(left, capacity) if capacity else left
        chunks = max(1, -(-here // CHUNK))
        total += PREFIX_BYTES + here + chunks * TAG + TRAILER_BYTES
        left -= here
        if left <= 0:
            return total


def parse_size(text: str) -> int:
    """'700M', '4G', '1.5G', '2GB', '123456' (bytes) -> bytes; ValueError for anything else."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    factor = units.get(t[-1:], 1)
    number = t[:-1] if t[-1:] in units else t
    value = float(number)   # ValueError when it is not a number
    if not 0 < value * factor < 2**50:
        raise ValueError(f"{text!r} is not a size")
    return int(value * factor)


def _stem(out: Path) -> str:
    name = out.name
    return name[:-len(SUFFIX)] if name.endswith(SUFFIX) else name


def _part_suffix(n: int) -> str:
    return "" if n == 1 else f".part{n}"


def part_paths(first: Path, parts: int) -> list[Path]:
    """Where the other parts of a bundle are expected, beside its first part."""
    return [first.with_name(f"{_stem(first)}{_part_suffix(n)}{SUFFIX}") for n in range(1, parts + 1)]


def write_error(exc: OSError) -> BundleError:
    import errno

    if exc.errno == errno.EFBIG:
        return _refused("no_space", "The bundle is too large for the drive (a FAT32 drive takes files of at most "
                                       "4 GB): nothing unfinished is left on it. Split it into parts, e.g. of 2 GB.")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return _refused("no_space", "The drive is full: the bundle was not written (nothing unfinished is "
                                       "left on it). Use a larger drive, or split the bundle into parts.")
    return _refused("write_failed", f"The bundle could not be written ({exc.strerror or exc}); nothing "
                                       "unfinished is left on the drive.")


def fsync_folder(folder: Path) -> None:
    """After a rename into `folder`: its entry reaches the disk too, where the file system allows (a FAT drive may
    refuse to flush a folder: that is no error)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def new_header(**fields: Any) -> Header:
    """A header with a new bundle id and the time now; size and parts are filled in when it is finished."""
    return Header(**{"bundle_id": str(uuid.uuid4()), "created_at": datetime.now(timezone.utc).isoformat(
        timespec="seconds"), "size": 0, "part": 1, "parts": 1, **fields})


def open_bundle(first: Path) -> tuple[list[Path], list[Header]]:
    """Every part of the bundle whose part 1 (or any part) is `first`, with their headers, or a BundleError
    saying which part is missing."""
    header = read_header(first)
    paths = part_paths(first.with_name(_base_name(first, header)), header.parts)
    headers: list[Header] = []
    for n, path in enumerate(paths, start=1):
        if not path.exists():
            raise _refused("part_missing", f"Part {n} of {header.parts} of this bundle is missing ({path.name}): "
                                           "bring every part, then import again.", part=n, parts=header.parts,
                           name=path.name)
        h = header if path == first else read_header(path)
        if h.bundle_id != header.bundle_id or h.part != n or h.parts != header.parts:
            raise _refused("part_missing", f"Part {n} of {header.parts} of this bundle is missing ({path.name} "
                                           "belongs to another bundle).", part=n, parts=header.parts, name=path.name)
        headers.append(h)
    return paths, headers


def _base_name(path: Path, header: Header) -> str:
    name = path.name
    if header.part > 1:
        name = name.replace(_part_suffix(header.part) + SUFFIX, SUFFIX)
    return name
