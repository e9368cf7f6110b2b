"""The pool of decode workers that run :func:`hi_async.verify.verify_frame`.

A thread pool by default: OpenJPH and the CRC32 release the GIL, so threads decode in
parallel without pickling every compressed frame to another process
(benchmarks/NOTES.md has the pool sweep). A process pool is the alternative for
machines where the event loop's own core is the scarce one. Workers ignore SIGINT so that
Ctrl-C is handled once, by the parent, which then shuts the pool down.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

import anyio

from . import codecs
from .decodethreads import DecodeThreads
from .errors import DecodePoolBroken
from .libc import die_with_parent
from .model import Check, EncodedFrame, FrameRef, Outcome
from .verify import verify_frame

if TYPE_CHECKING:
    from .volumes.buffer import SliceTarget

#: The signature of the work a pool runs per frame (``verify_frame``; tests pass others).
Work = Callable[..., Outcome]


def _is_codec_error(exc: object) -> bool:
    return isinstance(exc, RuntimeError) and "ojph" in str(exc).lower()


def _is_codec_noise(unraisable: Any) -> bool:
    """OpenJPH reports a corrupt codestream through an exception Cython cannot raise."""
    return _is_codec_error(getattr(unraisable, "exc_value", None))


#: The hooks :func:`_quiet_codec_noise` installed, so that it never wraps its own twice.
_QUIET_HOOKS: set[object] = set()


def _quiet_codec_noise() -> None:
    """Drop the codec's stray error reports, counting them for the thread that met them
    (:func:`hi_async.codecs.note_swallowed_codec_error`): the decode that met one fails,
    and verify_frame reports the frame properly. Anything else still reaches the
    previous hooks.

    OpenJPH's error callback raises inside C++ code: the exception is printed through
    ``sys.excepthook`` (PyErr_Print) or, from Cython, ``sys.unraisablehook``, and the
    decode call then fails on its own. Left alone, each corrupt frame (one a re-fetch
    usually fixes) would write "RuntimeError: ojph error" over the progress bar, even
    with ``--quiet``.
    """
    previous_unraisable = sys.unraisablehook
    if previous_unraisable not in _QUIET_HOOKS:
        def unraisable_hook(unraisable: Any) -> None:
            if _is_codec_noise(unraisable):
                codecs.note_swallowed_codec_error()
            else:
                previous_unraisable(unraisable)

        _QUIET_HOOKS.add(unraisable_hook)
        sys.unraisablehook = unraisable_hook
    previous_except = sys.excepthook
    if previous_except not in _QUIET_HOOKS:
        def except_hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
            if _is_codec_error(value):
                codecs.note_swallowed_codec_error()
            else:
                previous_except(kind, value, tb)

        _QUIET_HOOKS.add(except_hook)
        sys.excepthook = except_hook


def _init_worker() -> None:
    die_with_parent(os.getppid())  # the fork server, which dies with the download
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


#: A one-pixel frame that starts a worker process without touching the disk.
_PROBE = EncodedFrame(
    FrameRef(datastore_id="", image_set_id="", image_frame_id="", study_instance_uid="",
             series_instance_uid="", sop_instance_uid="", frame_number=1, rows=1, columns=1,
             samples_per_pixel=1, bits_allocated=8, bits_stored=8, signed=False,
             stored_transfer_syntax_uid="1.2.840.10008.1.2.1", expected_crc32=None),
    b"\0", "application/octet-stream")

#: How many times a process pool whose worker died mid-run is replaced before the run
#: gives up (workers that keep dying are short of memory, not unlucky).
MAX_RESTARTS = 8

_MAIN_GUARD_HINT = ("in a script, call hi_async from under 'if __name__ == \"__main__\":' "
                    "(worker processes import the main module); or use Settings(pool='thread')")


class DecodePool:
    """``await pool.run(frame, path=..., fmt=...)`` runs one frame's decode, verify and
    write (:func:`~hi_async.verify.verify_frame`) in a worker.

    A process pool survives a worker that dies mid-run (killed by the OOM killer, or a
    codec crash): the pool is replaced, and each frame that was in the dead pool is run
    again alone, in a one-worker pool of its own. If that worker dies too, the frame
    killed it: it comes back as a mismatch, so the pipeline fetches it again and then
    reports it, and every other frame goes on. A pool that dies before any frame was
    done never started (a script without a main guard): that stops the run at once.
    """

    def __init__(self, kind: str, workers: int, *, work: Work = verify_frame,
                 inline_max_bytes: int = 0) -> None:
        self.kind = kind
        self.workers = workers
        #: Thread pools only: frames of at most this many decoded bytes are done on the
        #: calling thread (the event loop's), the rest in the threads.
        self.inline_max_bytes = inline_max_bytes if kind == "thread" else 0
        self.restarts = 0
        self._work = work
        self._executor: Executor
        self._generation = 0
        self._started = False
        self._alone: Executor | None = None
        self._alone_lock = anyio.Lock()
        self._threads: DecodeThreads | None = None
        if kind == "process":
            self._executor = self._processes(workers)
        else:
            _quiet_codec_noise()
            self._threads = DecodeThreads(workers)

    @staticmethod
    def _processes(workers: int) -> ProcessPoolExecutor:
        # forkserver: never fork the running event loop and its threads; the server
        # imports the decoders once and each worker is forked from it.
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["hi_async.decode_server", "hi_async.verify"])
        _start_forkserver_ignoring_sigint()
        return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker)

    async def run(self, frame: EncodedFrame, *, path: str | None, fmt: str,
                  want_pixels: bool = False, target: SliceTarget | None = None) -> Outcome:
        """``target``: the frame's slot in a volume buffer file (``--volume``), if any."""
        extra = {"target": target} if target is not None else {}
        if self.inline_max_bytes and frame.ref.decoded_bytes <= self.inline_max_bytes:
            return self._work(frame, path=path, fmt=fmt, want_pixels=want_pixels, **extra)
        work = functools.partial(self._work, frame, path=path, fmt=fmt,
                                 want_pixels=want_pixels, **extra)
        if self._threads is not None:
            return await self._threads.run(work)
        generation = self._generation
        try:
            outcome = await asyncio.wrap_future(self._executor.submit(work))
        except BrokenProcessPool:
            if not self._started:
                raise DecodePoolBroken("a decode worker process died before it decoded "
                                       "anything", hint=_MAIN_GUARD_HINT) from None
            self._replace(generation)
            return await self._run_alone(work)
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

    async def _run_alone(self, work: Callable[[], Outcome]) -> Outcome:
        """Run a frame from a dead pool in a one-worker pool of its own, one at a time."""
        async with self._alone_lock:
            if self._alone is None:
                self._alone = self._processes(1)
            try:
                return await asyncio.wrap_future(self._alone.submit(work))
            except BrokenProcessPool:
                self._alone.shutdown(wait=False, cancel_futures=True)
                self._alone = None
                return Outcome(Check.MISMATCH, error="the decoder's process died on this "
                               "frame (a codec crash, or it was killed)")

    async def warm_up(self) -> None:
        """Start every worker now, so that start-up is not charged to the first frames."""
        if self.kind == "process" and not self._started:
            async with anyio.create_task_group() as tg:
                for _ in range(self.workers):
                    tg.start_soon(functools.partial(self.run, _PROBE, path=None, fmt="none"))

    async def aclose(self) -> None:
        if self._threads is not None:
            await anyio.to_thread.run_sync(self._threads.shutdown, abandon_on_cancel=True)
            return
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
        if self._threads is not None:
            self._threads.shutdown(wait=True, drop_queued=True)
            return
        for executor in (self._executor, self._alone):
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
