"""USB bundles at the spoke: this PC's bundle key, and its unsent work written to a drive as a sealed bundle.

What goes in: every change and every file the hub has not acknowledged (they stay queued: only the hub's
acknowledgement, by network or by a return bundle, marks them sent), this PC's pull cursor (so the hub's return
bundle carries what comes after it), and counts. Sealed for the hub's X25519 key, learnt once online.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_pem_private_key

from spoke_client.domain.errors import SpokeError
from spoke_client.i18n import _
from spoke_client.paths import DataPaths
from spoke_client.services.files import atomic_write_bytes
from spoke_client.services.hub_link import HUB_BOX_KEY, HUB_BOX_KEY_ID, HUB_FACILITY, HUB_FACILITY_NAME, HUB_URL
from spoke_client.services.media import MediaFiles
from spoke_client.services.store import Store
from spoke_client.services.sync_inbox import Inbox
from spoke_client.services.sync_media import MediaBox
from spoke_client.services.sync_outbox import Outbox
from sync import bundle
from sync.bundle import BundleError, BundleWriter
from sync.engine import MediaItem
from sync.files import sha256_blocks, sha256_file
from sync.protocol import PushBatch, encode

log = logging.getLogger(__name__)

BUNDLE_SEQUENCE = "bundle_sequence"                            # the last bundle number this PC wrote
BATCH = 1000
PIECE = 1024 * 1024          # a file travels in pieces of this size
WHOLE_FILE = 8 * 1024 * 1024   # files up to this size are read once, into memory
CHANGE_BYTES_GUESS = 400     # compressed bytes of an average change, for the size shown before writing

__all__ = ["BundleError", "CarryReport", "ExportReport", "ImportReport", "NoBundleKey", "ReturnOnDrive", "SendReport",
           "box_key_path", "carry", "ensure_box_key", "estimate", "export", "import_return", "returns_for_this_pc",
           "send", "waiting_parts"]


class NoBundleKey(SpokeError):
    """This PC has not learnt the hub's bundle key yet (it must sync once over a network)."""


@dataclass(frozen=True)
class ExportReport:
    paths: tuple[Path, ...]
    size: int
    changes: int
    files: int
    skipped_files: int        # damaged or missing on this PC: not in the bundle, told to the user


@dataclass(frozen=True)
class Estimate:
    changes: int
    files: int
    bytes: int                # about this much on the drive
    cases: int = 0            # the cases those changes are about


def box_key_path(paths: DataPaths) -> Path:
    return paths.root / "box-key.pem"


def _box_key(paths: DataPaths, create: bool) -> X25519PrivateKey | None:
    path = box_key_path(paths)
    if path.exists():
        return load_pem_private_key(path.read_bytes(), password=None)
    if not create:
        return None
    key = X25519PrivateKey.generate()
    atomic_write_bytes(path, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    os.chmod(path, 0o600)
    return key


BOX_KEY_CHECKED = "hub_box_key_checked"   # when the hub's current bundle key was last asked for
BOX_KEY_CHECK_EVERY = timedelta(days=1)


def ensure_box_key(store: Store, paths: DataPaths, client) -> bool:
    """Registers this PC's bundle key with the hub and learns the hub's current one: at enrolment (or the first
    sync of a PC enrolled before bundles), then once a day, so a key the hub rotated is learnt at the next sync;
    a hub of an older version that has no bundles is passed over. True when both keys are known."""
    known = store.get_setting(HUB_BOX_KEY)
    checked = store.get_setting(BOX_KEY_CHECKED)
    if known and checked and store.clock() - datetime.fromisoformat(checked) < BOX_KEY_CHECK_EVERY:
        return True
    from sync.transport.http import HubGarbage, HubRefused, HubUnreachable

    key = _box_key(paths, create=True)
    public = base64.b64encode(bundle.raw(key.public_key())).decode()
    try:
        result = client.register_box_key(public)
        hub_key = X25519PublicKey.from_public_bytes(base64.b64decode(result.hub_box_key, validate=True))
    except (HubRefused, HubGarbage, HubUnreachable, ValueError) as exc:
        log.warning("the hub's bundle key could not be learnt (%s); USB bundles wait for it", type(exc).__name__)
        return bool(known)
    if bundle.key_id(hub_key) != result.hub_key_id:
        log.warning("the hub's bundle key does not match its id; not kept")
        return bool(known)
    changed = not known or result.hub_box_key != known or result.hub_key_id != store.get_setting(HUB_BOX_KEY_ID)
    with store.write(None) as w:
        if changed:
            w.set_setting(HUB_BOX_KEY, result.hub_box_key)
            w.set_setting(HUB_BOX_KEY_ID, result.hub_key_id)
            w.audit("bundle_key", "hub", result.hub_key_id, "rotated" if known else "")
        w.set_setting(BOX_KEY_CHECKED, w.now.isoformat())
    if changed:
        log.info("bundle keys exchanged with the hub (%s%s)", result.hub_key_id, ", a rotated key" if known else "")
    return True


def estimate(store: Store, paths: DataPaths) -> Estimate:
    """What a bundle written now would hold, and about how many bytes it takes on the drive."""
    outbox = Outbox(store)
    items = MediaBox(store, MediaFiles(paths.media, store.key)).media_to_upload()
    changes = outbox.pending()
    plain = sum(i.size for i in items) + changes * CHANGE_BYTES_GUESS + 4096
    return Estimate(changes, len(items), bundle.sealed_size(plain), outbox.pending_cases())


def export(store: Store, paths: DataPaths, out: Path, max_size: int | None = None,
           progress: Callable[[int, int], None] | None = None) -> ExportReport:
    """Writes every unacknowledged change and file to `out` (and out.part2... when split at max_size bytes a
    part); each part is read back and verified before this returns."""
    from spoke_client.services.sync_local import key_path

    hub_box = store.get_setting(HUB_BOX_KEY)
    facility_id = store.get_setting(HUB_FACILITY)
    if not store.get_setting(HUB_URL) or not key_path(paths).exists():
        raise NoBundleKey(_("This computer is not enrolled with a hub yet: enrol it first (USB bundles go to the "
                            "hub it is enrolled with)."))
    if not hub_box:
        raise NoBundleKey(_("This computer has not yet learnt the hub's key for USB bundles: sync once over a "
                            "network (any day), then bundles can be made."))
    out = Path(out)
    if out.is_dir():
        out = out / default_name(store)
    elif not out.name.endswith(bundle.SUFFIX):
        out = out.with_name(out.name + bundle.SUFFIX)
    signing = load_pem_private_key(key_path(paths).read_bytes(), password=None)
    recipient = X25519PublicKey.from_public_bytes(base64.b64decode(hub_box))
    hub_id = store.get_setting(HUB_BOX_KEY_ID) or bundle.key_id(recipient)
    sequence = next_sequence(store)
    outbox, inbox = Outbox(store), Inbox(store)
    items = MediaBox(store, MediaFiles(paths.media, store.key)).media_to_upload()
    planned = estimate(store, paths)
    _check_room(out.parent, planned.bytes, max_size)
    header = bundle.new_header(kind="spoke", sender=store.device_id, facility_id=facility_id or "",
                               facility_name=store.get_setting(HUB_FACILITY_NAME, "") or "", hub=hub_id,
                               recipient=hub_id, sequence=sequence, changes=0, files=0)
    total = sum(i.size for i in items) + planned.changes
    done = 0
    try:
        with BundleWriter(out, header, signing, recipient, max_size) as writer:
            writer.frame(b"M", _dumps({"bundle_id": header.bundle_id, "sender": header.sender,
                                       "facility_id": header.facility_id, "cursor": inbox.cursor()}))
            files = skipped = 0
            for item in items:
                whole = _read_small(item)   # a photo is read once: checked, then written from memory
                if (whole is None and (item.opener is not None or _sha256(item.path) != item.sha256)) or \
                        (whole is not None and hashlib.sha256(whole).hexdigest() != item.sha256):
                    skipped += 1   # damaged or missing here: told, and sync says which file
                    continue
                writer.frame(b"F", _dumps({"sha256": item.sha256, "size": item.size}))
                for piece in _pieces(item, whole):
                    writer.frame(b"D", piece)
                    done += len(piece)
                    if progress:
                        progress(done, total)
                files += 1
            changes, after = 0, None
            while True:
                batch, after = outbox.unsent_page(BATCH, after)
                if not batch:
                    break
                writer.frame(b"C", encode(PushBatch(batch_id=uuid.uuid4(), changes=batch)))
                changes += len(batch)
                done += len(batch)
                if progress:
                    progress(done, total)
            writer.frame(b"E", _dumps({"changes": changes, "files": files}))
            writer.header = dataclasses.replace(header, changes=changes, files=files)
            written = writer.finish()
    except OSError as exc:
        raise bundle.write_error(exc) from None
    size = sum(p.stat().st_size for p in written)
    with store.write(None) as w:
        w.audit("bundle_export", "bundle", header.bundle_id, f"{changes} changes, {files} files, {len(written)} parts")
    log.info("bundle %s written: %d changes, %d files, %d parts, %d bytes", header.bundle_id, changes, files,
             len(written), size)
    return ExportReport(tuple(written), size, changes, files, skipped)


@dataclass(frozen=True)
class ImportReport:
    bundle_id: str
    acknowledged: int         # of this PC's changes, now no longer offered
    received: int             # changes from the hub and the facility's other PCs
    prescriptions: int
    files: int
    already: datetime | None = None
    behind: bool = False      # it started beyond this PC's cursor: what lies between is still to come

    def sentence(self) -> str:
        if self.already is not None:
            return _("Already imported on {when}: nothing was changed.").format(when=self.already.strftime("%d %b %Y %H:%M"))
        done = _("Imported: {r} changes from the hub ({p} prescriptions), {f} files; {a} of this computer's changes "
                 "are confirmed by the hub.").format(r=self.received, p=self.prescriptions, f=self.files,
                                                    a=self.acknowledged)
        if self.behind:
            done += " " + _("Some earlier changes from the hub have not reached this computer yet: they come with the "
                            "next sync over a network, or in the next return bundle.")
        return done


LAST_RETURN = "bundle_last_return"   # JSON: the last return bundle imported (id, sequence, when)


def next_sequence(store: Store) -> int:
    """This PC's next bundle number, used once even if the export fails: above the last one it wrote, and at
    least the time now in milliseconds, so that a PC put back from an older copy of its database (which forgot
    its last numbers) still writes numbers above those the hub has seen; a return bundle raises it too."""
    import time

    sequence = max(int(store.get_setting(BUNDLE_SEQUENCE) or "0") + 1, int(time.time() * 1000))
    store.set_setting(BUNDLE_SEQUENCE, str(sequence))
    return sequence


def _raise_sequence(w, seen) -> None:
    """The hub's word on the newest bundle number it imported from this PC: the next one goes above it."""
    if isinstance(seen, int) and not isinstance(seen, bool) and 0 < seen < 2**62:
        mine = int(w.get_setting(BUNDLE_SEQUENCE) or "0")
        if seen > mine:
            w.set_setting(BUNDLE_SEQUENCE, str(seen))


def import_return(store: Store, paths: DataPaths, first: Path,
                  progress: Callable[[int, int], None] | None = None) -> ImportReport:
    """Checks every part of a return bundle (the hub's signature, that it is for this PC, that it is not older
    than the last one), decrypts it all once to check it, then applies it: acknowledgements, the hub's changes
    (each page with its cursor, as a network pull), then files. `progress(done, total)` is told along the three
    passes (in bytes of the bundle, each pass counted once)."""
    from spoke_client.services.hub_link import HUB_PUBLIC_KEY

    bundle_paths, headers = bundle.open_bundle(Path(first))
    header = headers[0]
    if header.kind != "hub":
        raise BundleError("other_spoke", _("This bundle holds a spoke PC's work for the hub: take it to the hub (or "
                                           "relay it from a PC with a network), it is not imported here."))
    key = _box_key(paths, create=False)
    mine = bundle.key_id(key.public_key()) if key else None
    if any(h.recipient != mine for h in headers) or header.facility_id != store.get_setting(HUB_FACILITY):
        raise BundleError("other_spoke", _("This return bundle was made for another PC; it cannot be imported "
                                           "here. Ask the hub for this PC's own."))
    hub_key = store.get_setting(HUB_PUBLIC_KEY)
    if not hub_key:
        raise BundleError("no_key", _("This computer does not know its hub's key yet (sync once over a network)."))
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(hub_key))
    size = sum(h.size for h in headers)
    total, done = 3 * size, 0
    # A header naming another bundle key of the hub than the one this PC knows: the hub rotated its key, or this
    # is another hub. Only the signature of this PC's hub tells them apart.
    rotated = any(h.hub != store.get_setting(HUB_BOX_KEY_ID) for h in headers)
    for path, h in zip(bundle_paths, headers):
        try:
            bundle.verify(path, h, public)
        except BundleError:
            if rotated:
                raise BundleError("other_hub", _("This return bundle comes from another hub than this PC's.")) from None
            raise
        done += h.size
        if progress:
            progress(done, total)
    if rotated:   # the hub's own: its new bundle key is learnt at the next network sync (nothing is sealed for it here)
        with store.write(None) as w:
            w.set_setting(BOX_KEY_CHECKED, "")
    last = json.loads(store.get_setting(LAST_RETURN) or "{}")
    if last.get("bundle_id") == header.bundle_id:
        return ImportReport(header.bundle_id, 0, 0, 0, 0, already=datetime.fromisoformat(last["at"]))
    if header.sequence <= int(last.get("sequence", 0)):
        raise BundleError("replayed", _("This return bundle is older than one already imported here (on {when}); "
                                        "it was not imported.").format(when=last.get("at", "")[:10]))
    _check_frames(_counted(bundle.frames(bundle_paths, headers, key), progress, size, total), header,
                  store.device_id)
    report = _apply_return(store, paths, _counted(bundle.frames(bundle_paths, headers, key), progress, 2 * size,
                                                  total), header)
    with store.write(None) as w:
        w.set_setting(LAST_RETURN, json.dumps({"bundle_id": header.bundle_id, "sequence": header.sequence,
                                               "at": w.now.isoformat()}))
        w.audit("bundle_import", "bundle", header.bundle_id, f"{report.received} changes, {report.files} files, "
                                                             f"{report.acknowledged} acknowledged")
    log.info("return bundle %s imported: %d changes, %d files, %d acknowledged", header.bundle_id, report.received,
             report.files, report.acknowledged)
    if progress:
        progress(total, total)
    return report


def _counted(stream, progress: Callable[[int, int], None] | None, base: int, total: int):
    """The frames of `stream`, telling `progress` how far it has come (the sealing's overhead aside, a part's
    plaintext is about its size)."""
    done = base
    for kind, body in stream:
        done += 5 + len(body)
        if progress:
            progress(min(done, total), total)
        yield kind, body


@dataclass(frozen=True)
class ReturnOnDrive:
    """A return bundle found on a drive, as this PC sees it (from its readable header alone)."""

    path: Path
    header: bundle.Header
    for_this_pc: bool         # sealed for this PC's key, for its facility
    imported: bool            # this one, or a newer one, was imported here already

    @property
    def waiting(self) -> bool:
        return self.for_this_pc and not self.imported


def returns_for_this_pc(store: Store, paths: DataPaths, found) -> list[ReturnOnDrive]:
    """Return bundles found on drives (anything with .path and .header, as drives.bundles_on gives), each told
    whether it is this PC's and whether it was imported already. Reads only settings and this PC's key."""
    key = _box_key(paths, create=False)
    mine = bundle.key_id(key.public_key()) if key else None
    facility = store.get_setting(HUB_FACILITY)
    last = json.loads(store.get_setting(LAST_RETURN) or "{}")
    out = []
    for f in found:
        h = f.header
        ours = h.kind == "hub" and mine is not None and h.recipient == mine and h.facility_id == facility
        done = h.bundle_id == last.get("bundle_id") or h.sequence <= int(last.get("sequence", 0))
        out.append(ReturnOnDrive(Path(f.path), h, ours, ours and done))
    return out


_RETURN_ORDER = {b"M": 0, b"A": 1, b"K": 2, b"P": 3, b"F": 4, b"D": 4, b"E": 5}


def _check_frames(stream, header, device_id: str) -> None:
    """One pass over the decrypted bundle before anything is applied: every chunk's seal holds, every record
    reads, in the order the hub writes them, and the counts match."""
    from sync.protocol import PullPage, ProtocolError, decode

    at, changes, files, pending_file = -1, 0, 0, 0
    for kind, body in stream:
        order = _RETURN_ORDER.get(kind)
        if order is None or order < at or (at == 5):
            raise BundleError("damaged", _("This bundle holds something Spoke does not write; nothing was imported."))
        at = order
        try:
            if kind == b"M":
                m = json.loads(body)
                if not isinstance(m, dict) or m.get("bundle_id") != header.bundle_id or m.get("device") != device_id:
                    raise ValueError
            elif kind in (b"A", b"K"):
                if not all(isinstance(x, str) for x in json.loads(gzip.decompress(body))):
                    raise ValueError
            elif kind == b"P":
                changes += len(decode(PullPage, body).changes)
            elif kind == b"F":
                if pending_file:
                    raise ValueError
                f = json.loads(body)
                size = f["size"]
                if not (isinstance(f["sha256"], str) and len(f["sha256"]) == 64 and isinstance(size, int) and size >= 0):
                    raise ValueError
                pending_file, files = size, files + 1
            elif kind == b"D":
                if len(body) > pending_file:
                    raise ValueError
                pending_file -= len(body)
            else:
                e = json.loads(body)
                if pending_file or e.get("changes") != changes or e.get("files") != files \
                        or changes != header.changes or files != header.files:
                    raise ValueError
        except (ValueError, KeyError, TypeError, AttributeError, OSError, EOFError, ProtocolError):
            raise BundleError("damaged", _("This return bundle's content does not read as the hub writes it; "
                                           "nothing was imported.")) from None
    if at != 5:
        raise BundleError("damaged", _("This return bundle ends early; nothing was imported."))


def _apply_return(store: Store, paths: DataPaths, stream, header) -> ImportReport:
    from sqlalchemy import update

    from spoke_client.db.models import MediaBlobRow
    from sync.protocol import PullPage, decode

    files_box = MediaFiles(paths.media, store.key)
    outbox, inbox, media = Outbox(store), Inbox(store, files_box), MediaBox(store, files_box)
    acknowledged = received = prescriptions = files = 0
    behind = False
    current = None   # [sha256, bytes still to come, the writer's context, its write, the kept download]
    try:
        for kind, body in stream:
            if kind == b"M":
                manifest = json.loads(body)
                with store.write(None) as w:
                    _raise_sequence(w, manifest.get("bundle_sequence"))
                after = manifest.get("after")
                # Made from a cursor beyond this PC's (it was put back from an older copy, or the hub was told a
                # cursor this PC did not keep): its pages are applied, but the cursor stays, so what lies between
                # still comes, by network or in the next return bundle (made from the cursor the next bundle
                # of this PC tells).
                behind = isinstance(after, int) and not isinstance(after, bool) and after > inbox.cursor()
                if behind:
                    log.warning("return bundle %s starts after %d, beyond this PC's cursor %d: the cursor stays",
                                header.bundle_id, after, inbox.cursor())
            elif kind == b"A":
                ids = json.loads(gzip.decompress(body))
                acknowledged += outbox.acknowledge(ids)
            elif kind == b"K":
                hashes = json.loads(gzip.decompress(body))
                with store.write(None) as w:
                    for at in range(0, len(hashes), 500):
                        w.session.execute(update(MediaBlobRow).where(MediaBlobRow.sha256.in_(hashes[at:at + 500]),
                                                                     MediaBlobRow.uploaded_at.is_(None))
                                          .values(uploaded_at=w.now))
            elif kind == b"P":
                page = decode(PullPage, body)
                received += inbox.apply(page, advance=not behind)
                prescriptions += sum(1 for c in page.changes if c.entity == "prescription")
            elif kind == b"F":
                f = json.loads(body)
                partial = files_box.partial(f["sha256"])    # sealed as it arrives on an encrypted store
                writing = partial.writer(0)
                current = [f["sha256"], f["size"], writing, writing.__enter__(), partial]
                if f["size"] == 0:
                    current = _file_done(media, current)
                    files += 1
            elif kind == b"D":
                current[3](body)
                current[1] -= len(body)
                if current[1] == 0:
                    current = _file_done(media, current)
                    files += 1
    finally:
        if current is not None:
            current[2].__exit__(None, None, None)     # a file cut short stays kept aside, sealed, until replaced
    return ImportReport(header.bundle_id, acknowledged, received, prescriptions, files, behind=behind)


def _file_done(media: MediaBox, current) -> None:
    sha256, size, writing, _write, partial = current
    writing.__exit__(None, None, None)
    try:
        whole = sha256_blocks(partial.blocks())
    except OSError:
        whole = None
    if whole != sha256:
        partial.discard()
        log.warning("a file of a return bundle did not match its hash; it is fetched by network instead")
        return None
    media.media_fetched(MediaItem(sha256, partial.size(), partial.path, partial=partial))
    return None


# --- onto a drive too small for the whole bundle: parts that wait on this PC ---------------------------------
HEADROOM = 2**20      # left free on a drive (a filesystem's own needs, the estimate's error)


@dataclass(frozen=True)
class CarryReport:
    copied: tuple[Path, ...]      # on the drive now, read back and checked
    left: tuple[Path, ...]        # still waiting on this PC, for another day


@dataclass(frozen=True)
class SendReport:
    """A bundle written: the parts on the drive now, and those waiting on this PC to be carried another day."""

    bundle: ExportReport
    on_drive: tuple[Path, ...]
    waiting: tuple[Path, ...]


def outgoing_dir(paths: DataPaths) -> Path:
    """Where the parts of a bundle that did not fit on the drive wait, sealed as on a drive."""
    return paths.root / "outgoing-bundles"


def room_on(folder: Path) -> int:
    """Bytes a bundle may take in `folder` (its free space, less a little headroom); 0 when it cannot be read."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return 0
    return max(0, free - min(HEADROOM, free // 20))


def waiting_parts(paths: DataPaths) -> list[Path]:
    """The parts on this PC not yet carried to a drive, in their order."""
    folder = outgoing_dir(paths)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob(f"*{bundle.SUFFIX}"):
        try:
            found.append((bundle.read_header(path).part, path.name, path))
        except BundleError:
            path.unlink(missing_ok=True)   # cut short by a crash: the bundle is written again next time
    return [p for _n, _name, p in sorted(found)]


def send(store: Store, paths: DataPaths, drive: Path, max_size: int | None = None,
         progress: Callable[[str, int, int], None] | None = None) -> SendReport:
    """Writes this PC's unsent work for the hub onto the drive. Split into parts of at most max_size bytes: when
    they all fit, all go on the drive; when not, the bundle is written here (outgoing_dir), then as many parts as
    fit are copied onto the drive, each read back and checked, and the rest wait here for another day (`carry`).
    `progress(stage, done, total)`, stage "write" then "copy"."""
    drive = Path(drive)

    def writing(done: int, total: int) -> None:
        if progress:
            progress("write", done, total)

    if max_size is None or estimate(store, paths).bytes <= room_on(drive):
        report = export(store, paths, drive, max_size, progress=writing)
        return SendReport(report, report.paths, ())
    folder = outgoing_dir(paths)
    folder.mkdir(parents=True, exist_ok=True)
    for unfinished in folder.glob(f"*{bundle.UNFINISHED}"):
        unfinished.unlink(missing_ok=True)   # a write cut short by a power cut
    earlier = set(waiting_parts(paths))
    report = export(store, paths, folder, max_size, progress=writing)
    for old in earlier - set(report.paths):
        old.unlink(missing_ok=True)   # an earlier bundle's parts: this one holds all they held, and more
    carried = carry(paths, drive, progress)
    return SendReport(report, carried.copied, carried.left)


def carry(paths: DataPaths, drive: Path, progress: Callable[[str, int, int], None] | None = None) -> CarryReport:
    """Copies the waiting parts onto the drive in their order, as many as fit: each is written to an unfinished
    name, fsynced, renamed, read back from the drive and its signature checked, and only then removed here."""
    from spoke_client.services.sync_local import key_path

    drive = Path(drive)
    parts = waiting_parts(paths)
    if not parts:
        return CarryReport((), ())
    public = load_pem_private_key(key_path(paths).read_bytes(), password=None).public_key()
    total, done = sum(p.stat().st_size for p in parts), 0
    copied: list[Path] = []
    for part in parts:
        size = part.stat().st_size
        if size > room_on(drive):
            break
        target = drive / part.name
        temporary = target.with_name(target.name + bundle.UNFINISHED)
        try:
            with open(part, "rb") as src, open(temporary, "wb") as dst:
                while block := src.read(PIECE):
                    dst.write(block)
                    done += len(block)
                    if progress:
                        progress("copy", done, total)
                dst.flush()
                os.fsync(dst.fileno())
                if hasattr(os, "posix_fadvise"):   # the read-back then comes from the drive, not from memory
                    os.posix_fadvise(dst.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            os.replace(temporary, target)
            bundle.fsync_folder(drive)
            bundle.verify(target, bundle.read_header(target), public)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise bundle.write_error(exc) from None
        except BundleError:
            target.unlink(missing_ok=True)
            raise BundleError("write_failed", _("The copy on the drive does not read back as it was written (the "
                                                "drive may be failing); it was removed. Try again, or use another "
                                                "drive.")) from None
        part.unlink()
        copied.append(target)
        log.info("bundle part %s carried to the drive", part.name)
    if not copied and parts:
        raise BundleError("no_space", _("The drive has no room for the next part ({need} MB): free some space on "
                                        "it, or use another drive.").format(need=-(-parts[0].stat().st_size // 2**20)))
    left = tuple(parts[len(copied):])
    return CarryReport(tuple(copied), left)


def user_message(exc: BundleError) -> str:
    """A refused bundle in the user's language: the format's own refusals (raised in English by sync.bundle, with
    their details) said again through the catalog; this module's are already the user's."""
    if exc.details is None:
        return exc.message
    d = exc.details
    if exc.code == "unknown_version":
        return _("This bundle was written in a newer format ({version}) than this program reads: update Spoke on "
                 "this computer to import it.").format(version=d.get("version", "?"))
    if exc.code == "part_missing":
        return _("Part {part} of {parts} of this bundle is missing ({name}): bring every part, then import "
                 "again.").format(part=d.get("part", "?"), parts=d.get("parts", "?"), name=d.get("name", ""))
    texts = {
        "not_a_bundle": _("This file is not a Spoke bundle."),
        "truncated": _("This bundle is cut short: the drive was probably removed while it was written, or the copy "
                       "stopped. Copy it again."),
        "damaged": _("This bundle is damaged (a byte changed on the way): it cannot be trusted, and nothing of it "
                     "was applied. Copy it again from the drive it came on."),
        "no_key": _("This bundle was sealed for another computer's key: it cannot be opened here."),
        "no_space": _("The drive is full, or takes no file this large (a FAT32 drive takes at most 4 GB): nothing "
                      "unfinished was left on it. Split the bundle into smaller parts, or use another drive."),
        "write_failed": _("The bundle could not be written to the drive; nothing unfinished was left on it. Check "
                          "the drive and try again."),
    }
    return texts.get(exc.code, exc.message)


def default_name(store: Store) -> str:
    stamp = datetime.now().strftime("%Y-%m-%d-%H%M")
    return f"spoke-{store.device_id[:8]}-{stamp}{bundle.SUFFIX}"


def _check_room(folder: Path, need: int, max_size: int | None) -> None:
    try:
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        raise BundleError("write_failed", _("The drive cannot be written ({reason}).").format(
            reason=exc.strerror or exc)) from None
    first = need if max_size is None else min(need, max_size)
    if free < first:
        raise BundleError("no_space", _("The drive has {free} MB free and the bundle needs about {need} MB: use a "
                                        "larger drive, or split it into parts of at most {free} MB to carry on "
                                        "different days.").format(free=free // 2**20, need=-(-need // 2**20)))


def _dumps(data: dict) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _read_small(item: MediaItem) -> bytes | None:
    """The whole file when it is small enough to hold (a photo, a recording): None for a larger one (read in
    pieces, twice) or one that cannot be read (then the hash check says so)."""
    if item.opener is not None:     # sealed at rest: its plain content, read once (an attachment is at most 20 MB)
        try:
            with item.open() as f:
                return f.read()
        except OSError:
            return None
    if item.size > WHOLE_FILE:
        return None
    try:
        return item.path.read_bytes()
    except OSError:
        return None


def _pieces(item: MediaItem, whole: bytes | None):
    if whole is not None:
        view = memoryview(whole)
        for at in range(0, len(whole), PIECE):
            yield view[at:at + PIECE]
        return
    with open(item.path, "rb") as f:
        while piece := f.read(PIECE):
            yield piece


def _sha256(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None
