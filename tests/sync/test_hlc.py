"""The hybrid logical clock cannot be broken by one device's stamp: no overflow, ASCII digits only, bounded drift."""

import pytest
from hypothesis import given, strategies as st

from sync.hlc import MAX_AHEAD_MS, MAX_COUNTER, HybridLogicalClock, Stamp, StampAhead, check_not_ahead, is_stamp
from sync.protocol import Change

WALL = 1_796_000_000_000   # Nov 2026


def test_the_counter_carries_into_the_wall_part_instead_of_overflowing():
    clock = HybridLogicalClock("hub", Stamp(WALL, MAX_COUNTER - 1, "hub"))
    a = clock.now(WALL - 5)          # wall clock behind the last stamp: the counter moves
    b = clock.now(WALL - 5)
    assert a == Stamp(WALL, MAX_COUNTER, "hub")
    assert b == Stamp(WALL + 1, 0, "hub")
    assert a < b and a.encode() < b.encode()
    assert is_stamp(b.encode())


def test_observing_a_stamp_at_the_counter_limit_still_gives_a_valid_later_stamp():
    clock = HybridLogicalClock("hub")
    remote = Stamp(WALL, 99_998, "C1")
    seen = clock.observe(remote, WALL)
    again = clock.observe(Stamp(WALL, 99_999, "C2"), WALL)
    assert seen > remote and again > seen
    for s in (seen, again, clock.now(WALL)):
        assert is_stamp(s.encode()), s.encode()


@given(st.lists(st.tuples(st.integers(0, 10**15 - 1), st.integers(0, MAX_COUNTER), st.booleans()), max_size=40))
def test_every_stamp_the_clock_makes_is_valid_and_later_than_the_last(events):
    clock = HybridLogicalClock("n1")
    last = clock.now(0)
    for wall, counter, remote in events:
        s = clock.observe(Stamp(wall, counter, "r"), WALL) if remote else clock.now(wall)
        assert s > last and is_stamp(s.encode())
        last = s


def test_only_ascii_digits_make_a_stamp():
    arabic_indic = "١٧٩٦٠٠٠٠٠٠٠٠٠٠٠-٠٠٠٠٠-C1"
    devanagari = "१७९६०००००००००००-०००००-C1"
    for text in (arabic_indic, devanagari):
        assert not is_stamp(text)
        with pytest.raises(ValueError):
            Stamp.decode(text)
        with pytest.raises(ValueError):
            Change(change_id="0193a000-0000-7000-8000-000000000001", entity="patient", entity_id="p", version=1,
                   op="delete", hlc=text, device_id="d")
    assert is_stamp(f"{WALL:015d}-00000-C1")


def test_a_stamp_far_ahead_of_the_receivers_clock_is_refused_and_one_a_few_days_ahead_is_not():
    check_not_ahead(Stamp(WALL + 3 * 24 * 3600 * 1000, 0, "pc"), WALL)   # a PC three days fast: accepted
    with pytest.raises(StampAhead) as caught:
        check_not_ahead(Stamp(999_999_999_999_999, 99_990, "C1"), WALL)
    assert caught.value.ahead_ms > MAX_AHEAD_MS


def test_reset_lets_a_corrected_clock_start_again():
    clock = HybridLogicalClock("pc", Stamp(WALL + 30 * 86_400_000, 4, "pc"))
    clock.reset(Stamp(WALL, 0, "pc"))
    assert clock.now(WALL + 10).wall_ms == WALL + 10
