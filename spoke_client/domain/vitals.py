"""Vital signs: the measured values, their plausible ranges, unit conversion and derived values."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from spoke_client.domain.errors import FieldProblem, ValidationFailed
from spoke_client.i18n import _


class Consciousness(enum.StrEnum):
    """ACVPU, as NEWS2 scores it."""

    ALERT = "alert"
    NEW_CONFUSION = "confusion"
    VOICE = "voice"
    PAIN = "pain"
    UNRESPONSIVE = "unresponsive"


class GlucoseKind(enum.StrEnum):
    RANDOM = "random"
    FASTING = "fasting"


@dataclass(frozen=True)
class Vitals:
    """One set of vital signs as measured; every value optional, units in the names."""

    systolic_mmhg: int | None = None
    diastolic_mmhg: int | None = None
    pulse_per_min: int | None = None
    respiratory_rate_per_min: int | None = None
    temperature_c: float | None = None
    spo2_pct: int | None = None
    weight_kg: float | None = None
    height_cm: float | None = None
    glucose_mg_dl: int | None = None
    glucose_kind: GlucoseKind | None = None
    consciousness: Consciousness | None = None
    on_supplemental_oxygen: bool = False


# Values outside these ranges cannot be real readings: refuse them with the range in the message.
PLAUSIBLE: dict[str, tuple[float, float]] = {
    "systolic_mmhg": (50, 300),
    "diastolic_mmhg": (20, 200),
    "pulse_per_min": (20, 250),
    "respiratory_rate_per_min": (4, 100),
    "temperature_c": (25.0, 45.0),
    "spo2_pct": (50, 100),
    "weight_kg": (0.3, 350.0),
    "height_cm": (20.0, 250.0),
    "glucose_mg_dl": (10, 1500),
}
INTEGER_FIELDS = {"systolic_mmhg", "diastolic_mmhg", "pulse_per_min", "respiratory_rate_per_min", "spo2_pct", "glucose_mg_dl"}
FAHRENHEIT_RANGE = (77.0, 113.0)  # 25-45 °C


def _range_message(name: str, low: float, high: float) -> str:

    return {
        "systolic_mmhg": _("Systolic BP must be between {lo} and {hi} mmHg."),
        "diastolic_mmhg": _("Diastolic BP must be between {lo} and {hi} mmHg."),
        "pulse_per_min": _("Pulse must be between {lo} and {hi} beats per minute."),
        "respiratory_rate_per_min": _("Respiratory rate must be between {lo} and {hi} breaths per minute."),
        "temperature_c": _("Temperature must be between {lo} and {hi} °C."),
        "spo2_pct": _("SpO2 must be between {lo} and {hi} %."),
        "weight_kg": _("Weight must be between {lo} and {hi} kg."),
        "height_cm": _("Height must be between {lo} and {hi} cm."),
        "glucose_mg_dl": _("Blood glucose must be between {lo} and {hi} mg/dL."),
    }[name].format(lo=f"{low:g}", hi=f"{high:g}")


def validate_vitals(v: Vitals) -> None:

    problems: list[FieldProblem] = []
    for name, (low, high) in PLAUSIBLE.items():
        value = getattr(v, name)
        if value is not None and not (low <= value <= high):
            problems.append(FieldProblem(name, _range_message(name, low, high)))
    if (v.systolic_mmhg is None) != (v.diastolic_mmhg is None):
        missing = "diastolic_mmhg" if v.diastolic_mmhg is None else "systolic_mmhg"
        problems.append(FieldProblem(missing, _("Enter both halves of the blood pressure (systolic and diastolic).")))
    elif v.systolic_mmhg is not None and v.diastolic_mmhg is not None and v.diastolic_mmhg >= v.systolic_mmhg:
        problems.append(FieldProblem("diastolic_mmhg", _("Diastolic BP must be lower than systolic BP.")))
    if problems:
        raise ValidationFailed(problems)


def parse_measurement(text: str, field: str) -> float | None:
    """'' -> None; '98.6' or ' 98,6 ' -> 98.6; anything else is refused naming the field."""

    cleaned = text.strip().replace(",", ".")
    if not cleaned:
        return None
    try:
        value = float(cleaned)
    except ValueError:
        raise ValidationFailed([FieldProblem(field, _("Enter a number here, like 98 or 37.5."))]) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValidationFailed([FieldProblem(field, _("Enter a number here, like 98 or 37.5."))])
    return value


def fahrenheit_to_celsius(f: float) -> float:
    return round((f - 32) * 5 / 9, 1)


def celsius_to_fahrenheit(c: float) -> float:
    return round(c * 9 / 5 + 32, 1)


def bmi(weight_kg: float | None, height_cm: float | None) -> float | None:
    if not weight_kg or not height_cm:
        return None
    return round(weight_kg / (height_cm / 100) ** 2, 1)


def vitals_from_form(fields: dict[str, str], temperature_unit: str = "C") -> Vitals:
    """Raw text fields (keyed by Vitals field names) to a validated Vitals, every problem reported at once."""

    problems: list[FieldProblem] = []
    values: dict[str, object] = {}
    for name in PLAUSIBLE:
        try:
            value = parse_measurement(fields.get(name, "") or "", name)
        except ValidationFailed as exc:
            problems.extend(exc.problems)
            continue
        if value is None:
            continue
        if name in INTEGER_FIELDS:
            if value != int(value):
                problems.append(FieldProblem(name, _("Enter a whole number here.")))
                continue
            value = int(value)
        if name == "temperature_c":
            if temperature_unit.upper() == "F":
                if not FAHRENHEIT_RANGE[0] <= value <= FAHRENHEIT_RANGE[1]:
                    problems.append(FieldProblem(name, _("Temperature must be between 77 and 113 °F.")))
                    continue
                value = fahrenheit_to_celsius(value)
            elif FAHRENHEIT_RANGE[0] <= value <= FAHRENHEIT_RANGE[1] and value > PLAUSIBLE[name][1]:
                problems.append(FieldProblem(name, _("{v:g} looks like °F: switch the unit to °F, or enter °C.").format(v=value)))
                continue
        values[name] = value
    kind = (fields.get("glucose_kind") or "").strip()
    if kind:
        try:
            values["glucose_kind"] = GlucoseKind(kind)
        except ValueError:
            problems.append(FieldProblem("glucose_kind", _("Choose random or fasting for the glucose reading.")))
    level = (fields.get("consciousness") or "").strip()
    if level:
        try:
            values["consciousness"] = Consciousness(level)
        except ValueError:
            problems.append(FieldProblem("consciousness", _("Choose the level of consciousness from the list.")))
    values["on_supplemental_oxygen"] = (fields.get("on_supplemental_oxygen") or "").strip().lower() in ("1", "true", "yes")
    vitals = Vitals(**values)
    try:
        validate_vitals(vitals)
    except ValidationFailed as exc:
        problems.extend(p for p in exc.problems if p.field not in {q.field for q in problems})
    if problems:
        raise ValidationFailed(problems)
    return vitals


MEASURED_FIELDS = tuple(PLAUSIBLE)


def is_empty(v: Vitals) -> bool:
    return all(getattr(v, name) is None for name in MEASURED_FIELDS)
