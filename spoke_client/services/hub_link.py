"""This PC's link to its hub, as kept in the local store: address, facility, request counter, last results,
and how far this PC's clock is from the hub's."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from spoke_client.i18n import _
from spoke_client.services.store import Store

HUB_URL, HUB_FACILITY, HUB_FACILITY_NAME, HUB_ALLOW_HTTP = "hub_url", "hub_facility_id", "hub_facility_name", "hub_allow_http"
HUB_CA_BUNDLE = "hub_ca_bundle"   # a CA bundle file for a hub whose certificate the system does not know
COUNTER, LAST_SYNC, LAST_ERROR, LAST_CHECK = "hub_counter", "hub_last_sync", "hub_last_error", "hub_last_check"
CLOCK_OFFSET = "hub_clock_offset_ms"   # the hub's clock minus this PC's, as last seen
APP_VERSION = "inbox_app_version"      # the program version (and the records it applies) that last applied pulled changes
HUB_WIRE = "hub_wire"                  # the compact encoding the hub said it reads (sync.wire), if any
HUB_PUBLIC_KEY = "hub_public_key"      # the hub's Ed25519 key (base64, raw 32 bytes) its prescriptions are signed with
HUB_BOX_KEY, HUB_BOX_KEY_ID = "hub_box_key", "hub_box_key_id"   # the hub's X25519 key for USB bundles, and its id

# A PC's clock this far from the hub's is worth telling the user about: its records carry wrong times, and
# from a week ahead the hub refuses them (sync.hlc.MAX_AHEAD_MS).
CLOCK_WARNING_MS = 60 * 60 * 1000


class HubLink:
    # Request numbers are reserved durably in blocks: a restart never reuses one (it skips the rest of a block,
    # which the hub does not mind: numbers must only grow), and a request needs no database write of its own,
    # so the next page can be fetched while the last one is being applied.
    BLOCK = 64

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._next = self._limit = 0

    @property
    def url(self) -> str:
        return self.store.get_setting(HUB_URL, "") or ""

    def next_counter(self) -> int:
        """Each signed request takes the next number."""
        with self._lock:
            if self._next >= self._limit:
                with self.store.write(None) as w:
                    start = int(w.get_setting(COUNTER, "0") or 0)
                    w.set_setting(COUNTER, str(start + self.BLOCK))
                self._next, self._limit = start, start + self.BLOCK
            self._next += 1
            return self._next

    def raise_counter(self, last_seen_by_hub: int) -> None:
        """The hub saw a higher request number than ours (this PC was restored from an older copy)."""
        with self._lock:
            with self.store.write(None) as w:
                current = int(w.get_setting(COUNTER, "0") or 0)
                if last_seen_by_hub > current:
                    w.set_setting(COUNTER, str(last_seen_by_hub))
                    w.audit("sync_counter", "hub", "", f"{current}->{last_seen_by_hub}")
            self._next = self._limit = 0   # the next request reserves a block above it

    def clock_offset_ms(self) -> int | None:
        value = self.store.get_setting(CLOCK_OFFSET)
        return int(value) if value else None


@dataclass(frozen=True)
class ClockAdvice:
    offset_ms: int   # the hub's clock minus this PC's

    @property
    def sentence(self) -> str:
        hours = abs(self.offset_ms) / 3_600_000
        amount = (_("{n} days").format(n=round(hours / 24)) if hours >= 36 else
                  _("{n} hours").format(n=round(hours)))
        if self.offset_ms < 0:
            return _("This computer's clock is {amount} ahead of the hub's. Set the right date and time on this "
                     "computer: records made now carry a wrong time, and the hub refuses records from a clock "
                     "more than a week ahead.").format(amount=amount)
        return _("This computer's clock is {amount} behind the hub's. Set the right date and time on this "
                 "computer, so that its records carry the right time.").format(amount=amount)


def clock_advice(offset_ms: int | None) -> ClockAdvice | None:
    if offset_ms is None or abs(offset_ms) < CLOCK_WARNING_MS:
        return None
    return ClockAdvice(offset_ms)


def parse_when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
