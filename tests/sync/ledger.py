"""Change ids at both ends, to compare against the changes made. change_id is UNIQUE at both ends, so a count
of distinct ids proves nothing; the sets of ids (and their counts) can differ when a change is lost or doubled."""

from __future__ import annotations

from sqlalchemy import select

from spoke_client.db.models import ChangeRow, InboxRow
from spoke_client.services.hub_link import HUB_FACILITY
from sync.hub.models import HubChangeRow


def made_here(services) -> list[str]:
    """Every change this PC made: its change log (refused changes included, so none can hide there)."""
    with services.store.read() as s:
        rows = s.execute(select(ChangeRow.change_id, ChangeRow.device_id)).all()
    assert {r.device_id for r in rows} <= {services.store.device_id}, "the change log holds only this PC's changes"
    return [r.change_id for r in rows]


def acknowledged_here(services) -> list[str]:
    with services.store.read() as s:
        return list(s.scalars(select(ChangeRow.change_id).where(ChangeRow.pushed_at.is_not(None))))


def pulled_here(services) -> list[str]:
    """What this PC pulled from the hub that other devices (and the hub itself) made."""
    with services.store.read() as s:
        return list(s.scalars(select(InboxRow.change_id).where(InboxRow.device_id != services.store.device_id)))


def at_hub(hub, *, device_id: str | None = None, facility_id: str | None = None,
           not_device: str | None = None) -> list[str]:
    q = select(HubChangeRow.change_id)
    if device_id is not None:
        q = q.where(HubChangeRow.device_id == device_id)
    if facility_id is not None:
        q = q.where(HubChangeRow.facility_id == facility_id)
    if not_device is not None:
        q = q.where(HubChangeRow.device_id != not_device)
    with hub.session() as s:
        return list(s.scalars(q))


def assert_same(here: list[str], there: list[str], what: str) -> None:
    missing, extra = set(here) - set(there), set(there) - set(here)
    assert not missing and not extra and len(here) == len(there), (
        f"{what}: {len(missing)} only in the first, {len(extra)} only in the second ({len(here)} against {len(there)})")


def assert_pushed_exactly_once(services, hub) -> None:
    """Every change this PC made is at the hub, once, and the hub holds none from it that it did not make."""
    assert_same(made_here(services), at_hub(hub, device_id=services.store.device_id),
                "this PC's changes against the hub's from this PC")


def assert_pulled_exactly_once(services, hub) -> None:
    """This PC holds every change of its facility that others made, once, and nothing else."""
    facility = services.store.get_setting(HUB_FACILITY)
    assert_same(pulled_here(services), at_hub(hub, facility_id=facility, not_device=services.store.device_id),
                "pulled here against the hub's from the other devices")
