"""Bluetooth SIG health measurements: the worked examples of DOMAIN.md, vectors built from the layouts for every
flag combination, special values, unit conversions, unknown dates, truncated and over-long payloads, and the
property that no payload crashes a parser: it decodes, or it is refused with a reason."""

from __future__ import annotations

import struct
import subprocess
import sys
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spoke_client.domain import gatt
from spoke_client.domain.gatt import MalformedMeasurement, Special, decode, parse_hex


def h(text: str) -> bytes:
    return parse_hex(text)


# --- the worked examples ---------------------------------------------------------------------------
def test_worked_example_blood_pressure():
    m = decode(0x2A35, h("1E 8A 00 58 00 78 00 00 00 04 11 14 29 3B 3C 00 01 27 00"))
    assert [m.values[k].value for k in ("systolic", "diastolic", "mean arterial pressure", "pulse rate")] == [138, 88, 120, 60]
    assert m.values["systolic"].unit == "mmHg" and m.time is None, "a date with year 0 is unknown, not invented"
    assert m.extra["user"] == 1 and m.extra["status_word"] == "0x0027"
    assert m.status == ("body movement", "cuff too loose", "irregular pulse", "improper measurement position")


def test_worked_example_temperature():
    m = decode(0x2A1C, h("06 B0 0E 00 FE DC 07 0C 05 0B 32 1B 04"))
    assert m.values["temperature"].value == 37.6 and m.values["temperature"].unit == "°C"
    assert m.time == datetime(2012, 12, 5, 11, 50, 27) and m.extra["site"] == "finger"


def test_worked_examples_weight():
    assert decode(0x2A9D, h("00 B0 36")).values["weight"].value == 70.0
    lb = decode(0x2A9D, h("01 54 3D")).values["weight"]
    assert (lb.original_value, lb.original_unit, lb.value, lb.unit) == (157.0, "lb", 71.21, "kg")


# --- numbers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, value", [(0x07FF, "NaN"), (0x0800, "NRes"), (0x07FE, "+INF"), (0x0802, "-INF"),
                                        (0x0801, "reserved"), (0x0072, 114.0), (0xF48A, 116.2), (0x0FFF, -1.0),
                                        (0xE7FF, 20.47), (0x2001, 100.0)])
def test_sfloat(raw, value):
    got = gatt.sfloat(raw)
    assert got == value and isinstance(got, Special) == isinstance(value, str)


@pytest.mark.parametrize("raw, value", [(0x007FFFFF, "NaN"), (0x00800000, "NRes"), (0x007FFFFE, "+INF"),
                                        (0x00800002, "-INF"), (0xFE000EB0, 37.6), (0xFFFFFFFF, -0.1), (0x01000005, 50.0)])
def test_float32(raw, value):
    assert gatt.float32(raw) == value


# --- vectors from the layouts, every flag combination ------------------------------------------------
def sf(value: int, exponent: int = 0) -> bytes:
    return struct.pack("<H", ((exponent & 0xF) << 12) | (value & 0x0FFF))


def fl(mantissa: int, exponent: int) -> bytes:
    return struct.pack("<I", ((exponent & 0xFF) << 24) | (mantissa & 0xFFFFFF))


def dt(y=2026, mo=11, d=24, hh=9, mi=30, ss=5) -> bytes:
    return struct.pack("<HBBBBB", y, mo, d, hh, mi, ss)


@pytest.mark.parametrize("flags", range(32))
def test_blood_pressure_every_flag_combination(flags):
    body = bytes([flags]) + sf(1600, -1) + sf(1000, -1) + sf(1200, -1)   # 160.0 / 100.0 / 120.0 in kPa or mmHg
    if flags & 2:
        body += dt()
    if flags & 4:
        body += sf(72)
    if flags & 8:
        body += bytes([3])
    if flags & 16:
        body += struct.pack("<H", 0b1_0000_0100)   # irregular pulse, and bit 8 (reserved) ignored
    m = decode(0x2A35, body)
    kpa = bool(flags & 1)
    assert m.values["systolic"].value == (round(160.0 * 7.50062) if kpa else 160.0)
    assert (m.values["systolic"].original_unit == "kPa") == kpa
    assert (m.time == datetime(2026, 11, 24, 9, 30, 5)) == bool(flags & 2)
    assert ("pulse rate" in m.values) == bool(flags & 4)
    assert (m.extra.get("user") == 3) == bool(flags & 8)
    assert (m.status == ("irregular pulse",)) == bool(flags & 16)
    with pytest.raises(MalformedMeasurement, match="too short"):
        decode(0x2A35, body[:-1])
    with pytest.raises(MalformedMeasurement, match="more than its flags"):
        decode(0x2A35, body + b"\x00")


@pytest.mark.parametrize("flags", range(8))
def test_temperature_every_flag_combination(flags):
    body = bytes([flags]) + (fl(986, -1) if flags & 1 else fl(3700, -2))
    if flags & 2:
        body += dt()
    if flags & 4:
        body += bytes([9])
    m = decode(0x2A1C, body)
    assert m.values["temperature"].value == 37.0
    if flags & 1:
        assert (m.values["temperature"].original_value, m.values["temperature"].original_unit) == (98.6, "°F")
    assert (m.extra.get("site") == "tympanum (ear drum)") == bool(flags & 4)
    with pytest.raises(MalformedMeasurement):
        decode(0x2A1C, body[:-1])
    with pytest.raises(MalformedMeasurement):
        decode(0x2A1C, body + b"\x01")


@pytest.mark.parametrize("flags", range(16))
def test_weight_every_flag_combination(flags):
    imperial = bool(flags & 1)
    body = bytes([flags]) + struct.pack("<H", 15700 if imperial else 14000)
    if flags & 2:
        body += dt(mo=0)   # month unknown
    if flags & 4:
        body += bytes([2])
    if flags & 8:
        body += struct.pack("<HH", 243, 665 if imperial else 1700)   # BMI 24.3; 66.5 in or 1.700 m
    m = decode(0x2A9D, body)
    assert m.values["weight"].value == (71.21 if imperial else 70.0) and m.time is None
    if flags & 8:
        assert m.values["BMI"].value == 24.3
        assert m.values["height"].value == (168.9 if imperial else 170.0)
    assert (m.extra.get("user") == 2) == bool(flags & 4)


@pytest.mark.parametrize("flags", range(32))
def test_plx_spot_every_flag_combination(flags):
    body = bytes([flags]) + sf(97) + sf(88)
    if flags & 1:
        body += dt()
    if flags & 2:
        body += struct.pack("<H", 1 << 14)             # questionable measurement
    if flags & 4:
        body += (1 << 5 | 1 << 13).to_bytes(3, "little")   # low perfusion, sensor displaced
    if flags & 8:
        body += sf(25, -1)
    m = decode(0x2A5E, body)
    assert (m.values["SpO2"].value, m.values["pulse rate"].value) == (97, 88)
    assert ("signal questionable" in m.status) == bool(flags & 2)
    assert (("low perfusion" in m.status) and ("sensor displaced" in m.status)) == bool(flags & 4)
    assert (m.values.get("pulse amplitude index", None) is not None) == bool(flags & 8)
    assert m.flags["device clock not set"] == bool(flags & 16)
    with pytest.raises(MalformedMeasurement):
        decode(0x2A5E, body + b"\x00")


@pytest.mark.parametrize("flags", range(32))
def test_plx_continuous_every_flag_combination(flags):
    body = bytes([flags]) + sf(96) + sf(90)
    if flags & 1:
        body += sf(95) + sf(91)
    if flags & 2:
        body += sf(97) + sf(89)
    if flags & 4:
        body += struct.pack("<H", 0)
    if flags & 8:
        body += (1 << 4).to_bytes(3, "little")   # poor signal
    if flags & 16:
        body += sf(30, -1)
    m = decode(0x2A5F, body)
    assert m.values["SpO2"].value == 96 and ("SpO2 (fast)" in m.values) == bool(flags & 1)
    assert ("SpO2 (slow)" in m.values) == bool(flags & 2) and ("poor signal" in m.status) == bool(flags & 8)
    with pytest.raises(MalformedMeasurement):
        decode(0x2A5F, body[:-1])


@pytest.mark.parametrize("flags", range(32))
def test_glucose_every_flag_combination(flags):
    body = bytes([flags]) + struct.pack("<H", 41) + dt(hh=7, mi=0, ss=0)
    if flags & 1:
        body += struct.pack("<h", -30)
    if flags & 2:
        body += (sf(70, -4) if flags & 4 else sf(126, -5)) + bytes([0x11])   # 0.0070 mol/L; 0.00126 kg/L; finger, capillary
    if flags & 8:
        body += struct.pack("<H", 1 << 3)   # strip insertion error
    m = decode(0x2A18, body)
    assert m.extra["sequence"] == 41
    assert m.time == (datetime(2026, 11, 24, 6, 30) if flags & 1 else datetime(2026, 11, 24, 7, 0))
    if flags & 2:
        g = m.values["glucose"]
        assert g.unit == "mg/dL" and g.value == 126.0   # 7.0 mmol/L x 18.016 = 126.1; 0.00126 kg/L = 126 mg/dL
        assert (g.original_unit, g.original_value) == (("mol/L", 0.007) if flags & 4 else ("kg/L", 0.00126))
        assert (m.extra["sample"], m.extra["site"]) == ("capillary whole blood", "finger")
    assert (m.status == ("strip insertion error",)) == bool(flags & 8)


# --- special values, units, refusals ----------------------------------------------------------------
def test_a_special_value_is_never_a_number():
    m = decode(0x2A35, bytes([0]) + sf(0x7FF) + sf(80) + sf(100))
    assert m.values["systolic"].value == "NaN" and not m.values["systolic"].is_number
    assert m.values["diastolic"].is_number
    kpa = decode(0x2A35, bytes([1]) + struct.pack("<H", 0x0802) + sf(80, -1) + sf(100, -1))
    assert kpa.values["systolic"].value == "-INF", "a special value is not converted"
    assert decode(0x2A9D, bytes([0]) + struct.pack("<H", 0xFFFF)).status == ("measurement unsuccessful",)


@pytest.mark.parametrize("characteristic, payload, words", [
    (0x2A35, "", "empty"),
    (0x2A35, "E0 00 00 00 00 00 00", "reserved bits"),
    (0x2A1C, "04 B0 0E 00 FE 0A", "not a defined body site"),
    (0x2A1C, "02 B0 0E 00 FE DC 07 0D 05 0B 32 1B", "not a date"),
    (0x2A18, "02 01 00 DC 07 0C 05 0B 32 1B 7E B0 FF", "not defined"),
    (0x2A37, "00 48", "not a health measurement characteristic"),
])
def test_refusals_give_a_reason(characteristic, payload, words):
    with pytest.raises(MalformedMeasurement, match=words):
        decode(characteristic, h(payload))


@pytest.mark.parametrize("text, ok", [("1E 8A 00", True), ("1e8a00", True), ("1E:8A:00", True), ("1E 8", False),
                                      ("zz", False)])
def test_hex_forms(text, ok):
    if ok:
        assert parse_hex(text) == b"\x1e\x8a\x00"
    else:
        with pytest.raises(MalformedMeasurement):
            parse_hex(text)


def test_racp_requests_and_responses():
    assert gatt.racp_report_all() == b"\x01\x01"
    assert gatt.racp_report_from(300) == b"\x01\x03\x01\x2c\x01"
    assert gatt.racp_count_all() == b"\x04\x01"
    assert gatt.parse_racp(b"\x05\x00\x0c\x00").count == 12
    done = gatt.parse_racp(b"\x06\x00\x01\x01")
    assert (done.request, done.code, done.ok) == (1, "success", True)
    assert gatt.parse_racp(b"\x06\x00\x01\x06").code == "no records found"
    for bad in (b"\x06\x00\x01\x0a", b"\x06\x01\x01\x01", b"\x07\x00", b"\x05\x00\x01"):
        with pytest.raises(MalformedMeasurement):
            gatt.parse_racp(bad)


# --- property: no payload crashes a parser ----------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(gatt.PARSERS) + [gatt.RACP]), st.binary(max_size=40))
def test_any_payload_decodes_or_is_refused_with_a_reason(characteristic, payload):
    try:
        if characteristic == gatt.RACP:
            gatt.parse_racp(payload)
        else:
            m = decode(characteristic, payload)
            gatt.to_json_dict(m)
    except MalformedMeasurement as exc:
        assert str(exc)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 31), st.integers(-2048, 2047), st.integers(-8, 7), st.booleans())
def test_built_blood_pressure_round_trips(flags, mantissa, exponent, unknown_date):
    assume_number = (mantissa & 0xFFF) not in (0x7FF, 0x800, 0x7FE, 0x802, 0x801) or exponent != 0
    body = bytes([flags]) + sf(mantissa, exponent) * 3
    body += dt(y=0 if unknown_date else 2026) if flags & 2 else b""
    body += sf(60) if flags & 4 else b""
    body += b"\x01" if flags & 8 else b""
    body += b"\x00\x00" if flags & 16 else b""
    m = decode(0x2A35, body)
    if assume_number and not flags & 1:
        assert m.values["systolic"].value == pytest.approx(mantissa * 10.0 ** exponent)
    assert m.time is None if (unknown_date or not flags & 2) else m.time is not None


# --- the technicians' command ---------------------------------------------------------------------
def test_the_decode_command(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "spoke_client", "devices", "decode", *args],
                              capture_output=True, text=True, timeout=60)

    ok = run("--characteristic", "0x2A35", "--hex", "1E 8A 00 58 00 78 00 00 00 04 11 14 29 3B 3C 00 01 27 00")
    assert ok.returncode == 0, ok.stderr
    import json

    out = json.loads(ok.stdout)
    assert out["values"]["systolic"] == {"value": 138.0, "unit": "mmHg"} and out["time"] is None
    assert "irregular pulse" in out["status"]
    short = run("--characteristic", "0x2A35", "--hex", "1E 8A")
    assert short.returncode == 2 and "too short" in short.stderr
    unknown = run("--characteristic", "0x2A37", "--hex", "00 48")
    assert unknown.returncode == 2 and "not a health measurement" in unknown.stderr
