"""The columns encoding gives back every change exactly, and anything else is a ProtocolError, never a crash."""

import json
import uuid

import pytest
import zstandard
from hypothesis import given, settings, strategies as st

from sync.protocol import ProtocolError
from sync.wire import decode_changes, encode_changes
from tests.sync import records

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**53, 2**53), st.floats(allow_nan=False, allow_infinity=False),
                      st.text(max_size=12), st.sampled_from(["@", "#", "@@", "#x", "@x", ""]))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                              st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                          max_leaves=12)
stamp = st.builds(lambda w, c, node: f"{w:015d}-{c:05d}-{node}", st.integers(0, 10**15 - 1), st.integers(0, 99_999),
                  st.sampled_from(["dev-1", "dev-2", "hub"]))


@st.composite
def change(draw, seq: bool = False):
    device = draw(st.sampled_from(["dev-1", "dev-2", "hub"]))
    hlc = draw(stamp)
    entity_id = draw(st.sampled_from(["p-1", "c-1", str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))]))
    payload = draw(st.one_of(st.none(), st.dictionaries(st.text(max_size=8), json_value, max_size=6)))
    if payload is not None and draw(st.booleans()):
        payload = {"id": entity_id, "_fields": {"name": [hlc, ""]}, **payload}
    out = {"change_id": str(uuid.uuid4()), "entity": draw(st.sampled_from(["patient", "case", "vitals"])),
           "entity_id": entity_id, "version": draw(st.integers(1, 2**31 - 1)),
           "op": "upsert" if payload is not None else "delete", "hlc": hlc, "device_id": device, "payload": payload}
    if seq:
        out["seq"] = draw(st.integers(1, 2**62))
    return out


@settings(max_examples=300)
@given(st.lists(change(), max_size=30), st.booleans())
def test_any_batch_comes_back_exactly(changes, with_seq):
    if with_seq:
        for i, c in enumerate(changes):
            c["seq"] = 1000 + i * 3
    meta, out = decode_changes(encode_changes(changes, batch_id="b-1"))
    assert meta == {"batch_id": "b-1"}
    assert json.dumps(out) == json.dumps(changes), "same keys, in the same order, with the same values"


def test_real_records_come_back_exactly():
    payloads = [records.patient(f"p-{i}", name=f"Patient {i}", village=["Rampur", "Sitapur"][i % 2]) for i in range(500)]
    changes = [{"change_id": str(uuid.uuid4()), "entity": "patient", "entity_id": p["id"], "version": 1, "op": "upsert",
                "hlc": f"{1796000000000 + i:015d}-00000-dev-1", "device_id": "dev-1", "payload": p}
               for i, p in enumerate(payloads)]
    body = encode_changes(changes, batch_id="b")
    assert decode_changes(body)[1] == changes
    assert b"Rampur" not in body, "compressed"   # the sizes against gzip -9 are measured in bench/push_bench.py


@pytest.mark.parametrize("body", [
    b"", b"not zstd", zstandard.ZstdCompressor().compress(b"{}"), zstandard.ZstdCompressor().compress(b"[1,2]"),
    zstandard.ZstdCompressor().compress(json.dumps({"format": 1, "n": 2, "change_id": ["a"]}).encode()),
    zstandard.ZstdCompressor().compress(b"[" * 100_000),
])
def test_what_is_not_a_batch_is_a_protocol_error(body):
    with pytest.raises(ProtocolError):
        decode_changes(body)


def test_a_zstd_bomb_is_refused_without_reading_it_all():
    bomb = zstandard.ZstdCompressor(level=19).compress(b" " * (64 * 1024 * 1024))
    assert len(bomb) < 100_000
    with pytest.raises(ProtocolError, match="too large"):
        decode_changes(bomb)


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_fuzzed_bodies_never_crash_the_reader(data):
    for body in (data, zstandard.ZstdCompressor().compress(data)):
        try:
            decode_changes(body)
        except ProtocolError:
            pass
