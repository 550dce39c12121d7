"""Pairing and readings through the real transport, adapters and parsers, with scripted devices at the bleak
boundary: readings fill vitals marked with the device's name and status, and flow into red flags and FHIR."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from spoke_client.services.cases import DeviceMark
from spoke_client.services.devices import DeviceService, DeviceUnavailable
from spoke_client.services.patients import PatientForm
from spoke_client.domain.vitals import Vitals


def test_scan_finds_health_devices_only_strongest_first(services, world, transport):
    found = DeviceService(services.store, transport).scan()
    assert [(d.name, d.kind) for d in found] == [("OMRON BP", "blood pressure monitor"), ("Thermo", "thermometer"),
                                                  ("Accu-Chek", "glucometer")]


def test_pair_rename_unpair(services, admin, world, transport):
    devices = DeviceService(services.store, transport)
    bp = next(d for d in devices.scan() if d.kind == "blood pressure monitor")
    paired = devices.pair(admin, bp, "  BP monitor,  room 1 ")
    assert paired.name == "BP monitor, room 1" and devices.paired() == [paired]
    assert devices.pair(admin, bp, "BP monitor, OPD").id == paired.id, "pairing again renames, never duplicates"
    devices.rename(admin, paired.id, "BP monitor, room 2")
    assert [d.name for d in devices.paired()] == ["BP monitor, room 2"]
    devices.unpair(admin, paired.id)
    assert devices.paired() == []


def test_a_reading_fills_vitals_with_the_devices_status(services, admin, world, transport):
    devices = DeviceService(services.store, transport)
    bp = devices.pair(admin, next(d for d in devices.scan() if d.kind == "blood pressure monitor"), "BP monitor, room 1")
    reading = devices.take_reading(bp)
    assert reading.vitals == {"systolic_mmhg": 138, "diastolic_mmhg": 88, "pulse_per_min": 60}
    assert "irregular pulse" in reading.status and "cuff too loose" in reading.status
    assert reading.measured_at is None, "the device's date had an unknown year"

    kamla = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur"))
    case = services.cases.open_case(admin, kamla.id)
    rec = services.cases.record_vitals(admin, case.id, Vitals(**reading.vitals),
                                       device=DeviceMark(reading.device_name, reading.status, reading.measured_at))
    assert rec.source == "BP monitor, room 1" and rec.device_status == reading.status
    from spoke_client.services.fhir import vitals_observations

    obs = vitals_observations(rec, kamla, services.cases.get(case.id))
    bp_obs = next(o for o in obs if o["code"]["coding"][0]["code"] == "85354-9")
    assert bp_obs["device"] == {"display": "BP monitor, room 1"}
    assert "irregular pulse" in bp_obs["note"][0]["text"]


def test_stored_glucose_readings_newest_first(services, admin, world, transport):
    devices = DeviceService(services.store, transport)
    meter = devices.pair(admin, next(d for d in devices.scan() if d.kind == "glucometer"), "Glucometer")
    readings = devices.stored_readings(meter)
    assert [r.vitals["glucose_mg_dl"] for r in readings] == [145, 182, 110]
    assert readings[0].measured_at == datetime(2026, 11, 24, 13, 0).astimezone(timezone.utc)
    world["AA:00:00:00:00:03"].stored.clear()
    assert devices.stored_readings(meter) == []


@pytest.mark.parametrize("behaviour, words", [
    ("vanish", "disconnected before it sent a reading"),
    ("silent", "No reading came from"),
    ("unreachable", "was not found"),
])
def test_a_device_that_fails_gives_a_clear_message(services, admin, world, transport, behaviour, words):
    devices = DeviceService(services.store, transport)
    bp = devices.pair(admin, next(d for d in devices.scan() if d.kind == "blood pressure monitor"), "BP monitor")
    world["AA:00:00:00:00:01"].behaviour = behaviour
    with pytest.raises(DeviceUnavailable) as failed:
        devices.take_reading(bp, timeout=0.5)
    assert words in failed.value.message


def test_a_reading_the_device_could_not_make_fills_nothing(services, admin, world, transport):
    devices = DeviceService(services.store, transport)
    bp = devices.pair(admin, next(d for d in devices.scan() if d.kind == "blood pressure monitor"), "BP monitor")
    world["AA:00:00:00:00:01"].payloads = [bytes([0x00]) + b"\xff\x07" + b"\x58\x00\x78\x00"]   # systolic NaN
    with pytest.raises(DeviceUnavailable) as failed:
        devices.take_reading(bp)
    assert "could not measure (systolic: NaN)" in failed.value.message


def test_a_pulse_oximeter_reports_low_perfusion(services, admin, world, transport):
    from tests.devices.scripted_bleak import ScriptedDevice
    from spoke_client.services.devices import uuid16

    # SpO2 94 %, pulse 102, device and sensor status: low perfusion (bit 5).
    world["AA:00:00:00:00:05"] = ScriptedDevice("Oxi", uuid16(0x1822), [bytes([0x04, 94, 0, 102, 0, 0x20, 0, 0])])
    devices = DeviceService(services.store, transport)
    oxi = devices.pair(admin, next(d for d in devices.scan() if d.kind == "pulse oximeter"), "Oximeter")
    reading = devices.take_reading(oxi)
    assert reading.vitals == {"spo2_pct": 94, "pulse_per_min": 102} and reading.status == ("low perfusion",)


def test_an_oximeter_that_sends_only_continuous_measurements(services, admin, world, transport):
    from tests.devices.scripted_bleak import ScriptedDevice
    from spoke_client.services.devices import uuid16

    world["AA:00:00:00:00:06"] = ScriptedDevice("Oxi-C", uuid16(0x1822), [bytes([0x00, 97, 0, 76, 0])],
                                                sends_on=uuid16(0x2A5F))
    devices = DeviceService(services.store, transport)
    oxi = devices.pair(admin, next(d for d in devices.scan() if d.name == "Oxi-C"), "Oximeter 2")
    assert devices.take_reading(oxi).vitals == {"spo2_pct": 97, "pulse_per_min": 76}
