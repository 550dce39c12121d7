"""The key of the encrypted database, never stored in clear: wrapped once per user by a key derived from that
user's password (Argon2id), as LUKS keeps key slots, and once more by a recovery key shown to the administrator
at set-up (to print and keep in the centre's records).

Any user's password unlocks the data; a password change re-wraps that user's slot only; an administrator adding a
user adds a slot (with the key of the session that is unlocked); removing a user removes the slot. The slots are
one small JSON file beside the database (the database cannot hold them: it is what they open), replaced
atomically (written to a temporary name, fsynced, renamed): a PC that loses power in the middle of a change keeps
the old file or the new one, and either opens the data.

Each slot: ChaCha20-Poly1305 of the 32-byte database key under the slot's key, with the slot's id and the file's
version as associated data (a slot copied onto another user's id does not open), and a random nonce. A password's
slot key is Argon2id(password, a random salt, the parameters kept in the slot); the recovery key is 160 random
bits written as 8 groups of 4 letters and digits (base32), its slot key HKDF-SHA256 of those bits.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sync.files import fsync_dir

VERSION = 1
RECOVERY = "recovery"
KEY_BYTES = 32
# Argon2id as RFC 9106's second recommended option, with memory an old HWC PC (4 GB) spares at sign-in.
ARGON2 = {"time_cost": 3, "memory_cost": 64 * 1024, "parallelism": 2}
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


class KeySlotError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Slot:
    id: str                 # a user's id, or "recovery"
    kdf: dict               # {"name": "argon2id", "salt": b64, "time_cost"...} or {"name": "hkdf", "salt": b64}
    nonce: str
    wrapped: str
    name: str = ""          # the user name typed at sign-in, to find the slot before the database is open


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def new_recovery_key() -> str:
    bits = secrets.token_bytes(20)
    text = base64.b32encode(bits).decode("ascii")   # 32 characters, no padding for 20 bytes
    return "-".join(text[i:i + 4] for i in range(0, 32, 4))


def _recovery_bits(text: str) -> bytes:
    cleaned = "".join(ch for ch in text.upper() if ch not in " -\t\n").replace("0", "O").replace("1", "I").replace("8", "B")
    if len(cleaned) != 32 or any(ch not in _B32 for ch in cleaned):
        raise KeySlotError("bad_recovery_key", "That is not a recovery key: it has 32 letters and digits in 8 "
                                               "groups of 4, as printed at set-up.")
    return base64.b32decode(cleaned)


class KeySlots:
    """The slots file of one PC's data folder."""

    def __init__(self, path: Path, copy: Path | None = None) -> None:
        self.path = Path(path)
        self.copy = Path(copy) if copy is not None else None
        self.slots: dict[str, Slot] = {}
        self.check = ""   # a short MAC of the key under itself: a key given to wrap is checked to be the right one
        self.label = ""   # the facility's name and HWC id, for the sign-in screen before the data is open
        if self.path.exists():
            try:
                self._load(self.path)
            except KeySlotError:
                if self.copy is None or not self.copy.exists():
                    raise
                self._load(self.copy)          # damaged beside the database: the copy is taken back
                _write_atomically(self._text(), self.path)
        elif self.copy is not None and self.copy.exists():
            self._load(self.copy)              # lost beside the database: taken back
            _write_atomically(self._text(), self.path)

    @property
    def exists(self) -> bool:
        return bool(self.slots)

    def ids(self) -> list[str]:
        return sorted(i for i in self.slots if i != RECOVERY)

    # --- making and changing ----------------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, user_id: str, password: str, key: bytes | None = None, *, name: str = "",
               label: str = "", copy: Path | None = None) -> tuple["KeySlots", bytes, str]:
        """The first user's slot and a recovery slot for `key` (a new one if none is given): (slots, key, the
        recovery key to show once)."""
        slots = cls(path, copy)
        if slots.exists:
            raise KeySlotError("exists", "This computer's data already has its key.")
        key = key or new_key()
        recovery = new_recovery_key()
        slots.check, slots.label = _check_value(key), label
        slots.slots[user_id] = _password_slot(user_id, password, key, name)
        slots.slots[RECOVERY] = _recovery_slot(recovery, key)
        slots._save()
        return slots, key, recovery

    def add(self, user_id: str, password: str, key: bytes, *, name: str = "") -> None:
        """A user's slot (a new user, or a password set by an administrator), with the unlocked session's key."""
        self._check_key(key)
        old = self.slots.get(user_id)
        self.slots[user_id] = _password_slot(user_id, password, key, name or (old.name if old else ""))
        self._save()

    def change(self, user_id: str, old_password: str, new_password: str) -> None:
        """Re-wraps this user's slot for the new password; the other slots are untouched."""
        key = self.unlock(user_id, old_password)
        self.slots[user_id] = _password_slot(user_id, new_password, key, self.slots[user_id].name)
        self._save()

    def find(self, name: str) -> str | None:
        """The slot id of the user signing in as `name`."""
        name = name.strip().lower()
        for slot in self.slots.values():
            if slot.id != RECOVERY and slot.name == name:
                return slot.id
        return None

    def opens(self, key: bytes) -> bool:
        return len(key) == KEY_BYTES and bool(self.check) and secrets.compare_digest(_check_value(key), self.check)

    def remove(self, user_id: str) -> None:
        if user_id == RECOVERY:
            raise KeySlotError("recovery", "The recovery slot is replaced, not removed.")
        if self.slots.pop(user_id, None) is not None:
            self._save()

    def new_recovery(self, key: bytes) -> str:
        """A new recovery key (the old one stops working); shown once."""
        self._check_key(key)
        recovery = new_recovery_key()
        self.slots[RECOVERY] = _recovery_slot(recovery, key)
        self._save()
        return recovery

    # --- opening --------------------------------------------------------------------------------------
    def unlock(self, user_id: str, password: str) -> bytes:
        slot = self.slots.get(user_id)
        if slot is None or slot.id == RECOVERY:
            raise KeySlotError("no_slot", "This user has no key to the data on this computer; an administrator "
                                          "sets their password again.")
        key = _open(slot, _derive(slot.kdf, password.encode("utf-8")))
        if key is None:
            raise KeySlotError("wrong_password", "The password is wrong.")
        return key

    def unlock_recovery(self, recovery_key: str) -> bytes:
        slot = self.slots.get(RECOVERY)
        if slot is None:
            raise KeySlotError("no_slot", "This computer's data has no recovery key.")
        key = _open(slot, _derive(slot.kdf, _recovery_bits(recovery_key)))
        if key is None:
            raise KeySlotError("wrong_recovery_key", "This recovery key does not open this computer's data.")
        return key

    def _check_key(self, key: bytes) -> None:
        """A key given to wrap must be the one the slots open."""
        if len(key) != KEY_BYTES or not secrets.compare_digest(_check_value(key), self.check):
            raise KeySlotError("bad_key", "This is not the key of this computer's data.")

    # --- the file ---------------------------------------------------------------------------------------
    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != VERSION:
                raise ValueError
            self.slots = {s["id"]: Slot(s["id"], dict(s["kdf"]), s["nonce"], s["wrapped"], str(s.get("name", "")))
                          for s in data["slots"]}
            self.check = str(data["check"])
            self.label = str(data.get("label", ""))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeySlotError("damaged", "The file that holds the keys to this computer's data is damaged; the "
                                          "recovery key cannot help until it is restored from a copy.") from exc

    def _save(self) -> None:
        """Atomically, then the same into the copy beside the database copies (backups/): a slots file lost or
        damaged is taken back from there, and without one of them the data cannot be opened, even with the
        recovery key."""
        _write_atomically(self._text(), self.path)
        if self.copy is not None:
            _write_atomically(self._text(), self.copy)

    def _text(self) -> bytes:
        data = {"version": VERSION, "check": self.check, "label": self.label, "slots": [s.__dict__ for s in sorted(self.slots.values(), key=lambda s: s.id)]}
        return json.dumps(data, indent=1, sort_keys=True).encode("utf-8")


def _write_atomically(text: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".new")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    fsync_dir(path.parent)


def _password_slot(user_id: str, password: str, key: bytes, name: str = "") -> Slot:
    kdf = {"name": "argon2id", "salt": _b64(secrets.token_bytes(16)), **ARGON2}
    return replace(_wrap(user_id, kdf, _derive(kdf, password.encode("utf-8")), key), name=name.strip().lower())


def _recovery_slot(recovery_key: str, key: bytes) -> Slot:
    kdf = {"name": "hkdf-sha256", "salt": _b64(secrets.token_bytes(16))}
    return _wrap(RECOVERY, kdf, _derive(kdf, _recovery_bits(recovery_key)), key)


def _derive(kdf: dict, secret: bytes) -> bytes:
    salt = base64.b64decode(kdf["salt"])
    if kdf["name"] == "argon2id":
        return hash_secret_raw(secret, salt, time_cost=int(kdf["time_cost"]), memory_cost=int(kdf["memory_cost"]),
                               parallelism=int(kdf["parallelism"]), hash_len=KEY_BYTES, type=Type.ID)
    if kdf["name"] == "hkdf-sha256":
        return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=b"spoke recovery slot").derive(secret)
    raise KeySlotError("damaged", "A key slot of this computer names a method this program does not know.")


def _wrap(slot_id: str, kdf: dict, slot_key: bytes, key: bytes) -> Slot:
    nonce = secrets.token_bytes(12)
    sealed = ChaCha20Poly1305(slot_key).encrypt(nonce, key, _aad(slot_id))
    return Slot(slot_id, kdf, _b64(nonce), _b64(sealed))


def _open(slot: Slot, slot_key: bytes) -> bytes | None:
    try:
        return ChaCha20Poly1305(slot_key).decrypt(base64.b64decode(slot.nonce), base64.b64decode(slot.wrapped),
                                                  _aad(slot.id))
    except (InvalidTag, ValueError):
        return None


def _check_value(key: bytes) -> str:
    import hmac

    return _b64(hmac.new(key, b"spoke key check", "sha256").digest()[:16])


def _aad(slot_id: str) -> bytes:
    return f"spoke-keyslot-v{VERSION}\n{slot_id}".encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
