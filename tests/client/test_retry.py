"""Backoff, the retry budget and the adaptive limiter, with real botocore exceptions."""

from __future__ import annotations

import anyio
import botocore.exceptions as bx
import pytest

from hi_async import aws
from hi_async.aws.retry import AimdLimiter, Retrier, RetryBudget
from hi_async.errors import AccessDenied, CredentialsError, EndpointUnreachable, NotFound
from hi_async.settings import Settings


def _client_error(code: str, status: int) -> bx.ClientError:
    return bx.ClientError({"Error": {"Code": code, "Message": "msg"},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, "GetImageFrame")


@pytest.mark.parametrize("exc, kind", [
    (_client_error("ThrottlingException", 429), "throttle"),
    (_client_error("InternalServerException", 500), "retry"),
    (_client_error("ResourceNotFoundException", 404), "fatal"),
    (bx.ResponseStreamingError(error="cut"), "retry"),
    (bx.IncompleteReadError(actual_bytes=1, expected_bytes=2), "retry"),
    (bx.EndpointConnectionError(endpoint_url="http://x"), "connect"),
])
def test_errors_are_classified(exc: Exception, kind: str) -> None:
    assert aws.classify(exc) == kind


@pytest.mark.parametrize("exc, cls", [
    (bx.NoCredentialsError(), CredentialsError),
    (_client_error("UnrecognizedClientException", 403), CredentialsError),
    (_client_error("AccessDeniedException", 403), AccessDenied),
    (_client_error("ResourceNotFoundException", 404), NotFound),
    (bx.EndpointConnectionError(endpoint_url="http://x"), EndpointUnreachable),
])
def test_errors_are_translated_with_advice(exc: Exception, cls: type) -> None:
    err = aws.translate(exc, "get a frame")
    assert isinstance(err, cls) and err.hint


async def test_transient_errors_are_retried_and_counted() -> None:
    retrier = Retrier(Settings(backoff_base=0.001, backoff_cap=0.002))
    calls = 0

    async def op() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise bx.ResponseStreamingError(error="cut")
        return "ok"

    assert await retrier.call(op, "x") == "ok"
    assert (calls, retrier.retries) == (3, 2)


async def test_fatal_errors_are_not_retried() -> None:
    retrier = Retrier(Settings(backoff_base=0.001))

    async def op() -> None:
        raise _client_error("AccessDeniedException", 403)

    with pytest.raises(AccessDenied):
        await retrier.call(op, "x")
    assert retrier.retries == 0


async def test_an_empty_budget_stops_retrying() -> None:
    retrier = Retrier(Settings(backoff_base=0.001), budget=RetryBudget(capacity=1))

    async def op() -> None:
        raise _client_error("InternalServerException", 500)

    with pytest.raises(Exception, match="failed"):
        await retrier.call(op, "x")
    assert retrier.retries == 1


def test_full_jitter_stays_below_the_exponential_cap() -> None:
    retrier = Retrier(Settings(backoff_base=0.1, backoff_cap=1.0))
    samples = [retrier.backoff(3) for _ in range(200)]
    assert all(0 <= s <= 0.8 for s in samples) and max(samples) > 0.4
    assert all(retrier.backoff(10) <= 1.0 for _ in range(100))


async def test_limiter_halves_on_throttling_and_recovers() -> None:
    limiter = AimdLimiter(32, cooldown=0.0)
    limiter.on_throttle()
    limiter.on_throttle()
    assert limiter.limit == 8
    for _ in range(2000):
        limiter.on_success()
    assert limiter.limit == 32


async def test_limiter_bounds_concurrency() -> None:
    limiter = AimdLimiter(3)
    peak = 0

    async def worker() -> None:
        nonlocal peak
        async with limiter:
            peak = max(peak, limiter.in_flight)
            await anyio.sleep(0.001)

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(worker)
    assert peak == 3 and limiter.in_flight == 0


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_send_rate_is_unlimited_until_throttled_then_capped_below_what_was_sent() -> None:
    from hi_async.aws.retry import SendRate

    clock = _Clock()
    rate = SendRate(clock=clock)
    for _ in range(100):  # 100 requests in 0.5 s: 200 requests/s measured
        await rate.acquire()
        clock.now += 0.005
    assert rate.rate is None
    rate.on_throttle()
    assert rate.rate == pytest.approx(0.5 * 200, rel=0.05)
    assert rate.lowest == pytest.approx(rate.rate)


def test_send_rate_regrows_with_the_square_of_time_and_cuts_once_per_episode() -> None:
    from hi_async.aws.retry import SendRate

    clock = _Clock()
    rate = SendRate(clock=clock, cooldown=0.2)
    rate.on_throttle()  # nothing measured yet: the floor
    first = rate.rate
    assert first == SendRate.MIN_RATE
    rate.on_throttle()  # same episode (within the cooldown): no second cut
    assert rate.rate == first
    clock.now += 1.0
    assert rate.rate == pytest.approx(2 * first)
    clock.now += 2.0  # three seconds since the cut
    assert rate.rate == pytest.approx(10 * first)
    clock.now += 1000.0  # far above anything sent: the cap is dropped
    assert rate.rate is None


async def test_a_429_cuts_again_only_for_a_request_sent_at_the_cap_now_in_force() -> None:
    from hi_async.aws.retry import SendRate

    clock = _Clock()
    rate = SendRate(clock=clock)
    for _ in range(100):  # 200 requests/s measured
        sent_before = await rate.acquire()
        clock.now += 0.005
    rate.on_throttle(sent_before)
    first = rate.rate
    assert first == pytest.approx(100, rel=0.05)
    # Requests still in flight from before the cut are refused too: no second cut, at any
    # time after it (episodes are told apart by send epoch, not by a cooldown).
    clock.now += 5.0
    rate.on_throttle(sent_before)
    assert rate.lowest == pytest.approx(first)
    # One request sent at the new cap and refused: halve again at once.
    clock.now += 0.001
    sent_after = await rate.acquire()
    assert sent_after > sent_before
    rate.on_throttle(sent_after)
    second = rate.lowest
    assert second is not None and second <= first / 2
    rate.on_throttle(sent_after)  # the same epoch is now old: no third cut
    assert rate.lowest == second


def test_an_unreachable_endpoint_is_named_by_the_host_botocore_tried() -> None:
    import botocore.exceptions as bx

    from hi_async import aws
    from hi_async.errors import EndpointUnreachable

    tried = "https://runtime-medical-imaging.eu-west-1.amazonaws.com/datastore/d/imageSet/i/x"
    err = aws.translate(bx.EndpointConnectionError(endpoint_url=tried), "get a frame",
                        Settings())
    assert isinstance(err, EndpointUnreachable)
    assert "https://runtime-medical-imaging.eu-west-1.amazonaws.com does not answer" in str(
        err.message)
    assert "/datastore/" not in err.message
    # Without a URL in the error: the configured endpoint, else AWS.
    bare = aws.translate(bx.ConnectTimeoutError(endpoint_url=""), "get a frame",
                         Settings(endpoint_url="http://127.0.0.1:9"))
    assert "http://127.0.0.1:9 does not answer" in bare.message


def test_a_shared_rate_is_cut_once_per_epoch_and_split_among_its_members() -> None:
    from hi_async.aws.sendrate import RateShare

    share = RateShare()
    for member in (1, 2, 3, 4):
        share.join(member)
        share.report(member, 100.0)
    # Member 2's 429 in epoch 0: half of what all four send together, in four shares.
    assert share.throttled(2, 0, 100.0) == pytest.approx(400.0 / 2 / 4)
    assert share.epoch == 1 and share.lowest == pytest.approx(200.0)
    # The same episode seen by the others: nothing new.
    assert share.throttled(3, 0, 100.0) is None and share.epoch == 1
    # A 429 at the new rate cuts again; a member that left no longer gets a share.
    share.leave(4)
    for member in (1, 2, 3):
        share.report(member, 50.0)
    assert share.throttled(1, 1, 50.0) == pytest.approx(150.0 / 2 / 3)
    assert share.epoch == 2 and share.lowest == pytest.approx(75.0)


def test_a_report_from_before_the_last_cut_counts_no_more_than_the_cap_in_force() -> None:
    from hi_async.aws.sendrate import RateShare

    clock = [0.0]
    share = RateShare(clock=lambda: clock[0])
    for member in (1, 2):
        share.join(member)
        share.report(member, 400.0)
    assert share.throttled(1, 0, 400.0) == pytest.approx(200.0)  # 800 / 2, two shares
    # Member 2 has not reported since the cut: its 400/s predates it. Each member is
    # capped at 200/s now, so a 429 a moment later halves 400 in all, not 600.
    clock[0] = 0.01
    assert share.throttled(1, 1, 150.0) == pytest.approx(0.5 * (150.0 + 200.0) / 2, rel=1e-3)
    # The cap grows as each member's SendRate grows it (x2 one second after the cut).
    share.report(1, 500.0)
    share.report(2, 500.0)
    clock[0] = 1.01
    assert share.throttled(2, 2, 500.0) == pytest.approx(0.5 * 2 * (87.5 * 2) / 2, rel=1e-3)


def test_an_imposed_rate_replaces_an_older_one_only() -> None:
    from hi_async.aws.sendrate import SendRate

    clock = [0.0]
    cuts: list[tuple[int, float]] = []
    rate = SendRate(clock=lambda: clock[0], on_cut=lambda epoch, sending: cuts.append(
        (epoch, sending)))
    rate.on_throttle(0)  # a local cut at once, reported to whoever shares the rate
    assert len(cuts) == 1 and cuts[0][0] == 0 and rate.epoch == 1
    rate.impose(40.0, 1)  # the coordinator's share for epoch 1
    assert rate.rate == pytest.approx(40.0)
    rate.impose(5.0, 0)  # a decision older than the one in force: ignored
    assert rate.rate == pytest.approx(40.0)
    clock[0] += 1.0
    assert rate.rate == pytest.approx(80.0)  # and it grows back as a local cut does


async def test_a_caller_cancelled_while_waiting_for_the_limiter_leaves_no_waiter_behind() -> None:
    limiter = AimdLimiter(1)
    await limiter.__aenter__()
    with anyio.move_on_after(0.01):
        async with limiter:
            raise AssertionError("the only slot is taken")
    assert limiter._waiting == 0
    await limiter.__aexit__(None, None, None)
    with anyio.fail_after(1):  # the freed slot is there, with nobody left to hand it to
        async with limiter:
            assert limiter.in_flight == 1
    assert limiter.in_flight == 0


async def test_a_freed_slot_goes_to_a_caller_that_waits_for_it() -> None:
    limiter = AimdLimiter(1)
    order: list[str] = []

    async def second() -> None:
        async with limiter:
            order.append("second")

    await limiter.__aenter__()
    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        assert limiter._waiting == 1
        order.append("first")
        await limiter.__aexit__(None, None, None)
    assert order == ["first", "second"] and limiter.in_flight == 0
