"""The public library API: ``Downloader`` for repeated use, ``download()`` for one call.

    async with hi_async.Downloader(settings) as dl:
        async for frame in dl.frames(datastore_id, image_set_ids=[...], want="pixels"):
            ...  # frame.ref (FrameRef), frame.pixels (numpy array)

    summary = hi_async.download(datastore_id, image_set_ids=[...], out_dir="out")

    async with hi_async.Downloader(settings) as dl:
        async for volume in dl.volumes(datastore_id, image_set_ids=[...]):
            ...  # volume.array, volume.affine, volume.spacing; volume.to_nifti(path)
        async for ds in dl.instances(datastore_id, image_set_ids=[...], syntax="native"):
            ...  # a pydicom Dataset, pixel data included, as soon as its frames verified

A ``Downloader`` holds one HealthImaging client (its connection pool sized to the
fetchers), one decode pool, one retry state and, once a download needs them, its worker
processes (``Settings.workers``); it can run several downloads at once.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.abc

from .aws.healthimaging import HealthImaging
from .aws.retry import AimdLimiter, Retrier
from .aws.session import AwsSession
from .errors import FrameFailed, UsageError
from .event_loop import run_sync
from .folder_lock import sole_writer
from .image_sets import select
from .journal import write_summary
from .model import Frame, FrameRef, FrameResult, FrameStatus, ImageSetRef, Summary
from .paths import prepare_out_dir
from .pipeline import Dispatcher, run_pipeline
from .settings import Settings
from .stages.context import FrameWork, ProgressListener, RunContext
from .streams import Put, produced
from .workers.pool import WorkerPool

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from .decodepool import DecodePool
    from .settings import DicomSyntax
    from .volumes.volume import Volume

Want = Literal["pixels", "path"]


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

    @property
    def workers(self) -> WorkerPool | None:
        """The worker processes, once a download started them (their shared send rate:
        ``workers.rate``); None before, or when everything runs in this process."""
        return self._workers

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
                 want_pixels: bool = False, fmt: str | None = None, **kw: Any) -> RunContext:
        hi = self._open()
        if fmt is None:
            fmt = self.settings.output_format if out_dir is not None else "none"

        async def get_frame(ref: FrameRef) -> tuple[bytes, str | None]:
            return await hi.get_frame(ref.datastore_id, ref.image_set_id, ref.image_frame_id)

        volumes = kw.get("volumes")
        work = FrameWork(settings=self.settings, get_frame=get_frame,
                         count_retry=self.retrier.count_retry, pool=pool, out_dir=out_dir,
                         fmt=fmt, want_pixels=want_pixels,
                         targets=volumes.target if volumes is not None else None)
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
                              workers=n, lanes=s.lanes_per_worker(n),
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
        if dispatcher is not None:
            self.settings.check_cluster()
        volumes = None
        if self.settings.assembles_volumes:
            if target is None:
                raise UsageError("volumes (--volume, --preview) need an output folder",
                                 hint="pass out_dir (--out), or use Downloader.volumes()")
            from .stages.volumes import VolumeAssembly

            volumes = VolumeAssembly(self.settings, target, keep_existing=self.settings.resume)
        workers = None if dispatcher is not None else await self._worker_pool()
        local = workers is None and dispatcher is None
        ctx = self._context(target, pool=self._decode_pool() if local else None,
                            progress=progress, volumes=volumes)
        with sole_writer(target):
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
        written under ``out_dir`` (or ``settings.out_dir``) in the settings' format (for
        ``dcm``, its instance's file, once the instance is written).
        A frame that fails raises FrameFailed after the others in flight were handled;
        breaking out of the loop stops the download.
        """
        if want not in ("pixels", "path"):
            raise UsageError(f"want must be 'pixels' or 'path', not {want!r}")
        target = Path(out_dir) if out_dir is not None else self.settings.out_dir
        if want == "path" and (target is None or self.settings.output_format == "none"):
            raise UsageError("want='path' needs an out_dir and an output format other than none")
        if want == "pixels" and target is not None and self.settings.output_format == "dcm":
            raise UsageError("frames(want='pixels') cannot write DICOM files: they are written "
                             "per instance, and their frames carry no pixels",
                             hint="use Downloader.instances(...) for datasets with their pixel "
                             "data, or want='path' for the frames' DICOM files")
        source = self.image_sets(datastore_id, image_set_ids=image_set_ids,
                                 import_job_id=import_job_id, all_image_sets=all_image_sets)
        if target is not None:
            target = prepare_out_dir(target)

        async def work(put: Put[Frame]) -> FrameFailed | None:
            failures: list[FrameResult] = []

            async def forward(result: FrameResult) -> None:
                if result.status is FrameStatus.FAILED:
                    failures.append(result)
                else:
                    await put(Frame(result.ref, result.pixels, result.path, result.status))

            ctx = self._context(target, pool=self._decode_pool(),
                                want_pixels=want == "pixels", on_result=forward)
            with sole_writer(target):
                await run_pipeline(ctx, source)
            if not failures:
                return None
            first = failures[0]
            return FrameFailed(first.ref.image_set_id, first.ref.image_frame_id,
                               f"{first.error} ({len(failures)} failed)")

        async with contextlib.aclosing(produced(self._tg, self.settings.decoders * 2,
                                                work)) as items:
            async for item in items:
                yield item

    async def volumes(self, datastore_id: str, *, image_set_ids: Sequence[str] | None = None,
                      import_job_id: str | None = None, all_image_sets: bool = False,
                      out_dir: str | Path | None = None) -> AsyncIterator[Volume]:
        """Yield each series' volume as soon as its last frame is verified.

        A :class:`~hi_async.volumes.volume.Volume` holds the voxels (in memory, or
        memory-mapped when large), the affine, the spacing and the sidecar's facts. Frames
        are decoded and written into the volume where they are decoded (worker processes,
        or this process), as ``download --volume`` does. With ``out_dir`` (or
        ``settings.out_dir``) the run also writes what the settings ask for (frames in
        ``output_format``; volume files and previews with ``volume``/``preview``) and
        resumes like a download; without one, nothing is kept: volumes are assembled in a
        temporary folder (``TMPDIR``; keep it on a disk, not in memory, for large series).

        A series that cannot be a volume yields nothing (summary.json names it, with an
        out_dir). If frames failed, FrameFailed is raised after every complete volume was
        yielded; breaking out of the loop stops the download.
        """
        from .stages.volumes import VolumeAssembly

        target = Path(out_dir) if out_dir is not None else self.settings.out_dir
        if target is not None and self.settings.output_format == "dcm":
            raise UsageError("Downloader.volumes() writes frames, not DICOM files",
                             hint="set output_format to jph, npy, raw or none, or use "
                             "Downloader.instances() for DICOM files")
        source = self.image_sets(datastore_id, image_set_ids=image_set_ids,
                                 import_job_id=import_job_id, all_image_sets=all_image_sets)
        if target is not None:
            target = prepare_out_dir(target)

        async def work(put: Put[Volume]) -> FrameFailed | None:
            scratch = None if target is not None else Path(tempfile.mkdtemp(prefix="hi_async-"))
            try:
                assembly = VolumeAssembly(self.settings, target or scratch or Path(),
                                          write_files=target is not None, keep_existing=False,
                                          on_volume=put)
                workers = await self._worker_pool()
                ctx = self._context(target, pool=None if workers else self._decode_pool(),
                                    volumes=assembly)
                with sole_writer(target):
                    summary = await run_pipeline(ctx, source, pool=workers)
                    if target is not None:
                        write_summary(target, summary.to_json())
            finally:
                if scratch is not None:
                    shutil.rmtree(scratch, ignore_errors=True)
            if not summary.failures:
                return None
            first = summary.failures[0]
            return FrameFailed(first.ref.image_set_id, first.ref.image_frame_id,
                               f"{first.error} ({len(summary.failures)} failed; their volumes "
                               f"were not assembled)")

        async with contextlib.aclosing(produced(self._tg, 1, work)) as items:
            async for item in items:
                yield item

    async def instances(self, datastore_id: str, *, image_set_ids: Sequence[str] | None = None,
                        import_job_id: str | None = None, all_image_sets: bool = False,
                        syntax: DicomSyntax | None = None, out_dir: str | Path | None = None,
                        ) -> AsyncIterator[Dataset]:
        """Yield each instance of the selected image sets as a pydicom Dataset, pixel data
        included, as soon as every one of its frames verified (in completion order).

        ``syntax``: ``"stored"`` (the frames encapsulated as stored) or ``"native"``
        (decoded, Explicit VR Little Endian); default ``settings.dcm_syntax``. With
        ``out_dir``, each is also written as ``out_dir/<imageSetId>/<SeriesInstanceUID>/
        <SOPInstanceUID>.dcm`` and journaled (no instance is skipped as already written:
        every one is yielded). The work runs in this process, where the datasets are. An
        instance that cannot be written raises InstanceFailed after the others in flight
        were handled; breaking out of the loop stops the download.
        """
        from .dicom.assembly import by_instance, why_not_written
        from .dicom.errors import InstanceFailed
        from .stages.instances import DicomOptions

        options_syntax = syntax if syntax is not None else self.settings.dcm_syntax
        target = Path(out_dir) if out_dir is not None else None
        source = self.image_sets(datastore_id, image_set_ids=image_set_ids,
                                 import_job_id=import_job_id, all_image_sets=all_image_sets)
        if target is not None:
            target = prepare_out_dir(target)

        async def work(put: Put[Dataset]) -> InstanceFailed | None:
            failures: list[FrameResult] = []

            async def collect(result: FrameResult) -> None:
                if result.status is FrameStatus.FAILED:
                    failures.append(result)

            # want_pixels: the caller wants every instance, none skipped as already on disk.
            ctx = self._context(target, pool=self._decode_pool(), want_pixels=True,
                                fmt="dcm", on_result=collect,
                                dicom=DicomOptions(options_syntax, on_instance=put))
            with sole_writer(target):
                await run_pipeline(ctx, source)
            if not failures:
                return None
            lost = by_instance(failures)
            (image_set, series, sop), results = next(iter(lost.items()))
            culprit, reason = why_not_written(results)
            return InstanceFailed(image_set, series, sop,
                                  culprit.ref.image_frame_id if culprit is not None else None,
                                  f"{reason} ({len(lost)} instances failed)")

        async with contextlib.aclosing(produced(self._tg, 2, work)) as items:
            async for item in items:
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
