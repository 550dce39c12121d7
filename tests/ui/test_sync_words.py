"""The sync bar's sentences: a wrong PC clock is said in plain words, and the network is never the user's fault."""

from datetime import datetime, timezone

from spoke_client.services.hub_link import clock_advice
from spoke_client.services.sync_local import SyncStatus
from spoke_client.ui.sync_bar import describe


def status(**kw) -> SyncStatus:
    return SyncStatus(**(dict(enrolled=True, hub_url="https://hub", facility_name="HWC Rampur", pending=0,
                              pending_cases=0, pending_files=0, quarantined=0,
                              last_sync=datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc), last_error="") | kw))


def test_a_clock_days_ahead_is_shown_with_what_to_do():
    advice = clock_advice(-3 * 86_400_000)
    text, tip, colour = describe(status(clock_warning=advice.sentence), None, running=False)
    assert "date or time is wrong" in text and colour != "#1b5e20"
    assert "3 days ahead" in tip and "Set the right date and time" in tip


def test_a_clock_a_few_minutes_off_is_not_worth_a_word():
    assert clock_advice(5 * 60_000) is None and clock_advice(None) is None
    assert "hours behind" in clock_advice(5 * 3_600_000).sentence
    text, _tip, colour = describe(status(), None, running=False)
    assert "wrong" not in text and colour == "#1b5e20"
