"""Vital signs: the measured values, their plausible ranges, unit conversion and derived values."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
