"""NEWS2 bands at every boundary (DOMAIN.md), the clinical flags, and the journeys of SCENARIOS.md."""

import pytest

from spoke_client.domain.redflags import (
    PatientContext,
    Severity,
    assess,
    score_pulse,
    score_respiration,
    score_spo2,
    score_systolic,
    score_temperature,
)
from spoke_client.domain.vitals import Consciousness, GlucoseKind, Vitals

ADULT = PatientContext(age_days=40 * 365)
CALM = dict(respiratory_rate_per_min=16, spo2_pct=98, systolic_mmhg=120, diastolic_mmhg=80, pulse_per_min=72,
            temperature_c=36.8)


@pytest.mark.parametrize("rr,score", [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3)])
def test_respiration_bands(rr, score):
    assert score_respiration(rr) == score


@pytest.mark.parametrize("spo2,score", [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0)])
def test_spo2_bands(spo2, score):
    assert score_spo2(spo2) == score


@pytest.mark.parametrize("sbp,score", [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)])
def test_systolic_bands(sbp, score):
    assert score_systolic(sbp) == score


@pytest.mark.parametrize("pulse,score", [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2),
                                         (130, 2), (131, 3)])
def test_pulse_bands(pulse, score):
    assert score_pulse(pulse) == score


@pytest.mark.parametrize("t,score", [(35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1), (39.1, 2)])
def test_temperature_bands(t, score):
    assert score_temperature(t) == score


def test_calm_adult_scores_zero_and_no_flags():
    a = assess(Vitals(**CALM), ADULT)
    assert a.news2 == 0 and a.flags == () and a.level == Severity.INFO


@pytest.mark.parametrize("consciousness", [Consciousness.NEW_CONFUSION, Consciousness.VOICE, Consciousness.PAIN,
                                           Consciousness.UNRESPONSIVE])
def test_consciousness_other_than_alert_scores_3(consciousness):
    a = assess(Vitals(**CALM, consciousness=consciousness), ADULT)
    assert a.news2 == 3 and a.news2_parts["consciousness"] == 3
    assert {"news2_single_3", "altered_consciousness"} <= {f.code for f in a.flags} and a.level == Severity.URGENT


def test_supplemental_oxygen_scores_2():
    a = assess(Vitals(**CALM, on_supplemental_oxygen=True), ADULT)
    assert a.news2 == 2 and a.level == Severity.LOW


def test_aggregate_bands():
    five = assess(Vitals(**{**CALM, "respiratory_rate_per_min": 22, "pulse_per_min": 115, "temperature_c": 38.5}), ADULT)
    assert five.news2 == 5 and "news2_urgent" in {f.code for f in five.flags} and five.level == Severity.URGENT
    seven = assess(Vitals(**{**CALM, "respiratory_rate_per_min": 22, "pulse_per_min": 115, "temperature_c": 39.5,
                             "spo2_pct": 95}), ADULT)
    assert seven.news2 == 7 and seven.level == Severity.EMERGENCY


def test_kamla_journey_3():
    a = assess(Vitals(systolic_mmhg=186, diastolic_mmhg=122, pulse_per_min=118, spo2_pct=93,
                      respiratory_rate_per_min=18, temperature_c=37.0), PatientContext(age_days=60 * 365))
    codes = [f.code for f in a.flags]
    assert codes[0] == "hypertensive_crisis" and a.flags[0].severity == Severity.EMERGENCY
    assert "186/122" in a.flags[0].message
    assert a.news2 == 4 and a.level == Severity.EMERGENCY


def test_news2_needs_all_five_parameters():
    a = assess(Vitals(systolic_mmhg=186, diastolic_mmhg=122, pulse_per_min=118, spo2_pct=93), ADULT)
    assert a.news2 is None and "NEWS2 needs" in a.news2_note
    assert a.level == Severity.EMERGENCY


def test_ravi_journey_4_fast_breathing_and_weight():
    a = assess(Vitals(respiratory_rate_per_min=54), PatientContext(age_days=335))
    messages = [f.message for f in a.flags]
    assert "Fast breathing for age (>= 50/min at 2-12 months)." in messages
    assert any("weight" in m for m in messages)
    assert a.news2 is None and a.news2_note == "No adult NEWS2 score: the patient is under 16."
    assert a.level == Severity.URGENT


@pytest.mark.parametrize("age_days,rr,fast,band", [
    (30, 59, False, ""), (30, 60, True, "(>= 60/min under 2 months)"),
    (59, 60, True, "(>= 60/min under 2 months)"), (60, 49, False, ""), (60, 50, True, "(>= 50/min at 2-12 months)"),
    (364, 50, True, "(>= 50/min at 2-12 months)"), (365, 39, False, ""), (365, 40, True, "(>= 40/min at 1-5 years)"),
    (4 * 365, 40, True, "(>= 40/min at 1-5 years)"), (6 * 365, 45, False, ""),
])
def test_who_fast_breathing_thresholds(age_days, rr, fast, band):
    a = assess(Vitals(respiratory_rate_per_min=rr, weight_kg=10), PatientContext(age_days=age_days))
    flags = [f for f in a.flags if f.code == "fast_breathing"]
    assert bool(flags) == fast
    if fast:
        assert band in flags[0].message


def test_pregnancy_has_no_news2_but_keeps_the_crisis():
    a = assess(Vitals(**{**CALM, "systolic_mmhg": 182, "diastolic_mmhg": 112}), PatientContext(age_days=24 * 365, pregnant=True))
    assert a.news2 is None and a.news2_note == "No NEWS2 score in pregnancy."
    assert a.flags[0].code == "hypertensive_crisis"


@pytest.mark.parametrize("glucose,kind,code,severity", [
    (53, GlucoseKind.RANDOM, "hypoglycaemia", Severity.EMERGENCY), (69, GlucoseKind.RANDOM, "hypoglycaemia", Severity.URGENT),
    (70, GlucoseKind.RANDOM, None, None), (199, GlucoseKind.RANDOM, None, None),
    (200, GlucoseKind.RANDOM, "hyperglycaemia", Severity.LOW), (126, GlucoseKind.FASTING, "hyperglycaemia", Severity.LOW),
    (125, GlucoseKind.FASTING, None, None), (400, GlucoseKind.RANDOM, "hyperglycaemia", Severity.URGENT),
])
def test_glucose_flags(glucose, kind, code, severity):
    flags = [f for f in assess(Vitals(glucose_mg_dl=glucose, glucose_kind=kind), ADULT).flags if "glyc" in f.code]
    if code is None:
        assert flags == []
    else:
        assert [(f.code, f.severity) for f in flags] == [(code, severity)]


@pytest.mark.parametrize("bp,code", [((179, 119), "high_bp"), ((180, 80), "hypertensive_crisis"),
                                     ((150, 120), "hypertensive_crisis"), ((139, 89), None), ((140, 85), "high_bp")])
def test_blood_pressure_bands(bp, code):
    codes = {f.code for f in assess(Vitals(systolic_mmhg=bp[0], diastolic_mmhg=bp[1]), ADULT).flags}
    assert (code in codes) if code else not ({"high_bp", "hypertensive_crisis"} & codes)


def test_flags_are_sorted_most_severe_first():
    a = assess(Vitals(temperature_c=38.5, systolic_mmhg=190, diastolic_mmhg=100, glucose_mg_dl=60), ADULT)
    severities = [f.severity for f in a.flags]
    assert severities == sorted(severities, reverse=True)
