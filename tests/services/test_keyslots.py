"""The database key's slots (issue "Patient data encrypted at rest", first slice): each user's password opens the
key, a wrong one does not, a removed user's slot is gone, the recovery key opens it, a password change keeps the
others working, and a PC killed (SIGKILL) in the middle of a key change keeps a file that the old or the new
password opens."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spoke_client.services import keyslots
from spoke_client.services.keyslots import KeySlotError, KeySlots

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def light_argon2(monkeypatch):
    """Argon2id at a test's cost (the parameters travel in each slot, so the slots stay honest)."""
    monkeypatch.setattr(keyslots, "ARGON2", {"time_cost": 1, "memory_cost": 8 * 1024, "parallelism": 1})


def refused(code: str, call, *args) -> KeySlotError:
    with pytest.raises(KeySlotError) as caught:
        call(*args)
    assert caught.value.code == code, caught.value.message
    return caught.value


def test_each_password_and_the_recovery_key_open_the_same_key_and_nothing_else_does(tmp_path):
    path = tmp_path / "keyslots.json"
    slots, key, recovery = KeySlots.create(path, "admin-1", "first-admin-pass")
    assert len(key) == 32 and len(recovery) == 39 and recovery.count("-") == 7
    slots.add("asha", "asha-pass-2026", key)
    slots.add("ravi", "ravi-pass-2026", key)
    again = KeySlots(path)   # from the file, as at the next start
    assert again.ids() == ["admin-1", "asha", "ravi"]
    assert again.unlock("admin-1", "first-admin-pass") == key
    assert again.unlock("asha", "asha-pass-2026") == key
    assert again.unlock_recovery(recovery) == key
    assert again.unlock_recovery(recovery.lower().replace("-", " ")) == key, "typed as it is read off the paper"
    refused("wrong_password", again.unlock, "asha", "ravi-pass-2026")
    refused("wrong_password", again.unlock, "asha", "asha-pass-2025")
    refused("no_slot", again.unlock, "meena", "asha-pass-2026")
    refused("wrong_recovery_key", again.unlock_recovery, keyslots.new_recovery_key())
    refused("bad_recovery_key", again.unlock_recovery, "1234")
    refused("bad_key", again.add, "meena", "meena-pass-1", keyslots.new_key())
    text = path.read_text()
    for secret in ("first-admin-pass", "asha-pass-2026", recovery, key.hex()):
        assert secret not in text
    assert os.stat(path).st_mode & 0o777 == 0o600, "readable by this account only"


def test_a_password_change_re_wraps_one_slot_and_a_removed_user_is_gone(tmp_path):
    path = tmp_path / "keyslots.json"
    slots, key, recovery = KeySlots.create(path, "admin-1", "first-admin-pass")
    slots.add("asha", "asha-pass-2026", key)
    before = {s["id"]: s for s in json.loads(path.read_text())["slots"]}
    slots.change("asha", "asha-pass-2026", "asha-new-pass-1")
    after = {s["id"]: s for s in json.loads(path.read_text())["slots"]}
    assert after["admin-1"] == before["admin-1"] and after["recovery"] == before["recovery"], "the others untouched"
    assert after["asha"] != before["asha"]
    assert KeySlots(path).unlock("asha", "asha-new-pass-1") == key
    refused("wrong_password", KeySlots(path).unlock, "asha", "asha-pass-2026")
    refused("wrong_password", slots.change, "admin-1", "not-the-password", "x-pass-123")
    slots.remove("asha")
    refused("no_slot", KeySlots(path).unlock, "asha", "asha-new-pass-1")
    assert KeySlots(path).unlock("admin-1", "first-admin-pass") == key
    new = slots.new_recovery(key)
    assert KeySlots(path).unlock_recovery(new) == key
    refused("wrong_recovery_key", KeySlots(path).unlock_recovery, recovery)


def test_a_slot_moved_onto_another_user_does_not_open_and_a_damaged_file_is_told(tmp_path):
    path = tmp_path / "keyslots.json"
    slots, key, _recovery = KeySlots.create(path, "admin-1", "first-admin-pass")
    slots.add("asha", "asha-pass-2026", key)
    data = json.loads(path.read_text())
    mine = next(s for s in data["slots"] if s["id"] == "asha")
    theirs = next(s for s in data["slots"] if s["id"] == "admin-1")
    theirs.update({k: mine[k] for k in ("kdf", "nonce", "wrapped")})   # asha's slot copied onto the admin's id
    path.write_text(json.dumps(data))
    refused("wrong_password", KeySlots(path).unlock, "admin-1", "asha-pass-2026")
    path.write_text('{"version": 1, "slots": [{"id": ')
    refused("damaged", KeySlots, path)


CHANGER = """
import sys
from pathlib import Path
from spoke_client.services import keyslots
keyslots.ARGON2 = {"time_cost": 1, "memory_cost": 8 * 1024, "parallelism": 1}
slots = keyslots.KeySlots(Path(sys.argv[1]))
passwords = ["pass-a-0000", "pass-b-1111"]
n = 0
print("ready", flush=True)
while True:
    slots.change("asha", passwords[n % 2], passwords[(n + 1) % 2])
    n += 1
"""


def test_a_kill_in_the_middle_of_password_changes_leaves_a_file_the_old_or_the_new_password_opens(tmp_path):
    path = tmp_path / "keyslots.json"
    slots, key, _recovery = KeySlots.create(path, "admin-1", "first-admin-pass")
    slots.add("asha", "pass-a-0000", key)
    for delay in (0.05, 0.13, 0.21, 0.34, 0.55):
        proc = subprocess.Popen([sys.executable, "-c", CHANGER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        after = KeySlots(path)
        opened = []
        for password in ("pass-a-0000", "pass-b-1111"):
            try:
                opened.append(after.unlock("asha", password))
            except KeySlotError as exc:
                assert exc.code == "wrong_password"
        assert opened == [key], "exactly one of the old and the new password opens it"
        assert after.unlock("admin-1", "first-admin-pass") == key
