"""Red flags: NEWS2 for adults, hypertensive crisis, glucose, SpO2, fever, WHO fast breathing for children."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from spoke_client.domain.vitals import Consciousness, GlucoseKind, Vitals
from spoke_client.i18n import _

ADULT_AGE_DAYS = 16 * 365 + 4   # NEWS2 is not for under-16s
UNDER_FIVE_DAYS = 5 * 365 + 1


class Severity(enum.IntEnum):
    INFO = 0
    LOW = 1
    URGENT = 2
    EMERGENCY = 3


@dataclass(frozen=True)
class PatientContext:
    age_days: int
    pregnant: bool = False


@dataclass(frozen=True)
class RedFlag:
    code: str
    severity: Severity
    message: str
    field: str | None


@dataclass(frozen=True)
class Assessment:
    flags: tuple[RedFlag, ...]
    news2: int | None
    news2_parts: dict[str, int] = field(default_factory=dict)
    news2_note: str | None = None
    level: Severity = Severity.INFO


# --- NEWS2 bands (Royal College of Physicians 2017), SpO2 scale 1 -------------------------------------
def score_respiration(rr: int) -> int:
    return 3 if rr <= 8 else 1 if rr <= 11 else 0 if rr <= 20 else 2 if rr <= 24 else 3


def score_spo2(spo2: int) -> int:
    return 3 if spo2 <= 91 else 2 if spo2 <= 93 else 1 if spo2 <= 95 else 0


def score_systolic(sbp: int) -> int:
    return 3 if sbp <= 90 else 2 if sbp <= 100 else 1 if sbp <= 110 else 0 if sbp <= 219 else 3


def score_pulse(pulse: int) -> int:
    return 3 if pulse <= 40 else 1 if pulse <= 50 else 0 if pulse <= 90 else 1 if pulse <= 110 else 2 if pulse <= 130 else 3


def score_temperature(t: float) -> int:
    t = round(t, 1)
    return 3 if t <= 35.0 else 1 if t <= 36.0 else 0 if t <= 38.0 else 1 if t <= 39.0 else 2


def score_consciousness(c: Consciousness | None) -> int:
    return 0 if c in (None, Consciousness.ALERT) else 3


NEWS2_REQUIRED = ("respiratory_rate_per_min", "spo2_pct", "systolic_mmhg", "pulse_per_min", "temperature_c")


def news2_parts(v: Vitals) -> dict[str, int]:
    """Scores of the parameters present (consciousness counts as alert when not recorded)."""
    parts: dict[str, int] = {}
    if v.respiratory_rate_per_min is not None:
        parts["respiratory_rate_per_min"] = score_respiration(v.respiratory_rate_per_min)
    if v.spo2_pct is not None:
        parts["spo2_pct"] = score_spo2(v.spo2_pct)
    parts["on_supplemental_oxygen"] = 2 if v.on_supplemental_oxygen else 0
    if v.systolic_mmhg is not None:
        parts["systolic_mmhg"] = score_systolic(v.systolic_mmhg)
    if v.pulse_per_min is not None:
        parts["pulse_per_min"] = score_pulse(v.pulse_per_min)
    parts["consciousness"] = score_consciousness(v.consciousness)
    if v.temperature_c is not None:
        parts["temperature_c"] = score_temperature(v.temperature_c)
    return parts


def _parameter_name(name: str) -> str:
    return {
        "respiratory_rate_per_min": _("respiratory rate"), "spo2_pct": _("SpO2"), "systolic_mmhg": _("systolic BP"),
        "pulse_per_min": _("pulse"), "temperature_c": _("temperature"), "consciousness": _("consciousness"),
        "on_supplemental_oxygen": _("supplemental oxygen"),
    }[name]


def fast_breathing_threshold(age_days: int) -> tuple[int, str] | None:
    """WHO IMNCI: the rate at which breathing is fast for the child's age, and how to say it."""
    if age_days < 60:
        return 60, _("(>= 60/min under 2 months)")
    if age_days < 365:
        return 50, _("(>= 50/min at 2-12 months)")
    if age_days < UNDER_FIVE_DAYS:
        return 40, _("(>= 40/min at 1-5 years)")
    return None


def assess(v: Vitals, ctx: PatientContext) -> Assessment:
    flags: list[RedFlag] = []
    adult = ctx.age_days >= ADULT_AGE_DAYS

    def flag(code: str, severity: Severity, message: str, field_: str | None) -> None:
        flags.append(RedFlag(code, severity, message, field_))

    # Blood pressure
    if v.systolic_mmhg is not None and v.diastolic_mmhg is not None:
        s, d = v.systolic_mmhg, v.diastolic_mmhg
        if s >= 180 or d >= 120:
            flag("hypertensive_crisis", Severity.EMERGENCY,
                 _("Hypertensive crisis: BP {s}/{d} mmHg (>= 180/120).").format(s=s, d=d), "systolic_mmhg")
        elif adult and (s >= 140 or d >= 90):
            flag("high_bp", Severity.INFO, _("High blood pressure: {s}/{d} mmHg (>= 140/90).").format(s=s, d=d), "systolic_mmhg")
    if adult and v.systolic_mmhg is not None and v.systolic_mmhg <= 90:
        flag("hypotension", Severity.URGENT, _("Low blood pressure: systolic {s} mmHg (<= 90).").format(s=v.systolic_mmhg),
             "systolic_mmhg")

    # Glucose
    if v.glucose_mg_dl is not None:
        g = v.glucose_mg_dl
        if g < 54:
            flag("hypoglycaemia", Severity.EMERGENCY, _("Severe hypoglycaemia: glucose {g} mg/dL (< 54).").format(g=g), "glucose_mg_dl")
        elif g < 70:
            flag("hypoglycaemia", Severity.URGENT, _("Hypoglycaemia: glucose {g} mg/dL (< 70).").format(g=g), "glucose_mg_dl")
        elif g >= 400:
            flag("hyperglycaemia", Severity.URGENT, _("Very high blood glucose: {g} mg/dL (>= 400).").format(g=g), "glucose_mg_dl")
        elif v.glucose_kind == GlucoseKind.FASTING and g >= 126:
            flag("hyperglycaemia", Severity.LOW, _("High fasting glucose: {g} mg/dL (>= 126).").format(g=g), "glucose_mg_dl")
        elif v.glucose_kind != GlucoseKind.FASTING and g >= 200:
            flag("hyperglycaemia", Severity.LOW, _("High random glucose: {g} mg/dL (>= 200).").format(g=g), "glucose_mg_dl")

    # Oxygen saturation
    if v.spo2_pct is not None:
        o = v.spo2_pct
        if adult and o <= 91:
            flag("low_spo2", Severity.EMERGENCY, _("Low oxygen saturation: SpO2 {o} % (<= 91).").format(o=o), "spo2_pct")
        elif adult and o <= 93:
            flag("low_spo2", Severity.URGENT, _("Low oxygen saturation: SpO2 {o} % (<= 93).").format(o=o), "spo2_pct")
        elif not adult and o < 92:
            flag("low_spo2", Severity.URGENT, _("Low oxygen saturation: SpO2 {o} % (< 92).").format(o=o), "spo2_pct")

    # Temperature
    if v.temperature_c is not None:
        t = v.temperature_c
        if t >= 39.1:
            flag("fever", Severity.URGENT, _("High fever: {t:.1f} °C (>= 39.1).").format(t=t), "temperature_c")
        elif t >= 38.1:
            flag("fever", Severity.LOW, _("Fever: {t:.1f} °C (>= 38.1).").format(t=t), "temperature_c")
        elif t <= 35.0:
            flag("hypothermia", Severity.URGENT, _("Low body temperature: {t:.1f} °C (<= 35.0).").format(t=t), "temperature_c")

    if v.consciousness not in (None, Consciousness.ALERT):
        flag("altered_consciousness", Severity.URGENT, _("Not fully alert: new confusion or reduced consciousness."), "consciousness")

    if adult:
        if v.pulse_per_min is not None:
            p = v.pulse_per_min
            if p >= 131:
                flag("tachycardia", Severity.URGENT, _("Very fast pulse: {p}/min (>= 131).").format(p=p), "pulse_per_min")
            elif p >= 111:
                flag("tachycardia", Severity.LOW, _("Fast pulse: {p}/min (111-130).").format(p=p), "pulse_per_min")
            elif p <= 40:
                flag("bradycardia", Severity.URGENT, _("Very slow pulse: {p}/min (<= 40).").format(p=p), "pulse_per_min")
        if v.respiratory_rate_per_min is not None:
            r = v.respiratory_rate_per_min
            if r >= 25:
                flag("fast_breathing", Severity.URGENT, _("Very fast breathing: {r}/min (>= 25).").format(r=r), "respiratory_rate_per_min")
            elif r <= 8:
                flag("slow_breathing", Severity.URGENT, _("Very slow breathing: {r}/min (<= 8).").format(r=r), "respiratory_rate_per_min")
    else:
        threshold = fast_breathing_threshold(ctx.age_days)
        if threshold and v.respiratory_rate_per_min is not None and v.respiratory_rate_per_min >= threshold[0]:
            flag("fast_breathing", Severity.URGENT, _("Fast breathing for age {band}.").format(band=threshold[1]),
                 "respiratory_rate_per_min")
        if v.weight_kg is None:
            flag("weight_needed", Severity.INFO, _("Record the weight: children's doses depend on it."), "weight_kg")

    # NEWS2: adults only, not in pregnancy, and only with the five measured parameters.
    news2: int | None = None
    parts: dict[str, int] = {}
    note: str | None = None
    if not adult:
        note = _("No adult NEWS2 score: the patient is under 16.")
    elif ctx.pregnant:
        note = _("No NEWS2 score in pregnancy.")
    elif any(getattr(v, name) is None for name in NEWS2_REQUIRED):
        note = _("NEWS2 needs respiratory rate, SpO2, systolic BP, pulse and temperature.")
    else:
        parts = news2_parts(v)
        news2 = sum(parts.values())
        if news2 >= 7:
            flag("news2_emergency", Severity.EMERGENCY, _("NEWS2 score {n} (>= 7): emergency response.").format(n=news2), None)
        elif news2 >= 5:
            flag("news2_urgent", Severity.URGENT, _("NEWS2 score {n} (5-6): urgent review.").format(n=news2), None)
        threes = [name for name, score in parts.items() if score == 3]
        if threes:
            flag("news2_single_3", Severity.URGENT, _("A single NEWS2 parameter scores 3 ({names}): urgent review.").format(
                names=", ".join(_parameter_name(n) for n in threes)), threes[0])

    level = max((f.severity for f in flags), default=Severity.INFO)
    if news2 is not None and news2 > 0:
        level = max(level, Severity.LOW)
    flags.sort(key=lambda f: -f.severity)
    return Assessment(tuple(flags), news2, parts, note, Severity(level))


def assessed(a: Assessment, lang: str) -> dict:
    """An assessment as it is kept with its vitals set and sent to the hub (sync.payloads.Assessed): the hub shows
    these flags as they are, in the language they were written in, and never assesses a second time."""
    return {
        "level": int(a.level), "news2": a.news2, "note": a.news2_note,
        "flags": [{"code": f.code, "severity": int(f.severity), "message": f.message, "field": f.field}
                  for f in a.flags],
        "lang": lang,
    }
