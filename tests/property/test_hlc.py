"""Hybrid logical clock properties: never backwards, after what it saw, text order = stamp order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.hlc import HLC, MAX_COUNTER, Clock, ClockDriftError

NODES = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,15}", fullmatch=True)
STAMPS = st.builds(HLC, st.integers(0, 10**13 - 1), st.integers(0, MAX_COUNTER), NODES)


class FakeWall:
    """A wall clock a test moves, backwards too (phones reset their clocks)."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


# Each step: move the wall clock by a delta (possibly backwards), then tick or observe a stamp
# from another device whose clock is off by `skew` ms.
STEPS = st.lists(
    st.tuples(st.integers(-60_000, 60_000), st.booleans(), st.integers(-120_000, 120_000), st.integers(0, 50)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps=STEPS, node=NODES)
def test_stamps_only_grow_and_follow_what_they_saw(steps: list[tuple[int, bool, int, int]], node: str) -> None:
    wall = FakeWall(1_790_000_000_000)
    clock = Clock(node, now_ms=wall)
    previous = clock.tick()
    for delta, observe, skew, counter in steps:
        wall.ms += delta
        if observe:
            remote = HLC(wall.ms + skew, counter, "other-device")
            stamp = clock.observe(remote)
            assert (stamp.wall_ms, stamp.counter) > (remote.wall_ms, remote.counter)
        else:
            stamp = clock.tick()
        assert (stamp.wall_ms, stamp.counter) > (previous.wall_ms, previous.counter)
        assert stamp.wall_ms >= wall.ms  # never behind the wall clock
        assert stamp.node == node
        previous = stamp


@settings(max_examples=300, deadline=None)
@given(a=STAMPS, b=STAMPS)
def test_text_form_round_trips_and_sorts_like_the_stamp(a: HLC, b: HLC) -> None:
    assert HLC.parse(a.pack()) == a
    if a.node == b.node:
        assert (a.pack() < b.pack()) == (a < b)


def test_a_stamp_far_in_the_future_is_refused_and_changes_nothing() -> None:
    """A phone whose clock is a day ahead must not drag everyone's stamps into tomorrow."""
    wall = FakeWall(1_790_000_000_000)
    clock = Clock("server", now_ms=wall)
    before = clock.tick()
    with pytest.raises(ClockDriftError):
        clock.observe(HLC(wall.ms + 24 * 3600 * 1000, 0, "phone-with-wrong-clock"))
    assert clock.last == before


def test_many_events_in_one_millisecond_move_to_the_next() -> None:
    wall = FakeWall(1_790_000_000_000)
    clock = Clock("phone", now_ms=wall)
    stamps = [clock.tick() for _ in range(MAX_COUNTER + 3)]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)
    assert stamps[-1].wall_ms == wall.ms + 1


@pytest.mark.parametrize("text", ["", "123-0001-a", "1790000000000-00001-a", "1790000000000-0001-", "1790000000000-zzzz-a"])
def test_malformed_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        HLC.parse(text)
