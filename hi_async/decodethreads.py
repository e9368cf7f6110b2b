"""Decode threads fed by one queue, each result handed back by one thread-safe callback.

The decoders release the GIL, so a few threads decode in parallel with the event loop.
``ThreadPoolExecutor`` plus ``asyncio.wrap_future`` spends, per frame, a concurrent
Future with its condition variable, a second, chained asyncio Future and several lock
round trips; at thousands of frames a second that is a noticeable share of the
interpreter's time. Here a frame costs one queue put and one asyncio Future, and
results are handed back in batches: a thread that finishes a frame while the loop has
not yet picked up the previous results adds its own to them instead of waking the loop
again (each wake-up is a system call on both sides).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Item = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]
_Done = tuple[Callable[..., None], "asyncio.Future[Any]", Any]


def _resolve(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


class DecodeThreads:
    """``await threads.run(work)`` runs ``work()`` in one of ``count`` threads."""

    def __init__(self, count: int, *, name: str = "hi_async-decode") -> None:
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        #: Results waiting for the loop: (callback, future, value), per loop.
        self._done: dict[asyncio.AbstractEventLoop, collections.deque[_Done]] = {}
        #: Loops that have a drain of ``_done`` scheduled and not yet started.
        self._wake_pending: set[asyncio.AbstractEventLoop] = set()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._serve, name=f"{name}_{n}", daemon=True)
                         for n in range(count)]
        for thread in self._threads:
            thread.start()

    async def run(self, work: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((work, loop, future))
        return await future

    def _serve(self) -> None:
        while (item := self._queue.get()) is not None:
            work, loop, future = item
            if future.cancelled():
                continue  # its caller went away while it waited
            try:
                result = work()
            except BaseException as exc:  # handed to the awaiting task, which re-raises it
                self._hand_back(loop, _fail, future, exc)
            else:
                self._hand_back(loop, _resolve, future, result)

    def _hand_back(self, loop: asyncio.AbstractEventLoop, callback: Callable[..., None],
                   future: asyncio.Future[Any], value: Any) -> None:
        with self._lock:
            self._done.setdefault(loop, collections.deque()).append((callback, future, value))
            if loop in self._wake_pending:
                return  # the drain already scheduled will take this one too
            self._wake_pending.add(loop)
        try:
            loop.call_soon_threadsafe(self._drain, loop)
        except RuntimeError:  # the loop closed meanwhile: nobody awaits these any more
            with self._lock:
                self._wake_pending.discard(loop)
                self._done.pop(loop, None)

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the loop: resolve every result handed back since the last drain."""
        with self._lock:
            self._wake_pending.discard(loop)
            done = self._done.pop(loop, None)
        for callback, future, value in done or ():
            callback(future, value)

    def shutdown(self, *, wait: bool = True, drop_queued: bool = False) -> None:
        """Stop the threads after the frames in hand (and, unless ``drop_queued``, after
        every queued frame); with ``wait``, return when they have stopped."""
        if drop_queued:
            with contextlib.suppress(queue.Empty):
                while True:
                    item = self._queue.get_nowait()
                    if item is not None:
                        _, loop, future = item
                        with contextlib.suppress(RuntimeError):
                            loop.call_soon_threadsafe(future.cancel)
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()
