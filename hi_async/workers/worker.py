"""A worker process: ``python -m hi_async.workers.worker PARENT_PID``.

It reads a Start message and then shards of frames on stdin, and runs them in lanes
(:mod:`hi_async.stages.frames`: fetch, decode, verify, write; for DICOM files the frames
of each instance are gathered and the instance written, :mod:`hi_async.stages.assembler`)
on its own event loop, with
its own connections, decode threads, retries and share of the send rate; results go back
on its stdout in batches. It lives exactly as long as its parent wants it: it exits when
stdin closes, is killed with its parent (a parent-death signal, asked for at start), and
ignores the terminal's Ctrl-C (its parent stops it).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from ..aws.credentials import CredentialSource
from ..aws.dataplane import LeanDataPlane
from ..aws.retry import AimdLimiter, Retrier
from ..aws.sendrate import SendRate
from ..decodepool import DecodePool
from ..errors import HiAsyncError
from ..libc import die_with_parent
from ..model import FrameRef, FrameResult
from ..output.frames import write_all
from ..stages import frames
from ..stages.context import FrameWork
from . import protocol

if TYPE_CHECKING:
    from ..stages.assembler import Assembler
    from ..volumes.buffer import SliceTarget

#: A worker with one decode thread decodes frames up to this size (decoded) on its event
#: loop instead: see :func:`_decode_pool`.
INLINE_MAX_BYTES = 1 << 20

#: Results are sent at least this often while frames are done...
FLUSH_SECONDS = 0.02
#: ...or as soon as this many are waiting.
FLUSH_ITEMS = 256

class Worker:
    """The state of one worker process while it serves its parent."""

    def __init__(self, reader: asyncio.StreamReader, out_fd: int) -> None:
        self._reader = reader
        self._out_fd = out_fd
        self._queue: collections.deque[tuple[int, int, FrameRef]] = collections.deque()
        self._shards: dict[int, FrameWork] = {}
        #: Shards whose run met an error that stops it: their frames are not done.
        self._failed: set[int] = set()
        #: DICOM shards: their instances being gathered, by shard ID.
        self._assemblers: dict[int, Assembler[int]] = {}
        self._noted: list[tuple[int, int]] = []
        self._have_work = anyio.Event()
        self._stopping = False
        self._outbox: list[protocol.ResultItem] = []
        self._outbox_full = anyio.Event()
        self._send_lock = anyio.Lock()
        self._throttle_reports: list[protocol.Throttled] = []
        self._retries_sent: collections.Counter[str] = collections.Counter()
        self._throttled_sent = 0
        self.retrier: Retrier | None = None

    async def _read(self) -> Any:
        try:
            head = await self._reader.readexactly(protocol.LENGTH.size)
            (length,) = protocol.LENGTH.unpack(head)
            return protocol.decode(await self._reader.readexactly(length))
        except asyncio.IncompleteReadError:
            return None  # the parent closed the pipe (or died)

    async def _write(self, message: Any) -> None:
        data = protocol.encode(message)
        async with self._send_lock:
            await anyio.to_thread.run_sync(write_all, self._out_fd, data)

    async def serve(self) -> None:
        start = await self._read()
        if not isinstance(start, protocol.Start):
            return
        settings = start.settings
        rate = SendRate(on_cut=self._on_cut)
        self.retrier = retrier = Retrier(settings, AimdLimiter(start.lanes), rate=rate)
        pool = _decode_pool(start.decoders)
        try:
            credentials = CredentialSource(settings, frozen=start.credentials)
            await anyio.to_thread.run_sync(credentials.resolve)
            assert settings.region is not None, "the parent resolves the region"
            async with LeanDataPlane(settings, start.endpoint_url, settings.region,
                                     credentials, start.lanes) as lean:
                async def get_frame(ref: FrameRef) -> tuple[bytes, str | None]:
                    return await retrier.call(
                        lambda: lean.get_frame(ref.datastore_id, ref.image_set_id,
                                               ref.image_frame_id),
                        f"get frame {ref.image_frame_id} of image set {ref.image_set_id}")

                self._template = FrameWork(settings=settings, get_frame=get_frame,
                                           count_retry=retrier.count_retry, pool=pool,
                                           out_dir=None, fmt="none")
                # Everything built so far lives as long as the worker: keep the cyclic
                # garbage collector from walking it again and again, and let it run
                # less often (a frame makes short-lived objects by the hundred).
                gc.freeze()
                gc.set_threshold(20_000, 50, 100)
                await self._write(protocol.Ready(os.getpid()))
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._flusher)
                    for _ in range(start.lanes):
                        tg.start_soon(self._lane)
                    await self._receive(tg)
        except HiAsyncError as exc:
            await self._write(protocol.Failed(None, type(exc).__name__, exc.message,
                                              exc.hint))
        finally:
            pool.close_now()

    def _on_cut(self, epoch: int, sending: float) -> None:
        self._throttle_reports.append(protocol.Throttled(epoch, sending))
        self._outbox_full.set()

    async def _receive(self, tg: Any) -> None:
        while (message := await self._read()) is not None:
            if isinstance(message, protocol.Assign):
                self._shards[message.shard_id] = FrameWork(
                    settings=self._template.settings, get_frame=self._template.get_frame,
                    count_retry=self._template.count_retry, pool=self._template.pool,
                    out_dir=Path(message.out_dir) if message.out_dir is not None else None,
                    fmt=message.fmt, stats=self._template.stats,
                    targets=_targets(message))
                if message.dicom is not None:
                    self._assemblers[message.shard_id] = _assembler(
                        self._shards[message.shard_id], message)
                self._queue.extend((message.shard_id, i, ref)
                                   for i, ref in enumerate(message.frames))
                self._have_work.set()
                self._have_work = anyio.Event()
            elif isinstance(message, protocol.Rate):
                assert self.retrier is not None
                self.retrier.rate.impose(message.rate, message.epoch)
        # The parent is done with us: finish nothing more, stop at once.
        self._stopping = True
        tg.cancel_scope.cancel()

    async def _lane(self) -> None:
        while True:
            while not self._queue:
                await self._have_work.wait()
            shard_id, index, ref = self._queue.popleft()
            if shard_id in self._failed:
                continue
            work = self._shards[shard_id]
            assembler = self._assemblers.get(shard_id)
            try:
                if assembler is None:
                    done = [(index, await frames.process(work, ref))]
                else:  # nothing until the instance's last frame is in; then all of them
                    done = await assembler.frame(ref, index)
                    if not assembler.open_instances:
                        self._assemblers.pop(shard_id, None)
            except HiAsyncError as exc:
                self._assemblers.pop(shard_id, None)
                if shard_id not in self._failed:
                    self._failed.add(shard_id)
                    # The frames done before the error go first: they are on disk.
                    if self._outbox:
                        await self._write(self._results())
                    await self._write(protocol.Failed(shard_id, type(exc).__name__,
                                                      exc.message, exc.hint))
                continue
            for i, result in done:
                self._outbox.append(_item(shard_id, i, result))
                if result.noted:
                    self._noted.append((shard_id, i))
            if len(self._outbox) >= FLUSH_ITEMS:
                self._outbox_full.set()

    async def _flusher(self) -> None:
        while True:
            with anyio.move_on_after(FLUSH_SECONDS):
                await self._outbox_full.wait()
            self._outbox_full = anyio.Event()
            reports, self._throttle_reports = self._throttle_reports, []
            for report in reports:
                await self._write(report)
            if self._outbox:
                await self._write(self._results())

    def _results(self) -> protocol.Results:
        items, self._outbox = self._outbox, []
        noted, self._noted = self._noted, []
        retrier = self.retrier
        assert retrier is not None
        retries = retrier.by_kind - self._retries_sent
        self._retries_sent = collections.Counter(retrier.by_kind)
        throttled = retrier.throttled - self._throttled_sent
        self._throttled_sent = retrier.throttled
        return protocol.Results(items, dict(retries), throttled, retrier.rate.sending, noted)


def _decode_pool(decoders: int) -> DecodePool:
    """The worker's decode threads; with only one, common frames decode on the loop.

    Workers are as many as the cores by default, each with one decode thread: the
    cores are kept busy by the workers side by side, and a thread per worker adds only
    its hand-offs, a wake-up of the thread and one of the loop per frame. Frames up to
    ``INLINE_MAX_BYTES`` (a 512 x 512 16-bit CT frame is 0.5 MB, about 2 ms to decode)
    are therefore decoded where they arrive; larger ones, which would hold up the
    worker's other requests for longer, still go to the thread. Measured in
    ``benchmarks/NOTES.md`` ("Decoding on the worker's loop").
    """
    return DecodePool("thread", decoders,
                      inline_max_bytes=INLINE_MAX_BYTES if decoders == 1 else 0)


def _assembler(work: FrameWork, message: protocol.Assign) -> Assembler[int]:
    """The instances of a DICOM shard, announced (imported here, on the first one: pydicom
    is loaded only by workers that write DICOM files)."""
    from ..stages.assembler import Assembler

    assert message.dicom is not None
    assembler: Assembler[int] = Assembler(work, message.dicom.syntax)
    instances: dict[tuple[str, str, str], list[FrameRef]] = {}
    for ref in message.frames:
        instances.setdefault(ref.instance_key, []).append(ref)
    for key, refs in instances.items():
        assembler.expect(refs, message.dicom.metadata[key])
    return assembler


def _targets(message: protocol.Assign) -> Callable[[FrameRef], SliceTarget | None] | None:
    """The shard's volume slots by frame (None: no frame of it goes into a volume)."""
    if message.targets is None:
        return None
    table = {(ref.image_set_id, ref.image_frame_id): target
             for ref, target in zip(message.frames, message.targets, strict=True)}
    return lambda ref: table.get((ref.image_set_id, ref.image_frame_id))


def _item(shard_id: int, index: int, result: FrameResult) -> protocol.ResultItem:
    return (shard_id, index, str(result.status), result.content_type, result.actual_crc32,
            result.error, result.encoded_bytes,
            str(result.path) if result.path is not None else None, result.file_bytes,
            result.file_crc32)


async def _main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                 os.fdopen(0, "rb", buffering=0))
    out_fd = os.dup(1)
    os.dup2(2, 1)  # anything printed goes to stderr, never into the message pipe
    sys.stdout = sys.stderr
    await Worker(reader, out_fd).serve()


def main() -> None:
    # Elsewhere than Linux, stdin closing when the parent dies stops the worker.
    die_with_parent(int(sys.argv[1]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import uvloop
    except ImportError:
        asyncio.run(_main())
    else:
        uvloop.run(_main())


if __name__ == "__main__":
    main()
