"""Patient data encrypted at rest: which state this PC's data is in, the key ring of an open session, signing in
before the database is open, and the one-time conversion of a database from before encryption.

States of a data folder (engine.database_kind): "new" (nothing yet: the database is made encrypted, with a fresh
key, and the first administrator's set-up writes the key slots and shows the recovery key); "encrypted" (locked
until a user's password, or the recovery key, opens the key slots); "clear" (made by a release before encryption:
it opens as before, and the first administrator's sign-in converts it).

The conversion, and what a kill at any point leaves (`resume_conversion` runs at every open):

    0. key slots written for the signing-in administrator (the key is kept before anything is encrypted with it)
    1. spoke.sqlite.encrypting <- SQLCipher's sqlcipher_export of the clear file; fsynced
    2. verified: opens with the key, passes integrity_check, holds as many rows in every table as the clear file
    3. spoke.sqlite -> spoke.sqlite.clear (the copy kept until the end), spoke.sqlite.encrypting -> spoke.sqlite
    4. the clear copy (and the clear copies in backups/) overwritten with zeros, fsynced, removed

    killed in 0-2: spoke.sqlite is still the clear file; the unfinished file is removed; the next administrator's
                   sign-in starts again (with new key slots: nothing was encrypted with the old ones)
    killed in 3:   no spoke.sqlite but spoke.sqlite.clear: it is put back (the encrypted file is verified but the
                   switch is redone from the start next time)
    killed in 4:   spoke.sqlite is encrypted and its slots open it: the clear copies are overwritten and removed
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from spoke_client.db.engine import connect, database_kind, integrity_problems, owner_only
from spoke_client.domain.errors import AccountLocked, AuthenticationFailed, SpokeError
from spoke_client.domain.model import Role, User
from spoke_client.i18n import _
from spoke_client.paths import DataPaths
from spoke_client.services.keyslots import RECOVERY, KeySlotError, KeySlots
from sync.files import fsync_dir

log = logging.getLogger(__name__)

ENCRYPTING = ".encrypting"
FAILURES = "signin-failures.json"   # wrong passwords typed while the data was closed (user names, counts, times)
CLEAR_COPY = ".clear"


class DataLocked(SpokeError):
    """The data is encrypted and this attempt did not open it."""


def key_slots(paths: DataPaths) -> KeySlots:
    try:
        return KeySlots(paths.keyslots, paths.backups / paths.keyslots.name)
    except KeySlotError as exc:
        raise DataLocked(slot_message(exc)) from exc


def slot_message(exc: KeySlotError) -> str:
    """A key-slot refusal in the user's words (and language)."""
    return {
        "wrong_password": _("The user name or password is not right."),
        "no_slot": _("The user name or password is not right, or this user has no key to this computer's data yet "
                     "(an administrator sets their password again)."),
        "wrong_recovery_key": _("This recovery key does not open the data on this computer."),
        "bad_recovery_key": _("That is not a recovery key: it has 32 letters and digits in 8 groups of 4, as "
                              "printed at set-up."),
        "damaged": _("The file that holds the keys to this computer's data is damaged, and so is its copy. Call "
                     "your district technician; do not delete anything in the data folder."),
    }.get(exc.code, exc.message)


@dataclass
class KeyRing:
    """The key of an open, encrypted store and the slots that wrap it. Held by the services of a signed-in session;
    the users' service keeps a slot for every user who can sign in."""
    paths: DataPaths
    key: bytes
    slots: KeySlots = field(init=False)
    recovery_key: str | None = None       # shown once to the administrator who set up or converted, then forgotten

    def __post_init__(self) -> None:
        self.slots = key_slots(self.paths)

    @property
    def ready(self) -> bool:
        return self.slots.exists

    def first_slot(self, user_id: str, username: str, password: str, label: str) -> None:
        """At set-up: the administrator's slot and the recovery key."""
        self.slots, _key, self.recovery_key = KeySlots.create(
            self.paths.keyslots, user_id, password, self.key, name=username, label=label,
            copy=self.paths.backups / self.paths.keyslots.name)

    def take_recovery_key(self) -> str | None:
        text, self.recovery_key = self.recovery_key, None
        return text

    def has_slot(self, user_id: str) -> bool:
        return user_id in self.slots.slots

    def set_slot(self, user_id: str, username: str, password: str) -> None:
        if self.ready:
            self.slots.add(user_id, password, self.key, name=username)

    def remove_slot(self, user_id: str) -> None:
        if self.ready:
            self.slots.remove(user_id)


# --- the conversion of a clear database -----------------------------------------------------------------------------
def resume_conversion(paths: DataPaths) -> None:
    """Puts a folder left by a conversion that was killed back into one state (see the module's table)."""
    db = paths.database
    unfinished, kept = _sibling(db, ENCRYPTING), _sibling(db, CLEAR_COPY)
    if not db.exists() and kept.exists():
        os.replace(kept, db)
        log.warning("an encryption of the database was interrupted before its end: the clear file is back")
    kind = database_kind(db)
    if unfinished.exists() or _sibling(unfinished, "-journal").exists():
        if kind == "clear" or not db.exists():
            for p in (unfinished, _sibling(unfinished, "-journal"), _sibling(unfinished, "-wal"), _sibling(unfinished, "-shm")):
                try:
                    p.unlink(missing_ok=True)
                except OSError as exc:   # not ours to remove (a folder?): the conversion will fail and say so
                    log.warning("an unfinished encrypted file could not be removed (%s)", type(exc).__name__)
    if kept.exists() and kind == "encrypted":
        _shred(kept)
        log.info("the clear copy left by the encryption of the database was overwritten and removed")
    if kind == "encrypted" and _shred_clear_copies(paths):
        # A kill after the switch and before step 4 reached backups/: done now (a clear copy is never restored
        # over an encrypted database anyway).
        log.info("clear copies in backups/ left by an interrupted encryption were overwritten and removed")


def _shred_clear_copies(paths: DataPaths) -> int:
    """Step 4 for backups/: every copy there still in clear (the day's copy, the one before a migration)."""
    done = 0
    for copy in sorted(paths.backups.glob("*.sqlite")) if paths.backups.is_dir() else []:
        if database_kind(copy) == "clear":
            _shred(copy)     # the day's copy is taken again, encrypted, when the data is opened next
            done += 1
    return done


def encrypt_clear_database(paths: DataPaths, key: bytes) -> None:
    """Steps 1-4 of the module's table. The caller has closed every connection to the database and written the
    slots (step 0)."""
    db = paths.database
    unfinished, kept = _sibling(db, ENCRYPTING), _sibling(db, CLEAR_COPY)
    resume_conversion(paths)
    clear = connect(db)
    try:
        clear.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        counts = _row_counts(clear)
        user_version = clear.execute("PRAGMA user_version").fetchone()[0]
    finally:
        clear.close()
    from sqlcipher3 import dbapi2 as sqlcipher

    con = sqlcipher.connect(str(db), timeout=30)
    try:
        con.execute("ATTACH DATABASE ? AS encrypted KEY \"x'" + key.hex() + "'\"", (str(unfinished),))
        con.execute("SELECT sqlcipher_export('encrypted')")
        con.execute(f"PRAGMA encrypted.user_version = {int(user_version)}")
        con.execute("DETACH DATABASE encrypted")
    finally:
        con.close()
    _fsync(unfinished)
    owner_only(unfinished)
    problems = integrity_problems(unfinished, key)
    if problems:
        raise SpokeError(_("The encrypted copy of the database did not pass its check ({problem}); the database is "
                           "kept as it was.").format(problem=problems[0]))
    check = connect(unfinished, key)
    try:
        if _row_counts(check) != counts:
            raise SpokeError(_("The encrypted copy of the database does not hold every record; the database is kept "
                               "as it was."))
    finally:
        check.close()
    for suffix in ("-wal", "-shm"):
        _sibling(db, suffix).unlink(missing_ok=True)   # checkpointed and closed: nothing is left in them
    os.replace(db, kept)
    os.replace(unfinished, db)
    fsync_dir(db.parent)
    _shred(kept)
    _shred_clear_copies(paths)
    log.info("the database is encrypted now (%d tables, every row kept)", len(counts))


def _row_counts(con) -> dict[str, int]:
    names = [r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    counts = {}
    for name in names:
        try:
            counts[name] = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        except Exception:   # an FTS shadow table that is not counted on its own
            continue
    return counts


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _shred(path: Path) -> None:
    """Overwrites the file's bytes with zeros in place, fsynced, then removes it (and its WAL, shared-memory and
    journal files). On a journalling file system the old blocks are normally the ones rewritten; an SSD's wear
    levelling may keep copies (README: limits)."""
    if _shred_file(path):
        for suffix in ("-wal", "-shm", "-journal"):
            _sibling(path, suffix).unlink(missing_ok=True)


def _shred_file(path: Path) -> bool:
    """The one file zeroed, fsynced and removed; False when it was not there."""
    try:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            block = b"\0" * (1 << 20)
            left = size
            while left > 0:
                n = min(left, len(block))
                f.write(block[:n])
                left -= n
            f.flush()
            os.fsync(f.fileno())
    except FileNotFoundError:
        return False
    path.unlink(missing_ok=True)
    return True


# --- what was set aside in damaged/ before the encryption ---------------------------------------------------------
SEALED_ASIDE = ".sealed"
_COMPANION = re.compile(r"-(wal|shm|journal)$")


def seal_set_aside(paths: DataPaths, key: bytes) -> int:
    """A database set aside in damaged/ while the data was in clear (a damaged file replaced by its good copy),
    with its WAL, is kept, never deleted, but not in clear: each file is sealed as `<name>.sealed` (the media
    key's AEAD stream, its name as associated data), then its clear bytes are overwritten and removed. Runs at
    every open with the key; a kill midway is finished at the next (a file not yet sealed is sealed, one sealed
    whole is only shredded: it may be zeroed in part).
    An encrypted database set aside stays as it is. A technician gets a file back with `spoke-client
    unseal-damaged NAME --out FILE`, which is audited."""
    from spoke_client.services.sealed_files import CHUNK, media_key, seal

    folder = paths.quarantine
    if not folder.is_dir():
        return 0
    todo, to_seal = [], []
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.endswith((SEALED_ASIDE, ".sealing")) or not f.name.isascii():
            continue
        if _sibling(f, SEALED_ASIDE).exists():
            # Sealed whole (a seal is renamed into place when complete, and every seal is done before any
            # shredding): a kill came during the shredding, so this may be zeroed in part. Never sealed again.
            todo.append(f)
            continue
        main = f.with_name(_COMPANION.sub("", f.name))
        gone_sealed = main != f and not main.exists() and _sibling(main, SEALED_ASIDE).exists()
        if database_kind(main) == "clear" or gone_sealed:
            todo.append(f)
            to_seal.append(f)
    if not todo:
        return 0
    mkey = media_key(key)
    for f in to_seal:
        with open(f, "rb") as src:
            seal(mkey, f.name, iter(lambda: src.read(CHUNK), b""), _sibling(f, SEALED_ASIDE))
    fsync_dir(folder)
    for f in sorted(todo, key=lambda f: f == f.with_name(_COMPANION.sub("", f.name))):   # WAL before its database
        _shred_file(f)
    fsync_dir(folder)
    log.info("sealed %d files set aside in damaged/ while the data was in clear", len(todo))
    return len(todo)


def set_aside_files(paths: DataPaths) -> list[str]:
    """The names of the sealed files kept in damaged/ (what `unseal_set_aside` can give back)."""
    folder = paths.quarantine
    if not folder.is_dir():
        return []
    return sorted(f.name.removesuffix(SEALED_ASIDE) for f in folder.glob("*" + SEALED_ASIDE))


def unseal_set_aside(paths: DataPaths, key: bytes, name: str, out: Path) -> int:
    """Writes the clear content of damaged/<name>.sealed to `out` (a new file, this account's only); its size. A
    file that does not open with this PC's key is refused, and nothing is left at `out`."""
    from spoke_client.services.sealed_files import SealedFileError, media_key, open_sealed

    sealed = paths.quarantine / (name + SEALED_ASIDE)
    if "/" in name or "\\" in name or not name.isascii() or not sealed.is_file():
        raise SpokeError(_("No sealed file of that name is kept in {folder}.").format(folder=paths.quarantine))
    size = 0
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SpokeError(_("{out} exists already; give a new file name.").format(out=out)) from None
    except OSError as exc:       # no such folder, no permission
        raise SpokeError(_("Could not write {out}: {error}").format(out=out, error=exc.strerror or exc)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            for piece in open_sealed(media_key(key), name, sealed):
                f.write(piece)
                size += len(piece)
            f.flush()
            os.fsync(f.fileno())
    except SealedFileError as exc:
        out.unlink(missing_ok=True)
        raise SpokeError(_("{name} could not be opened ({why}); nothing was written.").format(
            name=name, why=exc)) from None
    except OSError as exc:       # the disk filled
        out.unlink(missing_ok=True)
        raise SpokeError(_("Could not write {out}: {error}").format(out=out, error=exc.strerror or exc)) from None
    return size


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- signing in before the data is open -----------------------------------------------------------------------------
class Gate:
    """The first sign-in of a session: unlocks the key with the user's slot, opens the store with it and signs in
    there as always (an inactive user is refused by the store, as a wrong password is by the slot). On a database
    from before encryption, an administrator's sign-in converts it first. `services` is the open store after."""

    def __init__(self, paths: DataPaths, services=None) -> None:
        self.paths = paths
        self.services = services
        self.key: bytes | None = None   # unlocked by the last sign-in (a damaged database's good copies need it)
        self.users_without_key: list[str] = []
        self.conversion_error: str | None = None

    @property
    def locked(self) -> bool:
        return database_kind(self.paths.database) == "encrypted" and self.services is None

    def label(self) -> str:
        if self.services is not None:
            facility = self.services.auth.facility()
            return f"{facility.name} ({facility.hwc_id})" if facility else ""
        return key_slots(self.paths).label

    def login(self, username: str, password: str) -> User:
        proven = None
        if self.services is None:
            if database_kind(self.paths.database) == "encrypted":
                # Derived before the store's modules are loaded: the 64 MiB of Argon2id are given back before
                # they are, so a command-line task's peak memory is the larger of the two, not their sum.
                self.key, proven = self._unlock(username, password)
            from spoke_client.services.runtime import open_services

            if proven is not None:
                self.services = open_services(self.paths, key=self.key, keep_good_copy=True)
            else:
                self.services = open_services(self.paths, keep_good_copy=True)
        # The slot that opened the key proved this password for its user: the store does not derive it again.
        user = self.services.auth.login(username, password, proven_user=proven)
        if self.services.keys is None and user.role == Role.ADMIN and database_kind(self.paths.database) == "clear":
            try:
                self.encrypt(user, password)
            except Exception as exc:  # noqa: BLE001 - whatever stopped it (a full disk, a driver error), the same
                # The clear database is as it was and open again: the administrator works on and is told.
                log.warning("the encryption of the database failed (%s); it stays as it was", type(exc).__name__)
                self.conversion_error = _("The data on this computer could not be encrypted ({error}); it is kept as "
                                          "it was, and the next administrator's sign-in tries again.").format(
                    error=getattr(exc, "message", None) or getattr(exc, "strerror", None) or exc)
        return user

    def recover(self, recovery_key: str, username: str, new_password: str) -> User:
        """Every password lost: the recovery key opens the data and the administrator `username` gets
        `new_password` (and a new slot); the recovery key keeps working."""
        from spoke_client.services.runtime import open_services

        if self.services is None:
            try:
                self.key = key_slots(self.paths).unlock_recovery(recovery_key)
            except KeySlotError as exc:
                raise DataLocked(slot_message(exc)) from exc
            self.services = open_services(self.paths, key=self.key, keep_good_copy=True)
        return self.services.auth.recover_admin(username, new_password)

    def unlock_key(self, username: str, password: str) -> bytes:
        return self._unlock(username, password)[0]

    def _unlock(self, username: str, password: str) -> tuple[bytes, str]:
        """The key from `username`'s slot. Wrong passwords count toward the same lock-out as the store's own
        sign-in (MAX_FAILED_LOGINS, then LOCK_DURATION), kept in a small file beside the slots, as the data is not
        open to keep them; unknown names count the same, so the answers do not tell which names exist. With the key,
        the id of the user whose slot opened it."""
        from spoke_client.services.auth import LOCK_DURATION, MAX_FAILED_LOGINS

        name = username.strip().lower()
        failures = _Failures(self.paths.root / FAILURES, MAX_FAILED_LOGINS, LOCK_DURATION.total_seconds())
        minutes = failures.locked_minutes(name)
        if minutes:
            raise AccountLocked(_("Too many wrong passwords: this account is locked for {minutes} more minutes.")
                                .format(minutes=minutes))
        slots = key_slots(self.paths)
        slot_id = slots.find(name)
        try:
            if slot_id is None or slot_id == RECOVERY:
                raise KeySlotError("no_slot", "")
            key = slots.unlock(slot_id, password)
        except KeySlotError as exc:
            log.info("sign-in refused by the key slots (%s)", exc.code)
            if failures.failed(name):
                raise AccountLocked(_("Too many wrong passwords: this account is locked for {minutes} minutes.")
                                    .format(minutes=int(LOCK_DURATION.total_seconds() // 60))) from exc
            raise AuthenticationFailed(slot_message(exc)) from exc
        failures.cleared(name)
        return key, slot_id

    def conversion_progress(self) -> float | None:
        """While the one-time conversion runs (from any thread): how far the encrypted copy has come, by its size
        against the clear file's (0 to 0.99; its check and switch follow); None when no conversion runs."""
        if not getattr(self, "_converting", False):
            return None
        try:
            whole = self.paths.database.stat().st_size
            done = _sibling(self.paths.database, ENCRYPTING).stat().st_size
        except OSError:
            return 0.0
        return min(0.99, done / whole) if whole else 0.0

    def encrypt(self, admin: User, password: str) -> None:
        """Converts the open clear store: slots for `admin` (and the recovery key, kept on the key ring to be shown
        once), the file encrypted, the store opened again with the key."""
        from spoke_client.services.keyslots import new_key
        from spoke_client.services.runtime import open_services

        assert self.services is not None
        facility = self.services.auth.facility()
        others = [u.username for u in self.services.auth.list_users(admin) if u.id != admin.id and u.active]
        self.services.close()
        self.services = None
        stale = self.paths.keyslots
        for old in (stale, self.paths.backups / stale.name):
            if old.exists():   # from a conversion killed before its switch: nothing was encrypted with it
                old.replace(old.with_name(old.name + f".stale-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"))
        key = new_key()
        ring = KeyRing(self.paths, key)
        ring.first_slot(admin.id, admin.username, password,
                        f"{facility.name} ({facility.hwc_id})" if facility else "")
        self._converting = True
        try:
            encrypt_clear_database(self.paths, key)
        except BaseException:
            self.services = open_services(self.paths)     # still the clear file: the session goes on
            raise
        finally:
            self._converting = False
        self.services = open_services(self.paths, key=key, keep_good_copy=True)
        assert self.services.keys is not None
        self.services.keys.recovery_key = ring.recovery_key
        self.users_without_key = others
        with self.services.store.write(admin.id) as w:
            w.audit("encrypt", "database", "", f"{len(others)} other users to be given a key")


class _Failures:
    """Wrong passwords per typed user name while the data is closed: `limit` of them lock the name for `lock_s`
    seconds. A small JSON file replaced atomically; at most a thousand names are kept (the oldest go first)."""

    def __init__(self, path: Path, limit: int, lock_s: float) -> None:
        self.path, self.limit, self.lock_s = path, limit, lock_s
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self.names = {str(k): dict(v) for k, v in data.items()} if isinstance(data, dict) else {}
        except (OSError, ValueError, TypeError, AttributeError):
            self.names = {}

    def locked_minutes(self, name: str) -> int:
        until = float(self.names.get(name, {}).get("until", 0) or 0)
        left = until - time.time()
        return int(left // 60) + 1 if left > 0 else 0

    def failed(self, name: str) -> bool:
        """Counts one; True when this one locks the name."""
        entry = self.names.pop(name, {})
        count = int(entry.get("count", 0)) + 1
        locks = count >= self.limit
        self.names[name] = {"count": 0, "until": time.time() + self.lock_s} if locks else {"count": count, "until": 0}
        while len(self.names) > 1000:
            self.names.pop(next(iter(self.names)))
        self._save()
        return locks

    def cleared(self, name: str) -> None:
        if self.names.pop(name, None) is not None:
            self._save()

    def _save(self) -> None:
        temp = self.path.with_name(self.path.name + ".new")
        try:
            temp.write_text(json.dumps(self.names), encoding="utf-8")
            os.replace(temp, self.path)
        except OSError as exc:   # a full disk must not stop a sign-in: the count is a brake, not a lock on the data
            log.warning("the count of wrong passwords could not be kept (%s)", type(exc).__name__)
