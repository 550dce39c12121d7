from __future__ import annotations

import pytest

from tests.devices import scripted_bleak
from tests.devices.scripted_bleak import ScriptedClient, ScriptedDevice, ScriptedScanner

BP = "1E 8A 00 58 00 78 00 00 00 04 11 14 29 3B 3C 00 01 27 00"


@pytest.fixture
def world():
    """A BP monitor, a thermometer, a glucometer with stored readings and a heart-rate strap (not a vitals
    device) around the PC."""
    from spoke_client.domain.gatt import parse_hex
    from spoke_client.services.devices import uuid16

    def glucose(seq: int, hour: int, mg_dl_e5: int) -> bytes:
        import struct

        return (bytes([0x02]) + struct.pack("<H", seq) + struct.pack("<HBBBBB", 2026, 11, 24, hour, 0, 0)
                + struct.pack("<H", ((-5 & 0xF) << 12) | mg_dl_e5) + bytes([0x11]))

    scripted_bleak.WORLD.clear()
    scripted_bleak.WORLD.update({
        "AA:00:00:00:00:01": ScriptedDevice("OMRON BP", uuid16(0x1810), [parse_hex(BP)]),
        "AA:00:00:00:00:02": ScriptedDevice("Thermo", uuid16(0x1809), [parse_hex("06 B0 0E 00 FE DC 07 0C 05 0B 32 1B 04")]),
        "AA:00:00:00:00:03": ScriptedDevice("Accu-Chek", uuid16(0x1808),
                                            stored=[glucose(1, 6, 110), glucose(2, 9, 182), glucose(3, 13, 145)]),
        "AA:00:00:00:00:04": ScriptedDevice("HR strap", uuid16(0x180D)),
    })
    yield scripted_bleak.WORLD
    scripted_bleak.WORLD.clear()


@pytest.fixture
def transport():
    from spoke_client.services.devices import BleTransport

    return BleTransport(scanner=ScriptedScanner, client=ScriptedClient)
