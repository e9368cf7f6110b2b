"""The public library API: ``Downloader`` for repeated use, ``download()`` for one call.

    async with hi_async.Downloader(settings) as dl:
        async for frame in dl.frames(datastore_id, image_set_ids=[...], want="pixels"):
            ...  # frame.ref (FrameRef), frame.pixels (numpy array)

    summary = hi_async.download(datastore_id, image_set_ids=[...], out_dir="out")

A ``Downloader`` holds one HealthImaging client (its connection pool sized to the
fetchers), one decode pool, one retry state and, once a download needs them, its worker
processes (``Settings.workers``); it can run several downloads at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio
import anyio.abc

from .aws.healthimaging import HealthImaging
from .aws.retry import AimdLimiter, Retrier
from .aws.session import AwsSession
from .errors import FrameFailed, HiAsyncError, UsageError, first_error
from .image_sets import select
from .journal import write_summary
from .model import Frame, FrameRef, FrameResult, FrameStatus, ImageSetRef, Summary
from .paths import prepare_out_dir
from .pipeline import Dispatcher, run_pipeline
from .settings import Settings
from .stages.context import FrameWork, ProgressListener, RunContext
from .workers.pool import WorkerPool

if TYPE_CHECKING:
    from .decodepool import DecodePool

Want = Literal["pixels", "path"]
T = TypeVar("T")


class _Stop(Exception):
    """The consumer of ``frames()`` went away: stop the run quietly."""


class Downloader:
    """An open connection to HealthImaging plus a decode pool; use as an async context."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.limiter = AimdLimiter(self.settings.fetchers)
        self._aws = AwsSession(self.settings,
                               pool=self.settings.fetchers + self.settings.metadata_fetchers,
                               limiter=self.limiter)
        self._stack = contextlib.AsyncExitStack()
        self._hi: HealthImaging | None = None
        self._pool: DecodePool | None = None
        self._tg: Any = None
        self._workers: WorkerPool | None = None
        self._workers_lock = anyio.Lock()

    @property
    def retrier(self) -> Retrier:
        """The retry state every request of this Downloader shares (counts by cause)."""
        return self._aws.retrier

    async def __aenter__(self) -> Downloader:
        s = self.settings
        try:
            await self._stack.enter_async_context(self._aws)
            self._hi = await self._stack.enter_async_context(HealthImaging(self._aws,
                                                                           data_plane=True))
            if s.pool == "process":
                # Its processes start while the metadata is fetched (see the pipeline).
                self._decode_pool()
            # Owner of frames() producers, so that no cancel scope lives in a generator.
            self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pool is not None and exc[0] is not None:
            self._pool.close_now()  # interrupted: do not wait for queued frames
        if self._tg is not None:
            self._tg.cancel_scope.cancel()  # frames() loops the caller left early
        await self._stack.aclose()

    def _open(self) -> HealthImaging:
        if self._hi is None:
            raise UsageError("use the Downloader inside 'async with Downloader(...) as dl'")
        return self._hi

    def _decode_pool(self) -> DecodePool:
        """The decode pool of work done in this process, made on first use (a run whose
        frames all go to worker processes never loads a codec here)."""
        if self._pool is None:
            from .decodepool import DecodePool

            self._pool = DecodePool(self.settings.pool, self.settings.decoders)
            self._stack.push_async_callback(self._pool.aclose)
        return self._pool

    def image_sets(self, datastore_id: str, *, image_set_ids: Sequence[str] | None = None,
                   import_job_id: str | None = None, all_image_sets: bool = False,
                   label: str | None = None) -> AsyncIterator[ImageSetRef]:
        """The image sets a selection names; exactly one selector must be given."""
        hi = self._open()
        return select(hi, datastore_id, image_set_ids=image_set_ids,
                      import_job_id=import_job_id, all_image_sets=all_image_sets, label=label)

    def _context(self, out_dir: Path | None, *, pool: DecodePool | None,
                 want_pixels: bool = False, **kw: Any) -> RunContext:
        hi = self._open()
        fmt = self.settings.output_format if out_dir is not None else "none"

        async def get_frame(ref: FrameRef) -> tuple[bytes, str | None]:
            return await hi.get_frame(ref.datastore_id, ref.image_set_id, ref.image_frame_id)

        work = FrameWork(settings=self.settings, get_frame=get_frame,
                         count_retry=self.retrier.count_retry, pool=pool, out_dir=out_dir,
                         fmt=fmt, want_pixels=want_pixels)
        return RunContext(work=work, hi=hi, **kw)

    async def _worker_pool(self) -> WorkerPool | None:
        """The worker processes (started on first use), or None to work in this process."""
        n = self.settings.worker_processes
        if not n:
            return None
        async with self._workers_lock:
            if self._workers is None:
                self._workers = await self._tg.start(self._hold_workers, n)
        return self._workers

    async def _hold_workers(self, n: int, *,
                            task_status: anyio.abc.TaskStatus[WorkerPool]) -> None:
        """Own the worker pool for the Downloader's lifetime (its task group's task)."""
        hi = self._open()
        assert hi.endpoint_url is not None and hi.region is not None
        assert hi.credentials is not None
        # The workers get the region and endpoint resolved here, and credentials that do
        # not expire (in memory, through their pipe); others they find in the chain.
        s = self.settings.replace(region=hi.region)
        async with WorkerPool(s, hi.endpoint_url, credentials=hi.credentials.static,
                              workers=n, lanes=max(4, s.fetchers // n),
                              decoders=max(1, s.decoders // n),
                              retrier=self.retrier) as workers:
            task_status.started(workers)
            await anyio.sleep_forever()

    async def run(self, source: AsyncIterable[ImageSetRef], *, out_dir: str | Path | None = None,
                  progress: ProgressListener | None = None,
                  dispatcher: Dispatcher | None = None) -> Summary:
        """Download every frame of the image sets ``source`` yields, as they arrive.

        Image sets may keep arriving while earlier ones download (the workflow feeds
        studies in as their imports finish). Output goes to
        ``out_dir/<imageSetId>/<imageFrameId>.<ext>`` with index.jsonl and summary.json;
        the Summary's ``by_label`` breaks the counts down by ``ImageSetRef.label``.
        With ``dispatcher``, frames are done by it (a Ray cluster: :mod:`hi_async.ray`).
        """
        self._open()
        target = Path(out_dir) if out_dir is not None else self.settings.out_dir
        if target is not None:
            target = prepare_out_dir(Path(target))
        workers = None if dispatcher is not None else await self._worker_pool()
        local = workers is None and dispatcher is None
        ctx = self._context(target, pool=self._decode_pool() if local else None,
                            progress=progress)
        summary = await run_pipeline(ctx, source, pool=workers, dispatcher=dispatcher)
        if target is not None:
            write_summary(target, summary.to_json())
        return summary

    async def download(self, datastore_id: str, *, image_set_ids: Sequence[str] | None = None,
                       import_job_id: str | None = None, all_image_sets: bool = False,
                       out_dir: str | Path | None = None,
                       progress: ProgressListener | None = None,
                       dispatcher: Dispatcher | None = None) -> Summary:
        """Every frame of the selected image sets into ``out_dir``; returns the Summary."""
        source = self.image_sets(datastore_id, image_set_ids=image_set_ids,
                                 import_job_id=import_job_id, all_image_sets=all_image_sets)
        return await self.run(source, out_dir=out_dir, progress=progress,
                              dispatcher=dispatcher)

    async def frames(self, datastore_id: str, *, image_set_ids: Sequence[str] | None = None,
                     import_job_id: str | None = None, all_image_sets: bool = False,
                     want: Want = "pixels", out_dir: str | Path | None = None,
                     ) -> AsyncIterator[Frame]:
        """Yield verified (and unverifiable) frames as they arrive, in completion order.

        ``want="pixels"``: each Frame carries the decoded numpy array (no files written
        unless ``out_dir`` is given). ``want="path"``: each carries the path of the file
        written under ``out_dir`` (or ``settings.out_dir``) in the settings' format.
        A frame that fails raises FrameFailed after the others in flight were handled;
        breaking out of the loop stops the download.
        """
        if want not in ("pixels", "path"):
            raise UsageError(f"want must be 'pixels' or 'path', not {want!r}")
        target = Path(out_dir) if out_dir is not None else self.settings.out_dir
        if want == "path" and (target is None or self.settings.output_format == "none"):
            raise UsageError("want='path' needs an out_dir and an output format other than none")
        source = self.image_sets(datastore_id, image_set_ids=image_set_ids,
                                 import_job_id=import_job_id, all_image_sets=all_image_sets)
        if target is not None:
            target = prepare_out_dir(target)
        send, receive = anyio.create_memory_object_stream[Frame | BaseException](
            self.settings.decoders * 2)
        failures: list[FrameResult] = []

        async def forward(result: FrameResult) -> None:
            if result.status is FrameStatus.FAILED:
                failures.append(result)
                return
            try:
                await send.send(Frame(result.ref, result.pixels, result.path, result.status))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                raise _Stop from None

        ctx = self._context(target, pool=self._decode_pool(), want_pixels=want == "pixels",
                            on_result=forward)

        async def produce() -> None:
            async with send:
                try:
                    await run_pipeline(ctx, source)
                    if failures:
                        first = failures[0]
                        await send.send(FrameFailed(first.ref.image_set_id,
                                                    first.ref.image_frame_id,
                                                    f"{first.error} ({len(failures)} failed)"))
                except (_Stop, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    pass
                except Exception as exc:
                    with contextlib.suppress(anyio.BrokenResourceError,
                                             anyio.ClosedResourceError):
                        await send.send(exc)

        self._tg.start_soon(produce)
        async with receive:
            async for item in receive:
                if isinstance(item, BaseException):
                    raise item
                yield item


def download(datastore_id: str, *, image_set_ids: Sequence[str] | None = None,
             import_job_id: str | None = None, all_image_sets: bool = False,
             out_dir: str | Path, settings: Settings | None = None,
             progress: ProgressListener | None = None) -> Summary:
    """Download, decode and verify every frame of the selected image sets into ``out_dir``.

    A blocking wrapper around ``Downloader.download`` (runs its own event loop, uvloop
    when installed). Returns the Summary; raises a HiAsyncError subclass on bad input.
    """
    async def main() -> Summary:
        async with Downloader(settings) as dl:
            return await dl.download(datastore_id, image_set_ids=image_set_ids,
                                     import_job_id=import_job_id,
                                     all_image_sets=all_image_sets, out_dir=out_dir,
                                     progress=progress)

    return run_sync(main, settings)


def run_sync(fn: Callable[[], Awaitable[T]], settings: Settings | None = None) -> T:
    """``anyio.run(fn)`` on uvloop when it is installed (and ``settings.uvloop``)."""
    options: dict[str, Any] = {}
    if settings is None or settings.uvloop:
        try:
            import uvloop  # noqa: F401
            options = {"use_uvloop": True}
        except ImportError:
            pass
    try:
        return anyio.run(fn, backend="asyncio", backend_options=options)
    except BaseExceptionGroup as group:
        error = first_error(group)
        if isinstance(error, HiAsyncError):
            raise error from None
        raise
