"""The parent's side of the worker processes: start them, hand them shards, gather results,
replace a worker that dies and give its frames to another.

A shard is a list of frames of one run, to be written under one folder in one format.
Each worker holds at most ``max_load`` frames at a time, so a slow worker never sits on
much of the work and memory stays bounded; shards waiting for a worker are few
(:meth:`WorkerPool.submit` waits while they are). Several runs may share the pool (the
workflow downloads several studies at once); each run gets its own results.

A worker that dies (killed, out of memory, a decoder crash) is replaced, and the frames
it held that had no result yet are run again, each alone (frames of DICOM files: each
instance alone); a frame whose worker dies twice with it is reported failed, so one
poisonous frame cannot stop a download. Workers that keep dying stop the runs with advice.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.buffered import BufferedByteReceiveStream

from ..aws.credentials import Frozen
from ..aws.retry import Retrier
from ..aws.sendrate import RateShare
from ..errors import DecodePoolBroken, HiAsyncError
from ..model import FRAME_STATUS, FrameRef, FrameResult, FrameStatus
from ..settings import Settings
from . import protocol
from .shards import Deliver, RunHandle, Shard, WorkerSlot, unfinished

if TYPE_CHECKING:
    from ..volumes.buffer import SliceTarget

#: How many times dead workers are replaced before the runs give up.
MAX_RESTARTS = 8
#: Seconds a worker has to start (import its codecs, resolve credentials) and say so.
START_TIMEOUT = 120.0
#: Seconds a worker has to exit after its stdin closed before it is killed.
STOP_TIMEOUT = 2.0
#: Seconds a failed run waits for the frames its workers still hold (their files may
#: already be written: their results are journaled) before it gives up on them.
FAILED_RUN_GRACE = 10.0

#: glibc's allocator settings for a worker, unless the environment sets them: blocks up
#: to 4 MiB come from the heap (not a fresh mapping each), and up to 32 MiB of freed heap
#: is kept for reuse instead of handed back to the kernel. Otherwise the buffers a frame
#: needs (its response, its pixels) are mapped and unmapped frame after frame and
#: page-fault in each time: 2490 frames took 100-110 thousand minor faults, 62 thousand
#: with these (most of those the processes' start).
WORKER_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(4 << 20), "MALLOC_TRIM_THRESHOLD_": str(32 << 20)}


def _worker_environment() -> dict[str, str]:
    """The parent's environment (AWS configuration and credentials included), with the
    numeric libraries kept to one thread (a worker's parallelism is its decode threads)
    and the allocator tuned for frame-sized buffers (:data:`WORKER_MALLOC`)."""
    return {**WORKER_MALLOC, **os.environ, "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class WorkerPool:
    """``async with WorkerPool(settings, endpoint_url, workers=N) as pool``."""

    def __init__(self, settings: Settings, endpoint_url: str, *, credentials: Frozen | None,
                 workers: int, lanes: int, decoders: int, retrier: Retrier,
                 max_load: int | None = None) -> None:
        self.settings = settings
        self.endpoint_url = endpoint_url
        self._credentials = credentials
        self.size = workers
        self.lanes = lanes
        self.decoders = decoders
        self.max_load = max_load or lanes * 2
        self.restarts = 0
        self.rate = RateShare()
        #: Where the workers' retries and 429s are counted.
        self.retrier = retrier
        self._numbers = itertools.count()
        self._shard_ids = itertools.count()
        self._workers: list[WorkerSlot] = []
        self._shards: dict[int, Shard] = {}
        self._queue: collections.deque[Shard] = collections.deque()
        self._changed = anyio.Event()
        self._runs: set[RunHandle] = set()
        self._tg: TaskGroup | None = None
        self._closing = False

    async def __aenter__(self) -> WorkerPool:
        self._tg = await anyio.create_task_group().__aenter__()
        try:
            for _ in range(self.size):
                await self._start_worker()
            self._tg.start_soon(self._assign)
        except BaseException:
            await self.__aexit__(*sys.exc_info())
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._closing = True
        with anyio.CancelScope(shield=True):
            await self._stop_workers()
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(*exc)

    async def wait_ready(self) -> None:
        """Until every worker has started (the pool hands out work as soon as one has)."""
        while not all(w.ready for w in self._workers if w.alive):
            await self._wait_changed()

    # Runs.

    def open_run(self, deliver: Deliver) -> RunHandle:
        run = RunHandle(deliver)
        self._runs.add(run)
        return run

    async def submit(self, run: RunHandle, frames: list[FrameRef], out_dir: Path | None,
                     fmt: str, *, targets: Sequence[SliceTarget | None] | None = None,
                     dicom: Any = None) -> None:
        """Queue ``frames`` as one shard of ``run``; waits while enough work is queued.

        ``targets``: per frame, its slot in a volume buffer file (``--volume``).
        ``dicom`` (a ``DicomShard``): the frames are whole instances, to be written as
        DICOM files by the worker that gets them; they are never split up."""
        while len(self._queue) >= self.size and not run.failed.is_set():
            await self._wait_changed()
        if run.failed.is_set():
            return
        shard = Shard(next(self._shard_ids), run, tuple(frames), out_dir, fmt,
                       pending=set(range(len(frames))),
                       targets=tuple(targets) if targets is not None else None, dicom=dicom)
        self._add_shard(shard)

    async def finish_run(self, run: RunHandle) -> None:
        """Wait until every shard of ``run`` has a result for each frame; raise its error
        if it failed, once the frames its workers still held came back (or a grace
        period ran out)."""
        try:
            async with anyio.create_task_group() as tg:
                async def grace_after_failure() -> None:
                    await run.failed.wait()
                    await anyio.sleep(FAILED_RUN_GRACE)
                    tg.cancel_scope.cancel()

                tg.start_soon(grace_after_failure)
                if run.open_shards:
                    run.idle = anyio.Event()
                    await run.idle.wait()
                tg.cancel_scope.cancel()
        finally:
            self._runs.discard(run)
        if run.error is not None:
            raise run.error

    async def close_run(self, run: RunHandle) -> None:
        """Drop what is left of ``run`` (it failed or was cancelled)."""
        self._runs.discard(run)
        for shard in [s for s in self._shards.values() if s.run is run]:
            self._close_shard(shard)
        self._queue = collections.deque(s for s in self._queue if s.run is not run)
        self._notify()

    # Shards.

    def _add_shard(self, shard: Shard, *, first: bool = False) -> None:
        self._shards[shard.shard_id] = shard
        shard.run.open_shards += 1
        if first:
            self._queue.appendleft(shard)
        else:
            self._queue.append(shard)
        self._notify()

    def _close_shard(self, shard: Shard) -> None:
        if self._shards.pop(shard.shard_id, None) is None:
            return
        if shard.worker is not None:
            shard.worker.shards.discard(shard.shard_id)
            shard.worker.load -= len(shard.pending)
        shard.pending.clear()
        run = shard.run
        run.open_shards -= 1
        if run.open_shards == 0:
            run.idle.set()

    async def _assign(self) -> None:
        """Hand queued shards to the least loaded worker that has room, forever."""
        while True:
            worker = self._room()
            if not self._queue or worker is None:
                await self._wait_changed()
                continue
            shard = self._queue.popleft()
            if shard.shard_id not in self._shards:
                continue  # its run was closed while it waited
            shard.worker = worker
            worker.shards.add(shard.shard_id)
            worker.load += len(shard.pending)
            left = sorted(shard.pending)
            frames = tuple(shard.frames[i] for i in left)
            if len(frames) != len(shard.frames):
                if shard.targets is not None:
                    shard.targets = tuple(shard.targets[i] for i in left)
                shard.frames, shard.pending = frames, set(range(len(frames)))
            await self._send(worker, protocol.Assign(
                shard.shard_id, str(shard.out_dir) if shard.out_dir is not None else None,
                shard.fmt, frames, targets=shard.targets, dicom=shard.dicom))

    def _room(self) -> WorkerSlot | None:
        ready = [w for w in self._workers if w.alive and w.ready and w.load < self.max_load]
        return min(ready, key=lambda w: w.load) if ready else None

    def _notify(self) -> None:
        """Wake every task waiting for a change (each waits on the event of its time)."""
        self._changed.set()
        self._changed = anyio.Event()

    async def _wait_changed(self) -> None:
        await self._changed.wait()

    # Workers.

    async def _start_worker(self) -> None:
        assert self._tg is not None
        process = await anyio.open_process(
            [sys.executable, "-m", "hi_async.workers.worker", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
            start_new_session=True, env=_worker_environment())
        assert process.stdout is not None
        worker = WorkerSlot(next(self._numbers), process,
                            BufferedByteReceiveStream(process.stdout))
        self._workers.append(worker)
        self.rate.join(worker.number)
        await self._send(worker, protocol.Start(self.settings, self.endpoint_url,
                                                self._credentials, self.lanes, self.decoders))
        self._tg.start_soon(self._serve_worker, worker)

    async def _send(self, worker: WorkerSlot, message: Any) -> None:
        stdin = worker.process.stdin
        assert stdin is not None
        # If it died, its reader sees the end of its output and deals with it.
        async with worker.lock:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError,
                                     OSError):
                await stdin.send(protocol.encode(message))

    async def _read(self, worker: WorkerSlot) -> Any:
        try:
            head = await worker.reader.receive_exactly(protocol.LENGTH.size)
            (length,) = protocol.LENGTH.unpack(head)
            return protocol.decode(await worker.reader.receive_exactly(length))
        except (anyio.IncompleteRead, anyio.EndOfStream, anyio.BrokenResourceError,
                anyio.ClosedResourceError):
            return None

    async def _serve_worker(self, worker: WorkerSlot) -> None:
        with anyio.move_on_after(START_TIMEOUT) as waiting:
            ready = await self._read(worker)
        if not isinstance(ready, protocol.Ready):
            why = "did not start in time" if waiting.cancel_called else "exited at start"
            await self._worker_died(worker, started=False, why=why)
            return
        worker.ready = True
        self._notify()
        while (message := await self._read(worker)) is not None:
            if isinstance(message, protocol.Results):
                await self._results(worker, message)
            elif isinstance(message, protocol.Throttled):
                share = self.rate.throttled(worker.number, message.epoch, message.sending)
                if share is not None:
                    for other in self._workers:
                        if other.alive:
                            await self._send(other, protocol.Rate(share, self.rate.epoch))
            elif isinstance(message, protocol.Failed):
                self._failed(message)
        if not self._closing:
            await self._worker_died(worker, started=True, why="died")

    async def _results(self, worker: WorkerSlot, message: protocol.Results) -> None:
        self.retrier.absorb(message.retries, message.throttled)
        self.rate.report(worker.number, message.sending)
        by_run: dict[RunHandle, list[FrameResult]] = {}
        done: list[Shard] = []
        noted = set(message.noted)
        for (shard_id, index, status, content_type, crc, error, nbytes, path, file_bytes,
             file_crc) in message.items:
            shard = self._shards.get(shard_id)
            if shard is None or index not in shard.pending:
                continue  # its run was closed, or a result after the frame was re-run
            shard.pending.discard(index)
            worker.load -= 1
            if status == "verified":
                shard.run.by_worker[str(worker.process.pid)] += 1
            by_run.setdefault(shard.run, []).append(FrameResult(
                ref=shard.frames[index], status=FRAME_STATUS[status], content_type=content_type,
                actual_crc32=crc, path=Path(path) if path is not None else None, error=error,
                encoded_bytes=nbytes, file_bytes=file_bytes, file_crc32=file_crc,
                noted=(shard_id, index) in noted))
            if not shard.pending:
                done.append(shard)
        self._notify()
        await self._deliver(by_run)
        for shard in done:  # after delivery: a closed shard may let its run finish
            self._close_shard(shard)

    def _failed(self, message: protocol.Failed) -> None:
        """A worker met an error that stops the run: its shard is given up, and the run's
        shards no worker holds yet are dropped; the others finish or fail in turn."""
        shard = self._shards.get(message.shard_id) if message.shard_id is not None else None
        runs = [shard.run] if shard is not None else list(self._runs)
        for run in runs:
            run.fail(message.error())
            for queued in [s for s in self._queue if s.run is run]:
                self._close_shard(queued)
            self._queue = collections.deque(s for s in self._queue if s.run is not run)
        if shard is not None:
            self._close_shard(shard)
        self._notify()

    async def _worker_died(self, worker: WorkerSlot, *, started: bool, why: str) -> None:
        worker.alive = False
        self.rate.leave(worker.number)
        code = await self._reap(worker)
        lost = [self._shards[i] for i in sorted(worker.shards) if i in self._shards]
        if not started and not self.restarts and not any(w.ready for w in self._workers):
            self._fail_all(DecodePoolBroken(
                f"a worker process {why} (exit code {code}) before it did any work",
                hint="its error is printed above; --workers 1 runs everything in this "
                "process"))
            return
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            self._fail_all(DecodePoolBroken(
                f"worker processes keep dying ({self.restarts - 1} replaced; the last "
                f"exit code was {code})",
                hint="they are likely short of memory: use fewer --workers; frames already "
                "verified are kept, rerun to resume"))
            return
        failed: dict[RunHandle, list[FrameResult]] = {}
        for shard in lost:
            for indices in unfinished(shard):
                alone = tuple(shard.frames[i] for i in indices)
                if shard.deaths >= 1:  # it was alone, and its worker died again
                    failed.setdefault(shard.run, []).extend(FrameResult(
                        ref=ref, status=FrameStatus.FAILED,
                        error="the worker process died twice while it handled this frame "
                        "(a decoder crash, or it was killed)") for ref in alone)
                else:
                    self._add_shard(Shard(next(self._shard_ids), shard.run, alone,
                                           shard.out_dir, shard.fmt, deaths=shard.deaths + 1,
                                           pending=set(range(len(alone))),
                                           targets=shard.targets_of(indices),
                                           dicom=shard.dicom),
                                    first=True)
        await self._start_worker()
        await self._deliver(failed)
        for shard in lost:  # after the frames moved on: its run cannot finish early
            self._close_shard(shard)

    async def _deliver(self, by_run: dict[RunHandle, list[FrameResult]]) -> None:
        for run, results in by_run.items():
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await run.deliver(results)

    def _fail_all(self, error: HiAsyncError) -> None:
        for run in list(self._runs):
            run.fail(error)
        self._notify()

    async def _reap(self, worker: WorkerSlot) -> int | None:
        with anyio.move_on_after(STOP_TIMEOUT):
            return await worker.process.wait()
        with contextlib.suppress(ProcessLookupError):
            worker.process.kill()
        return await worker.process.wait()

    async def _stop_workers(self) -> None:
        for worker in self._workers:
            if worker.process.stdin is not None:
                with contextlib.suppress(Exception):
                    await worker.process.stdin.aclose()
        async with anyio.create_task_group() as tg:
            for worker in self._workers:
                if worker.process.returncode is None:
                    tg.start_soon(self._reap, worker)
