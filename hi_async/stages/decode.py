"""Decode + verify stage: a pool of workers running :func:`hi_async.stages.work.run_job`.

Process pool by default (decoding and CRC32 never touch the event loop's core); a thread
pool is the alternative, since OpenJPH releases the GIL. Workers ignore SIGINT so that
Ctrl-C is handled once, by the parent, which then shuts the pool down.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import sys
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

import anyio

from .work import Job, Outcome, run_batch, run_job


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # OpenJPH reports a corrupt codestream through an exception Cython cannot raise and
    # prints it; the frame's failure is reported properly by run_job instead.
    sys.unraisablehook = lambda _unraisable: None


class DecodePool:
    """``await pool.run(job)`` runs one frame's decode/verify/write in a worker."""

    def __init__(self, kind: str, workers: int) -> None:
        self.kind = kind
        self.workers = workers
        self._executor: Executor
        if kind == "process":
            # forkserver: never fork the running event loop and its threads; the
            # server imports the decoders once and each worker is forked from it.
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["hi_async.stages.work"])
            self._executor = ProcessPoolExecutor(workers, mp_context=ctx,
                                                 initializer=_init_worker)
        else:
            self._executor = ThreadPoolExecutor(workers, thread_name_prefix="hi_async-decode")

    async def run(self, job: Job) -> Outcome:
        return await asyncio.wrap_future(self._executor.submit(run_job, job))

    async def run_many(self, jobs: list[Job]) -> list[Outcome]:
        return await asyncio.wrap_future(self._executor.submit(run_batch, jobs))

    async def warm_up(self) -> None:
        """Start every worker now, so that start-up is not charged to the first frames."""
        if self.kind == "process":
            probe = Job(b"", "application/octet-stream", 1, 1, 1, "|u1", None, "none", None)
            async with anyio.create_task_group() as tg:
                for _ in range(self.workers):
                    tg.start_soon(self.run, probe)

    async def aclose(self) -> None:
        executor = self._executor
        await anyio.to_thread.run_sync(
            lambda: executor.shutdown(wait=True, cancel_futures=True), abandon_on_cancel=True
        )

    def close_now(self) -> None:
        """Interrupted: drop queued frames, wait only for the few running ones.

        Blocking here (a few ms) is deliberate: leaving the pool to an atexit hook after
        an interrupt makes it write to a closed pipe, and leaves workers behind.
        """
        self._executor.shutdown(wait=True, cancel_futures=True)
