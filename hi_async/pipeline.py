"""Wires the stages with bounded anyio streams in one task group.

    image sets -> [metadata x M] -> frames -> [fetch x N] -> encoded
               -> [decode x D] -> results -> [sink: journal, counts, progress]

Every hand-off is a bounded stream, so a slow stage slows the ones before it and memory
does not grow with the study. The first fatal error (bad credentials, a full disk, ...)
cancels every task; errors that concern one frame become a ``failed`` result instead.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from . import aws
from .errors import HiAsyncError, OutputError
from .frameclient import FrameClient
from .journal import Journal, Resumable, read_verified, remove_leftover_tmp
from .model import Counts, FrameRef, FrameResult, ImageSetRef, Summary
from .paths import frame_path
from .retry import Retrier
from .settings import Settings
from .stages.decode import DecodePool
from .stages.fetch import Fetcher
from .stages.metadata import frames_of
from .stages.work import Job, Outcome


class ProgressListener(Protocol):
    """What the pipeline tells a progress display."""

    def add_total(self, frames: int) -> None: ...
    def on_result(self, result: FrameResult) -> None: ...


@dataclass
class StageStats:
    """Seconds each stage spent working (summed over its tasks) and mean queue fill."""

    busy: dict[str, float] = field(default_factory=lambda: {
        "metadata": 0.0, "fetch": 0.0, "decode": 0.0, "sink": 0.0})
    fill_sum: dict[str, float] = field(default_factory=lambda: {"frames": 0.0, "encoded": 0.0,
                                                                "results": 0.0})
    samples: int = 0

    def queue_fill(self) -> dict[str, float]:
        n = max(1, self.samples)
        return {k: v / n for k, v in self.fill_sum.items()}


@dataclass(frozen=True)
class _Encoded:
    ref: FrameRef
    data: bytes
    content_type: str | None


OnResult = Callable[[FrameResult], Awaitable[None]]

#: Decode jobs kept in flight per worker. With two, a worker sat idle while the busy event
#: loop got round to handing it the next frame (the bench measured 5.9 ms per pool round
#: trip for 1.2 ms of work); eight per worker measured best of 2, 4, 8 and 16.
JOBS_PER_DECODER = 8

#: At most this many results are journaled in one write.
SINK_BATCH = 64


def _resumed(ref: FrameRef, entry: Resumable, out_dir: Path) -> FrameResult:
    return FrameResult(ref, "verified", entry.content_type, entry.actual_crc32,
                       out_dir / entry.path if entry.path else None, None, 0, None,
                       resumed=True)


class Pipeline:
    """One run over a stream of image sets; owns nothing but its streams and tasks."""

    def __init__(self, settings: Settings, mi: Any, pool: DecodePool, retrier: Retrier, *,
                 out_dir: Path | None, fmt: str, want_pixels: bool = False,
                 progress: ProgressListener | None = None,
                 on_result: OnResult | None = None,
                 frames: FrameClient | None = None) -> None:
        self.settings = settings
        self.mi = mi
        self.pool = pool
        self.retrier = retrier
        self.fetcher = Fetcher(mi, retrier, frames)
        self.out_dir = out_dir
        self.fmt = fmt if out_dir is not None else "none"
        self.want_pixels = want_pixels
        self.progress = progress
        self.on_result = on_result
        self.counts = Counts()
        self.by_label: dict[str, Counts] = {}
        self.failures: list[FrameResult] = []
        self.stats = StageStats()
        self._skip: dict[tuple[str, str], Resumable] = {}
        self._journal: Journal | None = None
        self._streams: dict[str, Any] = {}

    async def run(self, source: AsyncIterable[ImageSetRef]) -> Summary:
        started = time.perf_counter()
        retries_before = self.retrier.retries
        s = self.settings
        if self.out_dir is not None:
            resume = s.resume and not self.want_pixels
            if resume:
                remove_leftover_tmp(self.out_dir)
                self._skip = read_verified(self.out_dir, self.fmt)
            self._journal = Journal(self.out_dir, resume=resume)
        sets_tx, sets_rx = anyio.create_memory_object_stream[ImageSetRef](s.metadata_fetchers)
        frames_tx, frames_rx = anyio.create_memory_object_stream[FrameRef](s.queue_size)
        enc_tx, enc_rx = anyio.create_memory_object_stream[_Encoded](
            max(s.decoders * 2, min(s.queue_size, s.fetchers)))
        # With pixels attached a result can weigh tens of MB: keep only a few waiting.
        res_tx, res_rx = anyio.create_memory_object_stream[FrameResult](
            s.decoders * 2 if self.want_pixels else s.queue_size)
        self._streams = {"frames": frames_rx, "encoded": enc_rx, "results": res_rx}
        try:
            async with anyio.create_task_group() as tg:
                # Worker processes start while the metadata is fetched, not on the first
                # frame (a no-op for threads and for a pool that is already running).
                tg.start_soon(self.pool.warm_up)
                tg.start_soon(self._feed, source, sets_tx)
                for _ in range(s.metadata_fetchers):
                    tg.start_soon(self._metadata, sets_rx.clone(), frames_tx.clone(),
                                  res_tx.clone())
                for _ in range(s.fetchers):
                    tg.start_soon(self._fetch, frames_rx.clone(), enc_tx.clone(),
                                  res_tx.clone())
                for _ in range(s.decoders * JOBS_PER_DECODER):
                    tg.start_soon(self._decode, enc_rx.clone(), res_tx.clone())
                tg.start_soon(self._sink, res_rx)
                for end in (sets_rx, frames_tx, frames_rx, enc_tx, enc_rx, res_tx):
                    end.close()
        except BaseExceptionGroup as group:
            raise _first_error(group) from None
        finally:
            if self._journal is not None:
                self._journal.close()
        return Summary(
            frames=self.counts.frames, verified=self.counts.verified, failed=self.counts.failed,
            unverifiable=self.counts.unverifiable, resumed=self.counts.resumed,
            retries=self.retrier.retries - retries_before, bytes=self.counts.bytes,
            seconds=time.perf_counter() - started, by_label=dict(self.by_label),
            failures=tuple(self.failures),
            stages={"busySeconds": dict(self.stats.busy),
                    "queueFill": self.stats.queue_fill()},
        )

    async def _feed(self, source: AsyncIterable[ImageSetRef],
                    tx: ObjectSendStream[ImageSetRef]) -> None:
        async with tx:
            async for ref in source:
                await tx.send(ref)

    async def _metadata(self, rx: ObjectReceiveStream[ImageSetRef],
                        tx: ObjectSendStream[FrameRef],
                        res: ObjectSendStream[FrameResult]) -> None:
        async with rx, tx, res:
            async for image_set in rx:
                t0 = time.perf_counter()
                refs = await frames_of(self.mi, self.retrier, image_set,
                                       self.settings.metadata_max_bytes)
                self.stats.busy["metadata"] += time.perf_counter() - t0
                if self.progress is not None:
                    self.progress.add_total(len(refs))
                for ref in refs:
                    entry = self._skip.get((ref.image_set_id, ref.image_frame_id))
                    if entry is not None and self.out_dir is not None:
                        await res.send(_resumed(ref, entry, self.out_dir))
                    else:
                        await tx.send(ref)

    async def _fetch(self, rx: ObjectReceiveStream[FrameRef], tx: ObjectSendStream[_Encoded],
                     res: ObjectSendStream[FrameResult]) -> None:
        async with rx, tx, res:
            async for ref in rx:
                t0 = time.perf_counter()
                try:
                    data, content_type = await self.fetcher.fetch(ref)
                except HiAsyncError as exc:
                    if aws.is_fatal_for_run(exc):
                        raise
                    await res.send(FrameResult(ref, "failed", error=exc.message))
                    continue
                finally:
                    self.stats.busy["fetch"] += time.perf_counter() - t0
                await tx.send(_Encoded(ref, data, content_type))

    def _job(self, item: _Encoded) -> Job:
        ref = item.ref
        path = None
        if self.out_dir is not None:
            target = frame_path(self.out_dir, ref.image_set_id, ref.image_frame_id, self.fmt)
            path = str(target) if target is not None else None
        return Job(item.data, item.content_type, ref.rows, ref.columns, ref.samples_per_pixel,
                   ref.dtype, ref.expected_crc32, self.fmt, path, self.want_pixels,
                   ref.bits_allocated)

    async def _decode(self, rx: ObjectReceiveStream[_Encoded],
                      res: ObjectSendStream[FrameResult]) -> None:
        async with rx, res:
            async for item in rx:
                t0 = time.perf_counter()
                outcome = await self._run_job(item)
                refetches = 0
                while (outcome.status == "mismatch"
                       and refetches < self.settings.mismatch_refetches):
                    # Corruption in transit is the likely cause: fetch again, then report.
                    refetches += 1
                    self.retrier.retries += 1
                    try:
                        data, content_type = await self.fetcher.fetch(item.ref)
                    except HiAsyncError as exc:
                        if aws.is_fatal_for_run(exc):
                            raise
                        break
                    item = _Encoded(item.ref, data, content_type)
                    outcome = await self._run_job(item)
                self.stats.busy["decode"] += time.perf_counter() - t0
                await res.send(self._result(item, outcome))

    async def _run_job(self, item: _Encoded) -> Outcome:
        return await self.pool.run(self._job(item))

    def _result(self, item: _Encoded, outcome: Outcome) -> FrameResult:
        if outcome.status == "disk_full":
            raise OutputError(
                f"the disk is full: {outcome.error}",
                hint="free some space and run again; frames already verified are kept and "
                "will not be downloaded again",
            )
        status = "failed" if outcome.status == "mismatch" else outcome.status
        return FrameResult(
            item.ref, status, item.content_type, outcome.actual_crc32,  # type: ignore[arg-type]
            Path(outcome.path) if outcome.path else None, outcome.error, len(item.data),
            outcome.pixels,
        )

    async def _sink(self, rx: ObjectReceiveStream[FrameResult]) -> None:
        async with rx:
            async for first in rx:
                batch = [first]
                # Results already waiting share one journal write (one system call).
                while len(batch) < SINK_BATCH:
                    try:
                        batch.append(rx.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                t0 = time.perf_counter()
                if self._journal is not None:
                    self._journal.append_many([r for r in batch if not r.resumed])
                self._sample_queues()
                for result in batch:
                    self.counts.add(result)
                    if result.ref.label is not None:
                        self.by_label.setdefault(result.ref.label, Counts()).add(result)
                    if result.status == "failed":
                        self.failures.append(result)
                    if self.progress is not None:
                        self.progress.on_result(result)
                self.stats.busy["sink"] += time.perf_counter() - t0
                if self.on_result is not None:
                    for result in batch:
                        await self.on_result(result)

    def _sample_queues(self) -> None:
        self.stats.samples += 1
        for name, stream in self._streams.items():
            st = stream.statistics()
            self.stats.fill_sum[name] += st.current_buffer_used / max(1, st.max_buffer_size)


def _first_error(group: BaseExceptionGroup) -> BaseException:
    """The error to show: a hi_async error first, else whatever came first."""
    flat: list[BaseException] = []

    def walk(g: BaseExceptionGroup) -> None:
        for exc in g.exceptions:
            if isinstance(exc, BaseExceptionGroup):
                walk(exc)
            else:
                flat.append(exc)

    walk(group)
    for exc in flat:
        if isinstance(exc, HiAsyncError):
            return exc
    for exc in flat:
        if isinstance(exc, Exception):
            return exc
    return flat[0] if flat else group
