"""Bluetooth SIG health measurement characteristics, decoded (pure Python, no Bluetooth stack).

Blood Pressure 0x2A35, Temperature 0x2A1C, PLX spot-check 0x2A5E and continuous 0x2A5F, Glucose 0x2A18 (with the
Record Access Control Point 0x2A52 for stored records), Weight 0x2A9D. Numbers are IEEE-11073 SFLOAT (16-bit)
or FLOAT (32-bit), little-endian, with special values (NaN, NRes, +/-INF) that are never numbers. Every
payload either decodes into a Measurement or is refused with MalformedMeasurement and a reason; nothing else
escapes a parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from spoke_client.i18n import N_

BLOOD_PRESSURE, TEMPERATURE, PLX_SPOT, PLX_CONTINUOUS, GLUCOSE, WEIGHT, RACP = (
    0x2A35, 0x2A1C, 0x2A5E, 0x2A5F, 0x2A18, 0x2A9D, 0x2A52)
SERVICES = {0x1810: "blood pressure monitor", 0x1809: "thermometer", 0x1822: "pulse oximeter",
            0x1808: "glucometer", 0x181D: "weighing scale"}
MEASUREMENT_OF_SERVICE = {0x1810: BLOOD_PRESSURE, 0x1809: TEMPERATURE, 0x1822: PLX_SPOT, 0x1808: GLUCOSE,
                          0x181D: WEIGHT}

KPA_TO_MMHG = 7.50062
LB_TO_KG = 0.45359237
GLUCOSE_MMOL_TO_MG_DL = 18.016


class MalformedMeasurement(ValueError):
    """A payload that is too short, too long, or holds values its layout does not allow."""


class Special(str):
    """An IEEE-11073 special value: 'NaN', 'NRes' (not at this resolution), '+INF', '-INF', 'reserved'."""


NAN, NRES, PLUS_INF, MINUS_INF, RESERVED = (Special(x) for x in ("NaN", "NRes", "+INF", "-INF", "reserved"))
_SFLOAT_SPECIAL = {0x07FF: NAN, 0x0800: NRES, 0x07FE: PLUS_INF, 0x0802: MINUS_INF, 0x0801: RESERVED}
_FLOAT_SPECIAL = {0x7FFFFF: NAN, 0x800000: NRES, 0x7FFFFE: PLUS_INF, 0x800002: MINUS_INF, 0x800001: RESERVED}


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def sfloat(raw: int) -> float | Special:
    """16 bits: a 4-bit signed exponent over a 12-bit signed mantissa."""
    mantissa = raw & 0x0FFF
    if mantissa in _SFLOAT_SPECIAL:   # the specials are defined on the mantissa with exponent 0
        if raw >> 12 == 0:
            return _SFLOAT_SPECIAL[mantissa]
    exponent = _signed(raw >> 12, 4)
    return _scaled(_signed(mantissa, 12), exponent)


def float32(raw: int) -> float | Special:
    """32 bits: an 8-bit signed exponent over a 24-bit signed mantissa."""
    mantissa = raw & 0xFFFFFF
    if mantissa in _FLOAT_SPECIAL and raw >> 24 == 0:
        return _FLOAT_SPECIAL[mantissa]
    return _scaled(_signed(mantissa, 24), _signed(raw >> 24, 8))


def _scaled(mantissa: int, exponent: int) -> float:
    value = mantissa * (10.0 ** exponent)
    return round(value, -exponent) if exponent < 0 else float(value)


@dataclass(frozen=True)
class Quantity:
    value: float | Special
    unit: str
    original_value: float | Special | None = None   # as the device sent it, when converted
    original_unit: str | None = None

    @property
    def is_number(self) -> bool:
        return not isinstance(self.value, Special)


@dataclass(frozen=True)
class Measurement:
    characteristic: int
    kind: str                                   # "blood pressure", "temperature", ...
    values: dict[str, Quantity]
    time: datetime | None                       # None: the device sent none, or an unknown date
    flags: dict[str, bool]
    status: tuple[str, ...] = ()                # what matters clinically, in plain words
    extra: dict[str, object] = field(default_factory=dict)


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = bytes(data), 0, what

    def need(self, n: int, field_name: str) -> bytes:
        if self.pos + n > len(self.data):
            raise MalformedMeasurement(f"{self.what} payload is {len(self.data)} bytes: too short for its {field_name} "
                                       f"(its flags need at least {self.pos + n})")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u8(self, name: str) -> int:
        return self.need(1, name)[0]

    def u16(self, name: str) -> int:
        return int.from_bytes(self.need(2, name), "little")

    def s16(self, name: str) -> int:
        return _signed(self.u16(name), 16)

    def u24(self, name: str) -> int:
        return int.from_bytes(self.need(3, name), "little")

    def sfloat(self, name: str) -> float | Special:
        return sfloat(self.u16(name))

    def float32(self, name: str) -> float | Special:
        return float32(int.from_bytes(self.need(4, name), "little"))

    def datetime(self, name: str = "time stamp") -> datetime | None:
        raw = self.need(7, name)
        year = int.from_bytes(raw[:2], "little")
        month, day, hour, minute, second = raw[2:]
        if year == 0 or month == 0 or day == 0:
            return None   # "unknown" by the specification: never invented
        try:
            return datetime(year, month, day, hour, minute, second)
        except ValueError:
            raise MalformedMeasurement(f"{self.what} {name} is not a date: {year}-{month}-{day} {hour}:{minute}:{second}") from None

    def end(self) -> None:
        if self.pos != len(self.data):
            raise MalformedMeasurement(f"{self.what} payload has {len(self.data) - self.pos} bytes more than its flags "
                                       f"announce ({len(self.data)} bytes, {self.pos} expected)")


def _bits(value: int, names: dict[int, str]) -> tuple[str, ...]:
    return tuple(name for bit, name in names.items() if value & (1 << bit))


def _convert(value: float | Special, factor: float, digits: int) -> float | Special:
    return value if isinstance(value, Special) else round(value * factor, digits)


# --- Blood pressure 0x2A35 -------------------------------------------------------------------------
# What a device reports, in plain words: stored and synced as written here, shown through _() in the UI's language.
_BP_STATUS = {0: N_("body movement"), 1: N_("cuff too loose"), 2: N_("irregular pulse"),
              5: N_("improper measurement position")}


def parse_blood_pressure(data: bytes) -> Measurement:
    r = _Reader(data, "Blood pressure")
    flags = r.u8("flags")
    if flags & 0xE0:
        raise MalformedMeasurement(f"Blood pressure flags 0x{flags:02X} set reserved bits")
    kpa = bool(flags & 0x01)
    readings = {name: r.sfloat(name) for name in ("systolic", "diastolic", "mean arterial pressure")}
    when = r.datetime() if flags & 0x02 else None
    pulse = r.sfloat("pulse rate") if flags & 0x04 else None
    user = r.u8("user id") if flags & 0x08 else None
    status_word = r.u16("status") if flags & 0x10 else None
    r.end()
    values = {}
    for name, v in readings.items():
        values[name] = (Quantity(_convert(v, KPA_TO_MMHG, 0), "mmHg", v, "kPa") if kpa else Quantity(v, "mmHg"))
    if pulse is not None:
        values["pulse rate"] = Quantity(pulse, "/min")
    status: tuple[str, ...] = ()
    if status_word is not None:
        status = _bits(status_word, _BP_STATUS)
        rate_range = (status_word >> 3) & 0x03
        status += {0: (), 1: ("pulse rate above the device's range",), 2: ("pulse rate below the device's range",),
                   3: ()}[rate_range]
    extra: dict[str, object] = {}
    if user is not None:
        extra["user"] = user
    if status_word is not None:
        extra["status_word"] = f"0x{status_word:04X}"
    return Measurement(BLOOD_PRESSURE, "blood pressure", values, when,
                       {"kPa": kpa, "time stamp": bool(flags & 0x02), "pulse rate": bool(flags & 0x04),
                        "user id": bool(flags & 0x08), "status": bool(flags & 0x10)}, status, extra)


# --- Temperature 0x2A1C -----------------------------------------------------------------------------
TEMPERATURE_SITES = {1: "armpit", 2: "body (general)", 3: "ear", 4: "finger", 5: "gastro-intestinal tract",
                     6: "mouth", 7: "rectum", 8: "toe", 9: "tympanum (ear drum)"}


def parse_temperature(data: bytes) -> Measurement:
    r = _Reader(data, "Temperature")
    flags = r.u8("flags")
    if flags & 0xF8:
        raise MalformedMeasurement(f"Temperature flags 0x{flags:02X} set reserved bits")
    fahrenheit = bool(flags & 0x01)
    t = r.float32("temperature")
    when = r.datetime() if flags & 0x02 else None
    site_code = r.u8("temperature type") if flags & 0x04 else None
    r.end()
    if fahrenheit:
        celsius = t if isinstance(t, Special) else round((t - 32) * 5 / 9, 2)
        values = {"temperature": Quantity(celsius, "°C", t, "°F")}
    else:
        values = {"temperature": Quantity(t, "°C")}
    extra: dict[str, object] = {}
    if site_code is not None:
        if site_code not in TEMPERATURE_SITES:
            raise MalformedMeasurement(f"Temperature type {site_code} is not a defined body site")
        extra["site"] = TEMPERATURE_SITES[site_code]
    return Measurement(TEMPERATURE, "temperature", values, when,
                       {"°F": fahrenheit, "time stamp": bool(flags & 0x02), "temperature type": bool(flags & 0x04)},
                       (), extra)


# --- Pulse oximeter 0x2A5E, 0x2A5F ------------------------------------------------------------------
_PLX_MEASUREMENT = {5: N_("measurement ongoing"), 6: N_("early estimate"), 9: N_("from the device's memory"),
                    10: N_("demonstration data"), 11: N_("test data"), 12: N_("calibration ongoing"),
                    13: N_("measurement unavailable"), 14: N_("signal questionable"), 15: N_("invalid measurement")}
_PLX_DEVICE = {1: N_("equipment malfunction"), 2: N_("signal processing irregularity"), 3: N_("inadequate signal"),
               4: N_("poor signal"), 5: N_("low perfusion"), 6: N_("erratic signal"), 7: N_("non-pulsatile signal"),
               8: N_("questionable pulse"), 10: N_("sensor interference"), 11: N_("sensor not on the patient"),
               12: N_("unknown sensor"), 13: N_("sensor displaced"), 14: N_("sensor malfunctioning"),
               15: N_("sensor disconnected")}


def _plx_status(r: _Reader, measurement: bool, device: bool) -> tuple[tuple[str, ...], dict[str, object]]:
    status: tuple[str, ...] = ()
    extra: dict[str, object] = {}
    if measurement:
        word = r.u16("measurement status")
        status += _bits(word, _PLX_MEASUREMENT)
        extra["measurement_status"] = f"0x{word:04X}"
    if device:
        word = r.u24("device and sensor status")
        status += _bits(word, _PLX_DEVICE)
        extra["device_status"] = f"0x{word:06X}"
    return status, extra


def parse_plx_spot(data: bytes) -> Measurement:
    r = _Reader(data, "Pulse oximeter (spot check)")
    flags = r.u8("flags")
    if flags & 0xE0:
        raise MalformedMeasurement(f"Pulse oximeter flags 0x{flags:02X} set reserved bits")
    values = {"SpO2": Quantity(r.sfloat("SpO2"), "%"), "pulse rate": Quantity(r.sfloat("pulse rate"), "/min")}
    when = r.datetime() if flags & 0x01 else None
    status, extra = _plx_status(r, bool(flags & 0x02), bool(flags & 0x04))
    if flags & 0x08:
        values["pulse amplitude index"] = Quantity(r.sfloat("pulse amplitude index"), "%")
    r.end()
    if flags & 0x10:
        extra["device_clock_not_set"] = True
    return Measurement(PLX_SPOT, "pulse oximetry", values, when,
                       {"time stamp": bool(flags & 0x01), "measurement status": bool(flags & 0x02),
                        "device and sensor status": bool(flags & 0x04), "pulse amplitude index": bool(flags & 0x08),
                        "device clock not set": bool(flags & 0x10)}, status, extra)


def parse_plx_continuous(data: bytes) -> Measurement:
    r = _Reader(data, "Pulse oximeter (continuous)")
    flags = r.u8("flags")
    if flags & 0xE0:
        raise MalformedMeasurement(f"Pulse oximeter flags 0x{flags:02X} set reserved bits")
    values = {"SpO2": Quantity(r.sfloat("SpO2"), "%"), "pulse rate": Quantity(r.sfloat("pulse rate"), "/min")}
    for bit, label in ((0x01, "fast"), (0x02, "slow")):
        if flags & bit:
            values[f"SpO2 ({label})"] = Quantity(r.sfloat(f"SpO2 ({label})"), "%")
            values[f"pulse rate ({label})"] = Quantity(r.sfloat(f"pulse rate ({label})"), "/min")
    status, extra = _plx_status(r, bool(flags & 0x04), bool(flags & 0x08))
    if flags & 0x10:
        values["pulse amplitude index"] = Quantity(r.sfloat("pulse amplitude index"), "%")
    r.end()
    return Measurement(PLX_CONTINUOUS, "pulse oximetry", values, None,
                       {"fast": bool(flags & 0x01), "slow": bool(flags & 0x02), "measurement status": bool(flags & 0x04),
                        "device and sensor status": bool(flags & 0x08), "pulse amplitude index": bool(flags & 0x10)},
                       status, extra)


# --- Glucose 0x2A18 ---------------------------------------------------------------------------------
GLUCOSE_SAMPLES = {1: "capillary whole blood", 2: "capillary plasma", 3: "venous whole blood", 4: "venous plasma",
                   5: "arterial whole blood", 6: "arterial plasma", 7: "whole blood", 8: "plasma",
                   9: "interstitial fluid", 10: "control solution"}
GLUCOSE_SITES = {1: "finger", 2: "alternate site", 3: "earlobe", 4: "control solution", 15: "not available"}
_GLUCOSE_STATUS = {0: N_("device battery low"), 1: N_("sensor malfunction"), 2: N_("sample too small"),
                   3: N_("strip insertion error"), 4: N_("wrong strip type"), 5: N_("result above the device's range"),
                   6: N_("result below the device's range"), 7: N_("sensor too hot"), 8: N_("sensor too cold"),
                   9: N_("strip pulled out too soon"), 10: N_("device fault"), 11: N_("device time fault")}


def parse_glucose(data: bytes) -> Measurement:
    from datetime import timedelta

    r = _Reader(data, "Glucose")
    flags = r.u8("flags")
    if flags & 0xE0:
        raise MalformedMeasurement(f"Glucose flags 0x{flags:02X} set reserved bits")
    sequence = r.u16("sequence number")
    base = r.datetime("base time")
    offset = r.s16("time offset") if flags & 0x01 else 0
    values: dict[str, Quantity] = {}
    extra: dict[str, object] = {"sequence": sequence}
    if flags & 0x02:
        concentration = r.sfloat("concentration")
        type_location = r.u8("type and sample location")
        sample, site = type_location & 0x0F, type_location >> 4
        if sample not in GLUCOSE_SAMPLES or site not in GLUCOSE_SITES:
            raise MalformedMeasurement(f"Glucose type {sample} or sample location {site} is not defined")
        if flags & 0x04:   # mol/L -> mmol/L -> mg/dL
            mmol = _convert(concentration, 1000, 2)
            values["glucose"] = Quantity(_convert(mmol, GLUCOSE_MMOL_TO_MG_DL, 0), "mg/dL", concentration, "mol/L")
        else:              # kg/L -> mg/dL
            values["glucose"] = Quantity(_convert(concentration, 100_000, 0), "mg/dL", concentration, "kg/L")
        extra["sample"], extra["site"] = GLUCOSE_SAMPLES[sample], GLUCOSE_SITES[site]
    status: tuple[str, ...] = ()
    if flags & 0x08:
        word = r.u16("sensor status annunciation")
        status = _bits(word, _GLUCOSE_STATUS)
        extra["sensor_status"] = f"0x{word:04X}"
    r.end()
    when = base + timedelta(minutes=offset) if base is not None else None
    if flags & 0x10:
        extra["context_follows"] = True
    return Measurement(GLUCOSE, "blood glucose", values, when,
                       {"time offset": bool(flags & 0x01), "concentration": bool(flags & 0x02),
                        "mol/L": bool(flags & 0x04), "sensor status": bool(flags & 0x08),
                        "context follows": bool(flags & 0x10)}, status, extra)


# --- Weight 0x2A9D ----------------------------------------------------------------------------------
def parse_weight(data: bytes) -> Measurement:
    r = _Reader(data, "Weight")
    flags = r.u8("flags")
    if flags & 0xF0:
        raise MalformedMeasurement(f"Weight flags 0x{flags:02X} set reserved bits")
    imperial = bool(flags & 0x01)
    raw = r.u16("weight")
    when = r.datetime() if flags & 0x02 else None
    user = r.u8("user id") if flags & 0x04 else None
    bmi_raw = height_raw = None
    if flags & 0x08:
        bmi_raw, height_raw = r.u16("BMI"), r.u16("height")
    r.end()
    status: tuple[str, ...] = ()
    if raw == 0xFFFF:
        weight = Quantity(NAN, "kg")
        status = (N_("measurement unsuccessful"),)
    elif imperial:
        lb = round(raw * 0.01, 2)
        weight = Quantity(round(lb * LB_TO_KG, 2), "kg", lb, "lb")
    else:
        weight = Quantity(round(raw * 0.005, 3), "kg")
    values = {"weight": weight}
    if bmi_raw is not None:
        values["BMI"] = Quantity(round(bmi_raw * 0.1, 1), "kg/m2")
        if imperial:
            inches = round(height_raw * 0.1, 1)
            values["height"] = Quantity(round(inches * 2.54, 1), "cm", inches, "in")
        else:
            values["height"] = Quantity(round(height_raw * 0.1, 1), "cm", round(height_raw * 0.001, 3), "m")
    extra: dict[str, object] = {"user": user} if user is not None else {}
    return Measurement(WEIGHT, "weight", values, when,
                       {"imperial": imperial, "time stamp": bool(flags & 0x02), "user id": bool(flags & 0x04),
                        "BMI and height": bool(flags & 0x08)}, status, extra)


# --- Record Access Control Point 0x2A52 (stored glucose records) -------------------------------------
RACP_REPORT, RACP_COUNT, RACP_COUNT_RESPONSE, RACP_RESPONSE = 0x01, 0x04, 0x05, 0x06
RACP_CODES = {1: "success", 2: "op code not supported", 3: "invalid operator", 4: "operator not supported",
              5: "invalid operand", 6: "no records found", 7: "abort unsuccessful", 8: "procedure not completed",
              9: "operand not supported"}


def racp_report_all() -> bytes:
    return bytes([RACP_REPORT, 0x01])


def racp_report_from(sequence: int) -> bytes:
    """Records with a sequence number greater than or equal to `sequence` (filter type 1: sequence number)."""
    if not 0 <= sequence <= 0xFFFF:
        raise MalformedMeasurement("A glucose sequence number is 0 to 65535")
    return bytes([RACP_REPORT, 0x03, 0x01]) + sequence.to_bytes(2, "little")


def racp_count_all() -> bytes:
    return bytes([RACP_COUNT, 0x01])


@dataclass(frozen=True)
class RacpResponse:
    request: int | None            # the op code answered (for a response code)
    code: str | None               # "success", "no records found", ...
    count: int | None = None       # for a number-of-records response

    @property
    def ok(self) -> bool:
        return self.code in ("success", None) or self.code == "no records found"


def parse_racp(data: bytes) -> RacpResponse:
    r = _Reader(data, "Record access control point")
    op = r.u8("op code")
    operator = r.u8("operator")
    if operator != 0:
        raise MalformedMeasurement(f"A control point response has operator {operator}; it must be 0 (null)")
    if op == RACP_COUNT_RESPONSE:
        count = r.u16("number of records")
        r.end()
        return RacpResponse(RACP_COUNT, None, count)
    if op == RACP_RESPONSE:
        request, code = r.u8("request op code"), r.u8("response code")
        r.end()
        if code not in RACP_CODES:
            raise MalformedMeasurement(f"Control point response code {code} is not defined")
        return RacpResponse(request, RACP_CODES[code])
    raise MalformedMeasurement(f"Op code {op} is not a control point response")


# --- dispatch and JSON ------------------------------------------------------------------------------
PARSERS = {BLOOD_PRESSURE: parse_blood_pressure, TEMPERATURE: parse_temperature, PLX_SPOT: parse_plx_spot,
           PLX_CONTINUOUS: parse_plx_continuous, GLUCOSE: parse_glucose, WEIGHT: parse_weight}


def decode(characteristic: int, payload: bytes) -> Measurement:
    parser = PARSERS.get(characteristic)
    if parser is None:
        raise MalformedMeasurement(f"0x{characteristic:04X} is not a health measurement characteristic this version "
                                   f"reads (it reads {', '.join(f'0x{c:04X}' for c in PARSERS)})")
    if not payload:
        raise MalformedMeasurement("The payload is empty")
    return parser(payload)


def parse_hex(text: str) -> bytes:
    """'1E 8A 00', '1e8a00' or '1E:8A:00' -> bytes."""
    cleaned = "".join(ch for ch in text if ch not in " :-,\t\n").removeprefix("0x")
    if len(cleaned) % 2:
        raise MalformedMeasurement("The hex text has an odd number of digits")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise MalformedMeasurement("The text is not hexadecimal bytes (e.g. '1E 8A 00')") from None


def parse_characteristic(text: str) -> int:
    """'0x2A35' or '2A35' (hexadecimal, as the specifications write them)."""
    try:
        return int(text.strip(), 16)
    except ValueError:
        raise MalformedMeasurement(f"'{text}' is not a characteristic number like 0x2A35") from None


def to_json_dict(m: Measurement) -> dict:
    def number(v):
        return str(v) if isinstance(v, Special) else v

    values = {}
    for name, q in m.values.items():
        entry = {"value": number(q.value), "unit": q.unit}
        if q.original_unit is not None:
            entry["as_sent"] = {"value": number(q.original_value), "unit": q.original_unit}
        values[name] = entry
    return {"characteristic": f"0x{m.characteristic:04X}", "kind": m.kind, "values": values,
            "time": m.time.isoformat() if m.time else None, "flags": m.flags, "status": list(m.status),
            **({"extra": m.extra} if m.extra else {})}
