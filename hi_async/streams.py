"""The library's streams: a download that runs in the Downloader's task group and hands
what it makes (frames, volumes, datasets) to a consumer's ``async for``.

The producer runs beside the consumer, not inside its loop body, so a slow consumer
slows the download through a bounded buffer rather than stalling the event loop, and a
consumer that breaks out of its loop stops the download: the next hand-off finds the
receiving end closed and the producer ends quietly. An error of the download reaches the
consumer at its next item.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

import anyio
from anyio.abc import TaskGroup

T = TypeVar("T")
#: Hands one item to the consumer; waits while its buffer is full.
Put = Callable[[T], Awaitable[None]]


class _Stop(Exception):
    """The consumer went away: the producer stops without an error."""


async def produced(tg: TaskGroup, size: int,
                   work: Callable[[Put[T]], Awaitable[BaseException | None]],
                   ) -> AsyncGenerator[T, None]:
    """Run ``work(put)`` in ``tg`` and yield what it puts, ``size`` items buffered.

    ``work`` returns an error to raise once every item it put was consumed (frames that
    failed, say), or None; an exception it raises is raised at the consumer's next item.
    """
    send, receive = anyio.create_memory_object_stream[T | BaseException](size)

    async def put(item: T) -> None:
        try:
            await send.send(item)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise _Stop from None

    async def produce() -> None:
        async with send:
            try:
                error = await work(put)
                if error is not None:
                    await send.send(error)
            except (_Stop, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
            except Exception as exc:
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await send.send(exc)

    tg.start_soon(produce)
    async with receive:
        async for item in receive:
            if isinstance(item, BaseException):
                raise item
            yield item
