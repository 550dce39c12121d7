"""Photos, recordings and documents on a case: files named by their SHA-256 in the media folder, written
atomically; the database holds the reference and its description, written with its change-log entry."""

from __future__ import annotations

import atexit
import hashlib
import io
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from spoke_client.db.models import AttachmentRow, CaseRow, ChangeRow, MediaBlobRow
from spoke_client.domain.errors import FieldProblem, NotAllowed, NotFound, ValidationFailed
from spoke_client.domain.model import Attachment, AttachmentKind, AttachmentStatus, CaseStatus, User
from spoke_client.i18n import _
from spoke_client.services.sealed_files import (
    MAGIC_PARTIAL,
    SealedFileError,
    SealedPartial,
    is_sealed,
    media_key,
    read_sealed,
    seal,
    starts_with,
    zero,
)
from spoke_client.services.settings import AUDIO_MAX_SECONDS, CAMERA_SOURCE, PHOTO_LONG_SIDE, SettingsService
from spoke_client.services.store import Store, new_id
from sync.files import PartialDownload, PlainPartial
from sync.files import fsync_dir as _fsync_dir

MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024   # a scanned report or a long recording; far above a clinical photo
LABEL_MAX = 200
log = logging.getLogger(__name__)
FINISHED = (CaseStatus.CLOSED, CaseStatus.CANCELLED)


class MediaFiles:
    """The media folder: <root>/<first two hex digits>/<sha256>. A file is complete or absent, never half.

    With the database key (an encrypted store), each file is sealed (services/sealed_files.py: 64 KiB
    ChaCha20-Poly1305 chunks under a key derived from the database key, its name bound in), and keeps its name, the
    SHA-256 of the plain content, so sync and deduplication are unchanged. A file in clear from before the encryption
    still reads, until `seal_clear_files` seals it."""

    def __init__(self, root: Path, database_key: bytes | None = None) -> None:
        self.root = root
        self.key = media_key(database_key) if database_key is not None else None

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put_bytes(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path(sha256)
        if target.is_file() and (is_sealed(target) if self.key is not None else target.stat().st_size == len(data)):
            return sha256   # the same content is already here
        self._write(target, sha256, [data])
        return sha256

    def read(self, sha256: str) -> bytes | None:
        """The plain content, or None when the file is not here. A sealed file that does not open (damaged, or
        not this PC's) raises SealedFileError, an OSError."""
        path = self.path(sha256)
        if not path.is_file():
            return None
        if is_sealed(path):
            if self.key is None:
                raise SealedFileError("this file is sealed and the data is not open")
            return read_sealed(self.key, sha256, path)
        return path.read_bytes()

    def opener(self, sha256: str):
        """For sync and bundles: a callable giving a readable file of the plain content (at most an attachment's
        20 MB, held in memory while it is sent)."""
        def open_plain() -> io.BytesIO:
            data = self.read(sha256)
            if data is None:
                raise FileNotFoundError(sha256)
            return io.BytesIO(data)
        return open_plain if self.key is not None else None

    def adopt(self, sha256: str, downloaded: PartialDownload | Path) -> None:
        """Moves a downloaded (already verified) file into place: a plain download is renamed; a sealed one
        (an encrypted store keeps its downloads sealed as they arrive, `partial`) is sealed again as a media
        file, without ever being in clear on the disk."""
        target = self.path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = PlainPartial(downloaded) if isinstance(downloaded, Path) else downloaded
        if self.key is None and isinstance(partial, PlainPartial):
            os.replace(partial.path, target)
        elif self.key is None:
            self._write(target, sha256, partial.blocks())
            partial.discard()
        else:
            seal(self.key, sha256, partial.blocks(), target)
            partial.discard()
        _fsync_dir(target.parent)

    def partial(self, sha256: str) -> PartialDownload:
        """Where a download of this file waits until it is whole and checked: sealed as it arrives when the store
        is encrypted, else a plain file."""
        path = self.partial_path(sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        return SealedPartial(self.key, sha256, path) if self.key is not None else PlainPartial(path)

    def viewable(self, sha256: str, suffix: str = "") -> Path:
        """A path the system's viewer can open: the file itself, or for a sealed one a clear copy in a private
        temporary folder (this account only) that is removed when Spoke exits."""
        path = self.path(sha256)
        if self.key is None or not is_sealed(path):
            return path
        data = self.read(sha256) or b""
        folder = _view_folder()
        target = folder / f"{sha256[:16]}{suffix}"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return target

    def seal_clear_files(self) -> int:
        """Seals every file still in clear (from before the encryption); returns how many. Each is replaced whole:
        a second name keeps the clear file's content until the sealed one is in place, then that content is
        overwritten with zeros and the name removed, so a kill leaves the clear file or the sealed one."""
        if self.key is None or not self.root.is_dir():
            return 0
        done = 0
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and len(p.name) == 2):
            for path in sorted(folder.iterdir()):
                if path.name.endswith(".clear"):
                    if is_sealed(self.path(path.name.removesuffix(".clear"))):
                        _zero_and_remove(path)      # left by a kill after its sealed file was in place
                    else:
                        path.unlink()               # a second name of the clear file itself: only the name goes
                    continue
                if len(path.name) != 64 or not path.is_file() or is_sealed(path):
                    continue
                data = path.read_bytes()
                if hashlib.sha256(data).hexdigest() != path.name:
                    log.warning("a media file does not match its name; left as it is for the sync to report")
                    continue
                keep = path.with_name(path.name + ".clear")
                keep.unlink(missing_ok=True)
                os.link(path, keep)
                seal(self.key, path.name, [data], path)
                _zero_and_remove(keep)
                done += 1
            _fsync_dir(folder)
        return done

    def forget_clear_downloads(self) -> int:
        """Removes (zeroed first) downloads kept in clear in incoming/, from before the data was encrypted or
        before downloads were sealed as they arrive; they are fetched again, sealed. Returns how many."""
        incoming = self.root / "incoming"
        if self.key is None or not incoming.is_dir():
            return 0
        gone = 0
        for path in incoming.iterdir():
            if path.is_file() and not starts_with(path, MAGIC_PARTIAL):
                _zero_and_remove(path)
                gone += 1
        return gone

    def partial_path(self, sha256: str) -> Path:
        return self.root / "incoming" / f"{sha256}.part"

    def remove(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def _write(self, target: Path, sha256: str, blocks) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        if self.key is not None:
            seal(self.key, sha256, blocks, target)     # a temporary name, fsynced, renamed
            _fsync_dir(target.parent)
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:12]}.", suffix=".part", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                for block in blocks:
                    f.write(block)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
            _fsync_dir(target.parent)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


_VIEW_FOLDER: Path | None = None
VIEW_PREFIX = "spoke-view-"


def _view_folder() -> Path:
    global _VIEW_FOLDER
    if _VIEW_FOLDER is None or not _VIEW_FOLDER.is_dir():
        # mode 0700; the process id in the name tells a later start whether its Spoke is still running
        _VIEW_FOLDER = Path(tempfile.mkdtemp(prefix=f"{VIEW_PREFIX}{os.getpid()}-"))
        atexit.register(shutil.rmtree, _VIEW_FOLDER, True)
    return _VIEW_FOLDER


def sweep_view_copies(temp: Path | None = None) -> int:
    """Removes the clear copies made for the system's viewer by a Spoke that did not exit cleanly (killed, a power
    cut): its folder outlived it. A folder of a Spoke still running is left; on Windows, where a process cannot be
    asked whether it is alive without a handle, a folder older than a day is taken as left. Returns how many."""
    temp = temp or Path(tempfile.gettempdir())
    gone = 0
    for folder in temp.glob(f"{VIEW_PREFIX}*"):
        try:
            if not folder.is_dir() or (hasattr(os, "getuid") and folder.stat().st_uid != os.getuid()):
                continue
            pid = int(folder.name.removeprefix(VIEW_PREFIX).split("-", 1)[0])
        except (OSError, ValueError):
            continue
        if pid == os.getpid() or _running(pid, folder):
            continue
        for copy in folder.iterdir():
            _zero_and_remove(copy)
        shutil.rmtree(folder, ignore_errors=True)
        gone += 1
    return gone


def _running(pid: int, folder: Path) -> bool:
    if os.name != "posix":
        import time

        return time.time() - folder.stat().st_mtime < 86400
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True        # another account's process has that number
    return True


def _zero_and_remove(path: Path) -> None:
    zero(path)
    path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Sniffed:
    mime: str
    width_px: int | None = None
    height_px: int | None = None


def sniff_document(data: bytes) -> Sniffed:
    """What a chosen file really is, by its content (not its name): JPEG, PNG or PDF, and whole."""
    if data[:3] == b"\xff\xd8\xff" or data[:8] == b"\x89PNG\r\n\x1a\n":
        import cv2
        import numpy as np

        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ValidationFailed([FieldProblem("file", _("This picture is damaged and cannot be opened."))])
        mime = "image/jpeg" if data[:3] == b"\xff\xd8\xff" else "image/png"
        return Sniffed(mime, int(image.shape[1]), int(image.shape[0]))
    if data[:5] == b"%PDF-":
        if b"%%EOF" not in data[-2048:]:
            raise ValidationFailed([FieldProblem("file", _("This PDF is incomplete (cut short while copying?)."))])
        return Sniffed("application/pdf")
    raise ValidationFailed([FieldProblem("file", _("Only pictures (JPEG, PNG) and PDF documents can be attached."))])


def _attachment(r: AttachmentRow) -> Attachment:
    return Attachment(id=r.id, case_id=r.case_id, kind=AttachmentKind(r.kind), sha256=r.sha256, mime=r.mime,
                      size_bytes=r.size_bytes, label=r.label, width_px=r.width_px, height_px=r.height_px,
                      duration_ms=r.duration_ms, status=AttachmentStatus(r.status), withdrawn_reason=r.withdrawn_reason,
                      created_at=r.created_at, created_by=r.created_by, version=r.version)


class AttachmentService:
    def __init__(self, store: Store, files: MediaFiles) -> None:
        self.store, self.files = store, files
        self.settings = SettingsService(store)

    # --- the settings capture follows -------------------------------------------------------------
    def photo_long_side(self) -> int:
        return self.settings.get(PHOTO_LONG_SIDE)

    def max_recording_seconds(self) -> int:
        return self.settings.get(AUDIO_MAX_SECONDS)

    def remembered_camera(self) -> str:
        return self.settings.get(CAMERA_SOURCE)

    def remember_camera(self, actor: User, source: str) -> None:
        if source and source != self.remembered_camera():
            self.settings.set(actor, CAMERA_SOURCE, source)

    def list(self, case_id: str, *, include_withdrawn: bool = False) -> list[Attachment]:
        with self.store.read() as s:
            q = select(AttachmentRow).where(AttachmentRow.case_id == case_id)
            if not include_withdrawn:
                q = q.where(AttachmentRow.status == AttachmentStatus.ACTIVE.value)
            return [_attachment(r) for r in s.scalars(q.order_by(AttachmentRow.created_at, AttachmentRow.id))]

    def read_bytes(self, attachment: Attachment) -> bytes | None:
        """The file, or None while it is still to be fetched from the hub (made on another PC)."""
        return self.files.read(attachment.sha256)

    def attach(self, actor: User, case_id: str, kind: AttachmentKind, data: bytes, mime: str, label: str = "", *,
               width_px: int | None = None, height_px: int | None = None, duration_ms: int | None = None) -> Attachment:
        label = " ".join(label.split())
        problems = []
        if not data:
            problems.append(FieldProblem("file", _("The file is empty.")))
        elif len(data) > MAX_ATTACHMENT_BYTES:
            problems.append(FieldProblem("file", _("The file is larger than {mb} MB.").format(mb=MAX_ATTACHMENT_BYTES >> 20)))
        if len(label) > LABEL_MAX:
            problems.append(FieldProblem("label", _("The label is longer than {n} characters.").format(n=LABEL_MAX)))
        if problems:
            raise ValidationFailed(problems)
        with self.store.read() as s:
            self._open_case(s, case_id)
        # The file first (atomic, idempotent by content); then its reference and change-log entry in one
        # transaction. A failed transaction leaves at most an unreferenced file, never a reference to nothing.
        sha256 = self.files.put_bytes(data)
        with self.store.write(actor.id) as w:
            self._open_case(w.session, case_id)
            if w.session.get(MediaBlobRow, sha256) is None:
                w.session.add(MediaBlobRow(sha256=sha256, size_bytes=len(data), mime=mime, present=True,
                                           uploaded_at=None, last_error="", created_at=w.now))
            row = AttachmentRow(id=new_id(), case_id=case_id, kind=kind.value, sha256=sha256, mime=mime,
                                size_bytes=len(data), label=label, width_px=width_px, height_px=height_px,
                                duration_ms=duration_ms, status=AttachmentStatus.ACTIVE.value, withdrawn_reason="",
                                created_at=w.now, created_by=actor.id, version=1)
            w.session.add(row)
            attachment = _attachment(row)
            w.change("attachment", row.id, 1, attachment)
            w.audit("attach", "attachment", row.id, f"{case_id} {kind.value} {len(data)} B")
            return attachment

    def attach_document(self, actor: User, case_id: str, path: Path, label: str = "") -> Attachment:
        try:
            size = path.stat().st_size
            if size > MAX_ATTACHMENT_BYTES:
                raise ValidationFailed([FieldProblem("file", _("The file is larger than {mb} MB.").format(
                    mb=MAX_ATTACHMENT_BYTES >> 20))])
            data = path.read_bytes()
        except OSError as exc:
            raise ValidationFailed([FieldProblem("file", _("The file could not be read: {e}").format(e=exc.strerror))]) from exc
        if not data:
            raise ValidationFailed([FieldProblem("file", _("The file is empty."))])
        sniffed = sniff_document(data)
        return self.attach(actor, case_id, AttachmentKind.DOCUMENT, data, sniffed.mime, label or path.stem,
                           width_px=sniffed.width_px, height_px=sniffed.height_px)

    def relabel(self, actor: User, attachment_id: str, label: str) -> Attachment:
        label = " ".join(label.split())
        if len(label) > LABEL_MAX:
            raise ValidationFailed([FieldProblem("label", _("The label is longer than {n} characters.").format(n=LABEL_MAX))])
        with self.store.write(actor.id) as w:
            row = self._row(w.session, attachment_id)
            self._open_case(w.session, row.case_id)
            row.label, row.version = label, row.version + 1
            attachment = _attachment(row)
            w.change("attachment", row.id, row.version, attachment)
            w.audit("update", "attachment", row.id, "label")
            return attachment

    def remove(self, actor: User, attachment_id: str, reason: str = "") -> bool:
        """Deletes an attachment of a draft case that never left this PC; otherwise marks it withdrawn and keeps
        it, like vitals entered in error. Returns True when it was deleted."""
        with self.store.write(actor.id) as w:
            row = self._row(w.session, attachment_id)
            case = self._open_case(w.session, row.case_id)
            sent = w.session.scalar(select(func.count()).select_from(ChangeRow).where(
                ChangeRow.entity == "attachment", ChangeRow.entity_id == row.id, ChangeRow.pushed_at.is_not(None)))
            if case.status == CaseStatus.DRAFT.value and not sent:
                sha256 = row.sha256
                w.session.delete(row)
                w.session.flush()
                w.change("attachment", attachment_id, row.version + 1, None, op="delete")
                w.audit("delete", "attachment", attachment_id, row.case_id)
                if not w.session.scalar(select(func.count()).select_from(AttachmentRow).where(AttachmentRow.sha256 == sha256)):
                    blob = w.session.get(MediaBlobRow, sha256)
                    if blob is not None and blob.uploaded_at is None:
                        w.session.delete(blob)
                        w.after_commit(lambda: self.files.remove(sha256))
                return True
            if not reason.strip():
                raise ValidationFailed([FieldProblem("reason", _(
                    "This attachment has left this computer; say why it is withdrawn (it will be kept)."))])
            row.status, row.withdrawn_reason, row.version = AttachmentStatus.WITHDRAWN.value, reason.strip(), row.version + 1
            w.change("attachment", row.id, row.version, _attachment(row))
            w.audit("withdraw", "attachment", row.id, reason.strip())
            return False

    @staticmethod
    def _row(s, attachment_id: str) -> AttachmentRow:
        row = s.get(AttachmentRow, attachment_id)
        if row is None:
            raise NotFound(_("This attachment does not exist on this computer."))
        return row

    @staticmethod
    def _open_case(s, case_id: str) -> CaseRow:
        case = s.get(CaseRow, case_id)
        if case is None:
            raise NotFound(_("This case does not exist on this computer."))
        if CaseStatus(case.status) in FINISHED:
            raise NotAllowed(_("This case is closed; nothing can be attached to it any more."))
        return case
