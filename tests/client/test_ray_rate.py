"""The cluster's send-rate broker (hi_async.ray.rate), as a plain object: no Ray needed."""

from __future__ import annotations

import pytest

from hi_async.ray.rate import LEASE, RateBroker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_cap_until_a_member_is_throttled() -> None:
    broker = RateBroker(clock=Clock())
    member, (share, epoch) = broker.join()
    assert share is None and epoch == 0
    assert broker.report(member, 300.0) == (None, 0)


def test_a_429_halves_what_all_members_sent_together_and_shares_it_out() -> None:
    clock = Clock()
    broker = RateBroker(clock=clock)
    a, _ = broker.join()
    b, _ = broker.join()
    broker.report(a, 300.0)
    broker.report(b, 100.0)
    share, epoch = broker.throttled(a, 0, 300.0)
    assert (share, epoch) == (100.0, 1)  # (300 + 100) / 2, over two members
    assert broker.report(b, 100.0) == (100.0, 1)  # b learns it at its next report
    assert broker.lowest() == 200.0


def test_a_late_429_of_an_old_epoch_does_not_cut_again() -> None:
    broker = RateBroker(clock=Clock())
    a, _ = broker.join()
    b, _ = broker.join()
    broker.report(a, 200.0)
    broker.report(b, 200.0)
    broker.throttled(a, 0, 200.0)
    assert broker.throttled(b, 0, 200.0) == (100.0, 1)  # the same episode


def test_a_member_that_joins_after_a_cut_gets_its_share_of_the_grown_rate() -> None:
    clock = Clock()
    broker = RateBroker(clock=clock)
    a, _ = broker.join()
    broker.report(a, 100.0)
    broker.throttled(a, 0, 100.0)  # the cluster's rate: 50/s
    clock.now += 1.0  # grown x2 since (1 + t²)
    _, (share, epoch) = broker.join()
    assert epoch == 1 and share == pytest.approx(100.0 / 2)


def test_a_silent_member_stops_counting_after_its_lease() -> None:
    clock = Clock()
    broker = RateBroker(clock=clock)
    a, _ = broker.join()
    broker.join()  # a task on a node that died: never heard from again
    clock.now += LEASE / 2
    broker.report(a, 10.0)
    clock.now += LEASE / 2 + 1
    assert broker.members() == 1


def test_the_cap_is_dropped_once_it_has_grown_far_beyond_anything_sent() -> None:
    clock = Clock()
    broker = RateBroker(clock=clock)
    a, _ = broker.join()
    broker.report(a, 100.0)
    broker.throttled(a, 0, 100.0)
    clock.now += 60.0
    assert broker.report(a, 100.0) == (None, 1)
