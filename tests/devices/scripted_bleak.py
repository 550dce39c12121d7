"""A scripted Bluetooth world at the bleak boundary: classes with bleak's BleakScanner and BleakClient API
that play devices from a script (there is no Bluetooth radio on these machines). Everything above this,
the transport, the adapters, the parsers, the service and the UI, is the real code."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace


class BleakError(Exception):
    """Stands for bleak.exc.BleakError."""


@dataclass
class ScriptedDevice:
    name: str
    service: str                       # advertised service UUID
    payloads: list[bytes] = field(default_factory=list)    # measurements it sends after the start button
    stored: list[bytes] = field(default_factory=list)      # kept readings, sent on a RACP request
    behaviour: str = "normal"          # normal | vanish (disconnects mid-reading) | silent | unreachable
    delay: float = 0.05
    rssi: int = -60
    sends_on: str | None = None        # the measurement characteristic it has (None: any asked for)


WORLD: dict[str, ScriptedDevice] = {}


class ScriptedScanner:
    @staticmethod
    async def discover(timeout: float = 5.0, *, return_adv: bool = False, **_kw):
        await asyncio.sleep(0.01)
        return {address: (SimpleNamespace(address=address, name=d.name),
                          SimpleNamespace(local_name=d.name, service_uuids=[d.service], rssi=d.rssi))
                for address, d in WORLD.items()}


class ScriptedClient:
    def __init__(self, address: str, disconnected_callback=None, timeout: float = 20, **_kw) -> None:
        self.address, self.on_disconnect = address, disconnected_callback
        self.handlers: dict[str, object] = {}
        self.tasks: list[asyncio.Task] = []

    async def __aenter__(self):
        device = WORLD.get(self.address)
        if device is None or device.behaviour == "unreachable":
            raise BleakError(f"Device with address {self.address} was not found.")
        self.device = device
        return self

    async def __aexit__(self, *exc):
        for t in self.tasks:
            t.cancel()
        return False

    async def start_notify(self, uuid: str, callback) -> None:
        if uuid.lower() == "00002a52-0000-1000-8000-00805f9b34fb":
            self.handlers[uuid.lower()] = callback
            return
        if self.device.sends_on is not None and uuid.lower() != self.device.sends_on:
            raise BleakError(f"Characteristic {uuid} was not found!")
        self.handlers[uuid.lower()] = callback
        if self.device.behaviour == "vanish":
            self.tasks.append(asyncio.ensure_future(self._later(lambda: self.on_disconnect(self))))
        elif self.device.behaviour == "normal":
            for payload in self.device.payloads:
                self.tasks.append(asyncio.ensure_future(self._later(lambda p=payload: callback(None, bytearray(p)))))

    async def stop_notify(self, uuid: str) -> None:
        self.handlers.pop(uuid.lower(), None)

    async def write_gatt_char(self, uuid: str, data: bytes, response: bool | None = None) -> None:
        assert uuid.lower() == "00002a52-0000-1000-8000-00805f9b34fb" and bytes(data) == b"\x01\x01"
        measurement = next(h for u, h in self.handlers.items() if u != "00002a52-0000-1000-8000-00805f9b34fb")
        for record in self.device.stored:
            measurement(None, bytearray(record))
        code = 1 if self.device.stored else 6
        self.handlers["00002a52-0000-1000-8000-00805f9b34fb"](None, bytearray([6, 0, 1, code]))

    async def _later(self, action) -> None:
        await asyncio.sleep(self.device.delay)
        action()
