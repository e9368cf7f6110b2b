"""Decode + verify stage: a pool of workers running :func:`hi_async.stages.work.run_job`.

A thread pool by default: OpenJPH and the CRC32 release the GIL, so threads decode in
parallel without pickling every compressed frame to another process (the benchmark's
pool sweep: thread 1.5x process on 2 cores). A process pool is the alternative for
machines where the event loop's own core is the scarce one. Workers ignore SIGINT so that
Ctrl-C is handled once, by the parent, which then shuts the pool down.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import anyio

from ..errors import DecodePoolBroken
from .work import Job, Outcome, run_batch, run_job


def _is_codec_error(exc: object) -> bool:
    return isinstance(exc, RuntimeError) and "ojph" in str(exc).lower()


def _is_codec_noise(unraisable: Any) -> bool:
    """OpenJPH reports a corrupt codestream through an exception Cython cannot raise."""
    return _is_codec_error(getattr(unraisable, "exc_value", None))


def _quiet_codec_noise() -> None:
    """Drop the codec's stray error reports; the frame's failure is reported properly by
    run_job. Anything else still reaches the previous hooks.

    OpenJPH's error callback raises inside C++ code: the exception is printed through
    ``sys.excepthook`` (PyErr_Print) or, from Cython, ``sys.unraisablehook``, and the
    decode call then fails on its own. Left alone, each corrupt frame (one a re-fetch
    usually fixes) would write "RuntimeError: ojph error" over the progress bar, even
    with ``--quiet``.
    """
    previous_unraisable = sys.unraisablehook
    if not getattr(previous_unraisable, "_hi_async_quiet", False):
        def unraisable_hook(unraisable: Any) -> None:
            if not _is_codec_noise(unraisable):
                previous_unraisable(unraisable)

        unraisable_hook._hi_async_quiet = True  # type: ignore[attr-defined]
        sys.unraisablehook = unraisable_hook
    previous_except = sys.excepthook
    if not getattr(previous_except, "_hi_async_quiet", False):
        def except_hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
            if not _is_codec_error(value):
                previous_except(kind, value, tb)

        except_hook._hi_async_quiet = True  # type: ignore[attr-defined]
        sys.excepthook = except_hook


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _quiet_codec_noise()


def _start_forkserver_ignoring_sigint() -> None:
    """Start the fork server with SIGINT blocked and ignored.

    It imports the decoders before it would start ignoring SIGINT itself, and each worker
    it forks has the default handler until _init_worker runs: a Ctrl-C in that window
    printed KeyboardInterrupt tracebacks from workers and killed a worker mid-write.
    Processes inherit both the ignored disposition and the mask, so neither ever sees it.
    """
    from multiprocessing import forkserver

    if threading.current_thread() is not threading.main_thread():
        forkserver.ensure_running()
        return
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, old)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


#: How many times a process pool whose worker died mid-run is replaced before the run
#: gives up (workers that keep dying are short of memory, not unlucky).
MAX_RESTARTS = 8

_MAIN_GUARD_HINT = ("in a script, call hi_async from under 'if __name__ == \"__main__\":' "
                    "(worker processes import the main module); or use Settings(pool='thread')")


class DecodePool:
    """``await pool.run(job)`` runs one frame's decode/verify/write in a worker.

    A process pool survives a worker that dies mid-run (killed by the OOM killer, or a
    codec crash): the pool is replaced, and each frame that was in the dead pool is run
    again alone, in a one-worker pool of its own. If that worker dies too, the frame
    killed it: it comes back as a mismatch, so the pipeline fetches it again and then
    reports it, and every other frame goes on. A pool that dies before any frame was
    done never started (a script without a main guard): that stops the run at once.
    """

    def __init__(self, kind: str, workers: int, *,
                 work: Callable[[Job], Outcome] = run_job) -> None:
        self.kind = kind
        self.workers = workers
        self.restarts = 0
        self._work = work
        self._executor: Executor
        self._generation = 0
        self._started = False
        self._alone: Executor | None = None
        self._alone_lock = anyio.Lock()
        if kind == "process":
            self._executor = self._processes(workers)
        else:
            _quiet_codec_noise()
            self._executor = ThreadPoolExecutor(workers, thread_name_prefix="hi_async-decode")

    @staticmethod
    def _processes(workers: int) -> ProcessPoolExecutor:
        # forkserver: never fork the running event loop and its threads; the server
        # imports the decoders once and each worker is forked from it.
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["hi_async.stages.work"])
        _start_forkserver_ignoring_sigint()
        return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker)

    async def run(self, job: Job) -> Outcome:
        if self.kind != "process":
            return await asyncio.wrap_future(self._executor.submit(self._work, job))
        generation = self._generation
        try:
            outcome = await asyncio.wrap_future(self._executor.submit(self._work, job))
        except BrokenProcessPool:
            if not self._started:
                raise DecodePoolBroken("a decode worker process died before it decoded "
                                       "anything", hint=_MAIN_GUARD_HINT) from None
            self._replace(generation)
            return await self._run_alone(job)
        self._started = True
        return outcome

    def _replace(self, generation: int) -> None:
        """A new pool for the broken one, once per break (many frames see the same one)."""
        if generation != self._generation:
            return
        if self.restarts >= MAX_RESTARTS:
            raise DecodePoolBroken(
                f"decode worker processes keep dying ({self.restarts} replaced)",
                hint="they are likely short of memory: use fewer --decoders or "
                "--pool thread; frames already verified are kept, rerun to resume")
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._processes(self.workers)
        self._generation += 1
        self.restarts += 1

    async def _run_alone(self, job: Job) -> Outcome:
        """Run a frame from a dead pool in a one-worker pool of its own, one at a time."""
        async with self._alone_lock:
            if self._alone is None:
                self._alone = self._processes(1)
            try:
                return await asyncio.wrap_future(self._alone.submit(self._work, job))
            except BrokenProcessPool:
                self._alone.shutdown(wait=False, cancel_futures=True)
                self._alone = None
                return Outcome("mismatch", error="the decoder's process died on this frame "
                               "(a codec crash, or it was killed)")

    async def run_many(self, jobs: list[Job]) -> list[Outcome]:
        return await asyncio.wrap_future(self._executor.submit(run_batch, jobs))

    async def warm_up(self) -> None:
        """Start every worker now, so that start-up is not charged to the first frames."""
        if self.kind == "process" and not self._started:
            probe = Job(b"", "application/octet-stream", 1, 1, 1, "|u1", None, "none", None)
            async with anyio.create_task_group() as tg:
                for _ in range(self.workers):
                    tg.start_soon(self.run, probe)

    async def aclose(self) -> None:
        executors = [e for e in (self._executor, self._alone) if e is not None]

        def shut_down() -> None:
            for executor in executors:
                executor.shutdown(wait=True, cancel_futures=True)

        await anyio.to_thread.run_sync(shut_down, abandon_on_cancel=True)

    def close_now(self) -> None:
        """Interrupted: drop queued frames, wait only for the few running ones.

        Blocking here (a few ms) is deliberate: leaving the pool to an atexit hook after
        an interrupt makes it write to a closed pipe, and leaves workers behind.
        """
        for executor in (self._executor, self._alone):
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
