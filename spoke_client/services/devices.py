"""Bluetooth Low Energy health devices: pairing, and readings into the vitals form.

Three parts:
- adapters: one per protocol. The Bluetooth SIG profiles (blood pressure, thermometer, pulse oximeter,
  glucometer, scale) are the first; a vendor protocol is one more module that registers an Adapter.
- the transport: bleak (Windows, Linux, macOS), run on its own asyncio loop in the calling worker thread,
  never on the UI thread. `scanner` and `client` default to bleak's BleakScanner and BleakClient.
- DeviceService: paired devices in the database, scanning, taking a reading, fetching stored readings.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from sqlalchemy import select

from spoke_client.db.models import PairedDeviceRow
from spoke_client.domain import gatt
from spoke_client.domain.errors import FieldProblem, NotFound, SpokeError, ValidationFailed
from spoke_client.domain.model import User
from spoke_client.i18n import N_, _
from spoke_client.services.store import Store, new_id

READING_TIMEOUT_S = 120      # the user presses the device's own start button; a BP cuff takes about a minute
CONNECT_TIMEOUT_S = 20
SCAN_SECONDS = 8


class DeviceUnavailable(SpokeError):
    """The device could not be reached, vanished mid-reading, or sent nothing usable."""


def uuid16(n: int) -> str:
    return f"0000{n:04x}-0000-1000-8000-00805f9b34fb"


@dataclass(frozen=True)
class Reading:
    """A measurement ready for the vitals form: field -> value in the form's units."""

    device_name: str
    kind: str
    vitals: dict[str, float | int]
    status: tuple[str, ...]
    measured_at: datetime | None
    detail: dict[str, Any] = field(default_factory=dict)


class Adapter(Protocol):
    key: str                      # stored with the paired device
    kind: str                     # "blood pressure monitor", ...
    service: str                  # the GATT service it is found by (128-bit UUID text)
    measurement: str              # the characteristic that carries readings
    measurements: tuple[str, ...]  # it and any alternatives (an oximeter may send spot-check or continuous)
    stored_records: bool          # whether readings kept on the device can be fetched (RACP)

    def reading(self, device_name: str, payload: bytes, characteristic: str | None = None) -> Reading: ...


# The vitals form's fields for each SIG measurement value, with the conversion to the field's type.
_FIELDS = {
    "systolic": ("systolic_mmhg", round), "diastolic": ("diastolic_mmhg", round), "pulse rate": ("pulse_per_min", round),
    "temperature": ("temperature_c", lambda v: round(v, 1)), "SpO2": ("spo2_pct", round),
    "glucose": ("glucose_mg_dl", round), "weight": ("weight_kg", lambda v: round(v, 1)),
    "height": ("height_cm", lambda v: round(v, 1)),
}


@dataclass(frozen=True)
class SigAdapter:
    key: str
    kind: str
    service_id: int
    characteristic: int
    stored_records: bool = False
    alternates: tuple[int, ...] = ()

    @property
    def service(self) -> str:
        return uuid16(self.service_id)

    @property
    def measurement(self) -> str:
        return uuid16(self.characteristic)

    @property
    def measurements(self) -> tuple[str, ...]:
        return tuple(uuid16(c) for c in (self.characteristic, *self.alternates))

    def reading(self, device_name: str, payload: bytes, characteristic: str | None = None) -> Reading:
        number = int(characteristic[4:8], 16) if characteristic else self.characteristic
        try:
            m = gatt.decode(number, payload)
        except gatt.MalformedMeasurement as exc:
            raise DeviceUnavailable(_("'{device}' sent a reading this computer cannot read ({why}); nothing was "
                                      "filled in.").format(device=device_name, why=exc)) from exc
        values: dict[str, float | int] = {}
        for name, q in m.values.items():
            if name not in _FIELDS:
                continue
            if not q.is_number:
                raise DeviceUnavailable(_("'{device}' could not measure ({name}: {value}). Measure again; nothing was "
                                          "filled in.").format(device=device_name, name=name, value=q.value))
            target, convert = _FIELDS[name]
            values[target] = convert(q.value)
        if not values:
            raise DeviceUnavailable(_("'{device}' sent no value ({status}). Measure again.").format(
                device=device_name, status=", ".join(_(s) for s in m.status) or m.kind))
        when = m.time.astimezone(timezone.utc) if m.time else None   # a device clock keeps local time
        return Reading(device_name, self.kind, values, m.status, when, {"sequence": m.extra.get("sequence")})


ADAPTERS: dict[str, Adapter] = {a.key: a for a in (
    SigAdapter("sig-bp", N_("blood pressure monitor"), 0x1810, gatt.BLOOD_PRESSURE),
    SigAdapter("sig-thermometer", N_("thermometer"), 0x1809, gatt.TEMPERATURE),
    SigAdapter("sig-oximeter", N_("pulse oximeter"), 0x1822, gatt.PLX_SPOT, alternates=(gatt.PLX_CONTINUOUS,)),
    SigAdapter("sig-glucometer", N_("glucometer"), 0x1808, gatt.GLUCOSE, stored_records=True),
    SigAdapter("sig-scale", N_("weighing scale"), 0x181D, gatt.WEIGHT),
)}


def register_adapter(adapter: Adapter) -> None:
    """A vendor protocol module calls this at import."""
    ADAPTERS[adapter.key] = adapter


def adapter_for(service_uuids: list[str]) -> Adapter | None:
    wanted = {u.lower() for u in service_uuids}
    return next((a for a in ADAPTERS.values() if a.service.lower() in wanted), None)


@dataclass(frozen=True)
class FoundDevice:
    address: str
    name: str
    adapter: str
    kind: str
    rssi: int | None


@dataclass(frozen=True)
class PairedDevice:
    id: str
    address: str
    name: str
    adapter: str
    kind: str
    paired_at: datetime


# --- the transport (bleak) ---------------------------------------------------------------------------
def _bleak():
    try:
        import bleak
    except ImportError as exc:   # pragma: no cover - bleak is a dependency
        raise DeviceUnavailable(_("Bluetooth support is not installed.")) from exc
    return bleak


class BleTransport:
    def __init__(self, scanner: Any = None, client: Any = None) -> None:
        self.scanner, self.client = scanner, client

    def _classes(self):
        if self.scanner is None or self.client is None:
            bleak = _bleak()
            self.scanner = self.scanner or bleak.BleakScanner
            self.client = self.client or bleak.BleakClient
        return self.scanner, self.client

    def _run(self, coro, what: str):
        try:
            return asyncio.run(coro)
        except DeviceUnavailable:
            raise
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise DeviceUnavailable(what) from exc
        except Exception as exc:   # bleak's errors, OSError, a missing adapter: all the user's same problem
            raise DeviceUnavailable(_("Bluetooth: {e}").format(e=exc) if str(exc) else what) from exc

    def scan(self, seconds: float = SCAN_SECONDS) -> list[FoundDevice]:
        scanner, _client = self._classes()

        async def go():
            found = await scanner.discover(timeout=seconds, return_adv=True)
            out = []
            for address, (device, adv) in found.items():
                adapter = adapter_for(list(adv.service_uuids or []))
                if adapter is not None:
                    out.append(FoundDevice(address, adv.local_name or device.name or address, adapter.key, adapter.kind,
                                           adv.rssi))
            return sorted(out, key=lambda d: -(d.rssi or -999))

        return self._run(go(), _("No Bluetooth adapter answered. Is Bluetooth switched on on this computer?"))

    def measure(self, address: str, adapter: Adapter, name: str,
                timeout: float = READING_TIMEOUT_S) -> tuple[str, bytes]:
        """Connects, waits for the device to send one measurement (the user presses its start button); returns
        the characteristic it came on and the payload."""
        _scanner, client_cls = self._classes()

        async def go():
            loop = asyncio.get_running_loop()
            got: asyncio.Future = loop.create_future()
            lost = asyncio.Event()

            def on_value_of(uuid: str):
                def on_value(_char, data: bytearray) -> None:
                    if not got.done():
                        got.set_result((uuid, bytes(data)))
                return on_value

            client = client_cls(address, disconnected_callback=lambda _c: lost.set(), timeout=CONNECT_TIMEOUT_S)
            async with client:
                subscribed = []
                for uuid in adapter.measurements:   # the device may offer only some of them
                    try:
                        await client.start_notify(uuid, on_value_of(uuid))
                        subscribed.append(uuid)
                    except Exception:   # noqa: BLE001 - "characteristic not found": try the next
                        if uuid == adapter.measurements[-1] and not subscribed:
                            raise
                lost_wait = asyncio.ensure_future(lost.wait())
                done, _pending = await asyncio.wait({got, lost_wait}, timeout=timeout,
                                                    return_when=asyncio.FIRST_COMPLETED)
                lost_wait.cancel()
                if got in done:
                    for uuid in subscribed:
                        try:
                            await client.stop_notify(uuid)
                        except Exception:   # noqa: BLE001 - it may already be gone; the reading is in hand
                            pass
                    return got.result()
                if lost.is_set():
                    raise DeviceUnavailable(_("'{device}' disconnected before it sent a reading; nothing was filled "
                                              "in. Measure again.").format(device=name))
                raise DeviceUnavailable(_("No reading came from '{device}' within {s} seconds. Press the start button "
                                          "on the device, then try again.").format(device=name, s=int(timeout)))

        return self._run(go(), _("'{device}' could not be reached: is it switched on and near this computer?")
                         .format(device=name))

    def stored(self, address: str, adapter: Adapter, name: str, timeout: float = 60) -> list[bytes]:
        """Every reading the device kept (glucometers keep hundreds), through the Record Access Control Point."""
        _scanner, client_cls = self._classes()
        racp = uuid16(gatt.RACP)

        async def go():
            loop = asyncio.get_running_loop()
            records: list[bytes] = []
            answer: asyncio.Future = loop.create_future()

            def on_record(_c, data: bytearray) -> None:
                records.append(bytes(data))

            def on_racp(_c, data: bytearray) -> None:
                if not answer.done():
                    answer.set_result(bytes(data))

            async with client_cls(address, timeout=CONNECT_TIMEOUT_S) as client:
                await client.start_notify(adapter.measurement, on_record)
                await client.start_notify(racp, on_racp)
                await client.write_gatt_char(racp, gatt.racp_report_all(), response=True)
                response = gatt.parse_racp(await asyncio.wait_for(answer, timeout))
            if response.code not in ("success", "no records found"):
                raise DeviceUnavailable(_("'{device}' refused to send its stored readings ({code}).").format(
                    device=name, code=response.code))
            return records

        return self._run(go(), _("'{device}' did not send its stored readings in time.").format(device=name))


# --- the service -------------------------------------------------------------------------------------
def _paired(r: PairedDeviceRow) -> PairedDevice:
    adapter = ADAPTERS.get(r.adapter)
    return PairedDevice(r.id, r.address, r.name, r.adapter, adapter.kind if adapter else r.adapter, r.paired_at)


class DeviceService:
    def __init__(self, store: Store, transport: BleTransport | None = None) -> None:
        self.store = store
        self.transport = transport or BleTransport()

    def paired(self) -> list[PairedDevice]:
        with self.store.read() as s:
            return [_paired(r) for r in s.scalars(select(PairedDeviceRow).order_by(PairedDeviceRow.name))]

    def scan(self) -> list[FoundDevice]:
        return self.transport.scan()

    def pair(self, actor: User, found: FoundDevice, name: str) -> PairedDevice:
        name = " ".join(name.split())
        if not name or len(name) > 100:
            raise ValidationFailed([FieldProblem("name", _("Give the device a name of up to 100 characters, "
                                                            "e.g. 'BP monitor, room 1'."))])
        if found.adapter not in ADAPTERS:
            raise ValidationFailed([FieldProblem("device", _("This kind of device cannot be read yet."))])
        with self.store.write(actor.id) as w:
            row = w.session.scalars(select(PairedDeviceRow).where(PairedDeviceRow.address == found.address)).first()
            if row is None:
                row = PairedDeviceRow(id=new_id(), address=found.address, name=name, adapter=found.adapter,
                                      paired_at=w.now, paired_by=actor.id)
                w.session.add(row)
            else:
                row.name, row.adapter = name, found.adapter
            w.audit("pair_device", "device", row.id, f"{name} ({found.kind}, {found.address})")
            return _paired(row)

    def rename(self, actor: User, device_id: str, name: str) -> PairedDevice:
        name = " ".join(name.split())
        if not name or len(name) > 100:
            raise ValidationFailed([FieldProblem("name", _("Give the device a name of up to 100 characters."))])
        with self.store.write(actor.id) as w:
            row = self._row(w.session, device_id)
            row.name = name
            w.audit("rename_device", "device", row.id, name)
            return _paired(row)

    def unpair(self, actor: User, device_id: str) -> None:
        with self.store.write(actor.id) as w:
            row = self._row(w.session, device_id)
            w.session.delete(row)
            w.audit("unpair_device", "device", device_id, row.name)

    def take_reading(self, device: PairedDevice, timeout: float = READING_TIMEOUT_S) -> Reading:
        """Waits for one measurement from the device (call from a worker thread)."""
        adapter = self._adapter(device)
        characteristic, payload = self.transport.measure(device.address, adapter, device.name, timeout)
        return adapter.reading(device.name, payload, characteristic)

    def stored_readings(self, device: PairedDevice) -> list[Reading]:
        """Readings kept on the device, newest first; one that cannot be read is left out, not guessed."""
        adapter = self._adapter(device)
        if not adapter.stored_records:
            raise DeviceUnavailable(_("'{device}' keeps no readings to fetch.").format(device=device.name))
        out = []
        for payload in self.transport.stored(device.address, adapter, device.name):
            try:
                out.append(adapter.reading(device.name, payload))
            except DeviceUnavailable:
                continue
        return sorted(out, key=lambda r: r.measured_at or datetime.min.replace(tzinfo=timezone.utc), reverse=True)

    @staticmethod
    def _adapter(device: PairedDevice) -> Adapter:
        adapter = ADAPTERS.get(device.adapter)
        if adapter is None:
            raise DeviceUnavailable(_("'{device}' needs a protocol this version does not have.").format(device=device.name))
        return adapter

    @staticmethod
    def _row(s, device_id: str) -> PairedDeviceRow:
        row = s.get(PairedDeviceRow, device_id)
        if row is None:
            raise NotFound(_("This device is not paired with this computer."))
        return row
