"""Files sealed at rest (issue "Patient data encrypted at rest", the primitive): the content comes back exactly,
nothing of it is on the disk in clear, and a changed byte, a cut, a swap of chunks, another file's name or another
key all fail to open."""

from __future__ import annotations

import hashlib
import os

import pytest

from spoke_client.services import sealed_files
from spoke_client.services.keyslots import new_key
from spoke_client.services.sealed_files import SealedFileError, media_key, read_sealed, seal


def sealed(tmp_path, data: bytes, key: bytes, pieces: int = 7):
    name = hashlib.sha256(data).hexdigest()
    out = tmp_path / name
    step = max(1, len(data) // pieces)
    assert seal(key, name, (data[i:i + step] for i in range(0, len(data), step)), out) == len(data)
    return name, out


@pytest.mark.parametrize("size", [0, 1, sealed_files.CHUNK - 1, sealed_files.CHUNK, sealed_files.CHUNK + 1,
                                  3 * sealed_files.CHUNK, 1_234_567])
def test_the_content_comes_back_exactly_and_is_not_on_the_disk_in_clear(tmp_path, size):
    key = media_key(new_key())
    data = os.urandom(size // 2) + b"Kamla Devi 9415012345 " * (size // 44) + os.urandom(size - size // 2 - 22 * (size // 44))
    name, path = sealed(tmp_path, data, key)
    assert read_sealed(key, name, path) == data
    on_disk = path.read_bytes()
    assert b"Kamla" not in on_disk and (size < 64 or data[:64] not in on_disk)
    assert not list(tmp_path.glob("*.sealing")), "nothing half-written left"


def test_a_changed_byte_a_cut_a_swap_another_name_or_another_key_does_not_open(tmp_path):
    key = media_key(new_key())
    data = os.urandom(3 * sealed_files.CHUNK + 500)
    name, path = sealed(tmp_path, data, key)
    good = path.read_bytes()
    head = len(sealed_files.MAGIC) + sealed_files.SALT
    block = sealed_files.CHUNK + sealed_files.TAG
    variants = {
        "a changed byte": good[:head + 10] + bytes([good[head + 10] ^ 1]) + good[head + 11:],
        "a changed salt": good[:8] + bytes([good[8] ^ 1]) + good[9:],
        "cut at a chunk's end": good[:head + 2 * block],
        "cut in a chunk": good[:-100],
        "two chunks swapped": good[:head] + good[head + block:head + 2 * block] + good[head:head + block]
                              + good[head + 2 * block:],
        "not sealed at all": data,
    }
    for what, blob in variants.items():
        path.write_bytes(blob)
        with pytest.raises(SealedFileError):
            read_sealed(key, name, path)
            pytest.fail(what)
    path.write_bytes(good)
    with pytest.raises(SealedFileError):
        read_sealed(key, hashlib.sha256(b"another photo").hexdigest(), path)   # put under another file's name
    with pytest.raises(SealedFileError):
        read_sealed(media_key(new_key()), name, path)
    assert read_sealed(key, name, path) == data


def test_the_media_key_is_the_database_keys_own_and_differs_from_it():
    database = new_key()
    assert media_key(database) == media_key(database) != database
    assert media_key(new_key()) != media_key(database)
