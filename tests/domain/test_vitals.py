"""Vitals from the form: parsing, plausible ranges, °F, every problem reported at once."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spoke_client.domain.errors import ValidationFailed
from spoke_client.domain.vitals import (
    PLAUSIBLE,
    Vitals,
    bmi,
    celsius_to_fahrenheit,
    fahrenheit_to_celsius,
    is_empty,
    parse_measurement,
    validate_vitals,
    vitals_from_form,
)


def test_a_full_form():
    v = vitals_from_form({"systolic_mmhg": "186", "diastolic_mmhg": "122", "pulse_per_min": "118", "spo2_pct": "93",
                          "temperature_c": " 37,6 ", "weight_kg": "52.5", "height_cm": "150", "glucose_mg_dl": "142",
                          "glucose_kind": "fasting", "consciousness": "alert", "on_supplemental_oxygen": "1"})
    assert (v.systolic_mmhg, v.diastolic_mmhg, v.pulse_per_min, v.spo2_pct) == (186, 122, 118, 93)
    assert v.temperature_c == 37.6 and v.weight_kg == 52.5 and v.glucose_kind.value == "fasting"
    assert v.on_supplemental_oxygen and not is_empty(v)


def test_impossible_values_are_all_reported_with_their_range():
    with pytest.raises(ValidationFailed) as e:
        vitals_from_form({"systolic_mmhg": "400", "diastolic_mmhg": "80", "pulse_per_min": "811", "spo2_pct": "120",
                          "respiratory_rate_per_min": "abc"})
    assert "300" in e.value.for_field("systolic_mmhg")
    assert "250" in e.value.for_field("pulse_per_min")
    assert "100" in e.value.for_field("spo2_pct")
    assert "number" in e.value.for_field("respiratory_rate_per_min")


def test_bp_needs_both_halves_and_diastolic_below_systolic():
    with pytest.raises(ValidationFailed, match="both halves"):
        validate_vitals(Vitals(systolic_mmhg=120))
    with pytest.raises(ValidationFailed, match="lower than systolic"):
        validate_vitals(Vitals(systolic_mmhg=80, diastolic_mmhg=90))


def test_fahrenheit_entry_is_stored_in_celsius_and_a_fahrenheit_value_in_celsius_mode_is_caught():
    assert vitals_from_form({"temperature_c": "98.6"}, "F").temperature_c == 37.0
    with pytest.raises(ValidationFailed, match="°F"):
        vitals_from_form({"temperature_c": "98.6"}, "C")
    with pytest.raises(ValidationFailed):
        vitals_from_form({"temperature_c": "60"}, "F")


def test_whole_numbers_where_counts_are_asked():
    with pytest.raises(ValidationFailed, match="whole number"):
        vitals_from_form({"pulse_per_min": "72.5"})


def test_bmi_and_conversions():
    assert bmi(52.0, 150.0) == 23.1 and bmi(None, 150) is None
    assert fahrenheit_to_celsius(102.2) == 39.0 and celsius_to_fahrenheit(37.0) == 98.6


def test_empty_form_is_empty():
    assert is_empty(vitals_from_form({}))
    assert parse_measurement("  ", "pulse_per_min") is None


@given(st.dictionaries(st.sampled_from(sorted(PLAUSIBLE)), st.text(max_size=8)), st.sampled_from(["C", "F"]))
def test_no_form_input_crashes_the_parser(fields, unit):
    try:
        v = vitals_from_form(fields, unit)
    except ValidationFailed as exc:
        assert exc.problems and all(p.message for p in exc.problems)
    else:
        validate_vitals(v)
