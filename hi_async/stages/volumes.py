"""Volume stage: each series assembled into volumes as its frames arrive (``--volume``,
``--preview``), in the process that owns the run.

    metadata ─▶ open: plan (hi_async.volumes), admit, one buffer file per volume
    frames   ─▶ each frame's SliceTarget travels with it to where it is decoded (the
                decode pool here, or a worker process), which writes it into the buffer
    results  ─▶ on_results: a verified frame's slot is marked filled (only if its writer
                asked for its target: a path that writes no slices cannot fill a volume
                with zeros); when every frame of a volume has a result, the volume goes
                to be finished
    finishers (a few tasks) ─▶ finish_volume in a thread: the volume file, its sidecar and
                the preview, or a note saying which frames are missing; the buffer removed

Every buffer lives in a sparse ``*.volume.tmp`` file under the output folder, written
with one ``pwrite`` per frame by whichever process decoded it, so pixels never cross a
process boundary and resident memory does not grow with the size of a volume: writers
read the file one slice at a time and hand the pages back (``buffer.stream_slices``).
What is bounded: volumes in flight (``in_flight``: an image set waits for room before its
buffers are made; one alone is always admitted), and volumes finishing at once
(``finishing``).

Resume. A frame an earlier run verified is not fetched again: its file is read back into
the volume (``output.readback``, its CRC32 checked once more); a frame with no usable file
(``--format none``, a file gone or damaged) is fetched again instead. A volume whose
files are all on disk already (written atomically, so whole) is not assembled again.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from ..errors import MetadataError, OutputError
from ..metadata import load_document, parse_metadata
from ..model import FrameRef, FrameResult, FrameStatus, ImageSetRef
from ..settings import Settings
from ..volumes import (
    Note,
    SliceTarget,
    VolumeBuffer,
    VolumeOutput,
    VolumePlan,
    buffer_path,
    finish_volume,
    plan_volumes,
    preview_path,
    sidecar_path,
    volume_path,
    write_slice,
)
from ..volumes.volume import Volume, voxel_shape

#: Volumes assembled at once per run (their buffer files cost disk, not memory).
VOLUMES_IN_FLIGHT = 16
#: Volumes compressed and written at once (each a thread reading one slice at a time).
VOLUMES_FINISHING = 2

OnVolume = Callable[[Volume], Awaitable[None]]


@dataclass(eq=False)
class _Assembling:
    """One volume while its frames arrive."""

    buffer: VolumeBuffer
    waiting: int  # frames without a result yet
    unverifiable: int = 0
    finished: bool = False

    @property
    def plan(self) -> VolumePlan:
        return self.buffer.plan


@dataclass(frozen=True, slots=True)
class Planned:
    """An image set's frames and what becomes of its series as volumes."""

    refs: list[FrameRef]
    plans: list[VolumePlan]
    notes: list[Note] = field(default_factory=list)


def parse_and_plan(blob: bytes, image_set: ImageSetRef, limit: int) -> Planned:
    """Frames and volume plans from one inflate and parse of the metadata (in a thread).

    A document whose frames parse but whose volumes cannot be planned still downloads:
    the image set gets a note instead of volumes.
    """
    doc = load_document(blob, image_set.image_set_id, limit=limit)
    refs = parse_metadata(doc, image_set.datastore_id, image_set.image_set_id,
                          label=image_set.label, limit=limit)
    try:
        plans, notes = plan_volumes(doc, image_set.image_set_id)
    except (MetadataError, ValueError, TypeError, KeyError, ArithmeticError) as exc:
        why = f"its volumes could not be planned ({type(exc).__name__}: {exc}); frames only"
        return Planned(refs, [], [Note("(every series)", why)])
    return Planned(refs, plans, notes)


class VolumeAssembly:
    """The volumes of one run: planned, filled, finished, reported (see the module
    docstring). ``run`` is its task; the metadata stage calls ``open`` and ``restore``,
    the sink ``on_results`` and ``results_done``, the frame stages ``target``."""

    def __init__(self, settings: Settings, out_dir: Path, *, write_files: bool = True,
                 keep_existing: bool = True, on_volume: OnVolume | None = None,
                 in_flight: int | None = None, finishing: int | None = None) -> None:
        """``out_dir``: where buffers (and, with ``write_files``, the outputs) go.
        ``keep_existing``: a volume whose files exist is not assembled again (resume).
        ``on_volume``: each complete volume is also handed over as a Volume (library)."""
        self.out_dir = Path(out_dir)
        self.fmt = settings.volume if write_files else None
        self.preview = settings.preview and write_files
        self.keep_existing = keep_existing and (self.fmt is not None or self.preview)
        self.metadata_max_bytes = settings.metadata_max_bytes
        self.in_flight = max(1, in_flight if in_flight is not None else VOLUMES_IN_FLIGHT)
        self.finishing = max(1, finishing if finishing is not None else VOLUMES_FINISHING)
        self._on_volume = on_volume
        self._readers = max(1, settings.decoders)
        self._targets: dict[tuple[str, str], SliceTarget] = {}
        self._owner: dict[tuple[str, str], _Assembling] = {}
        self._handed: set[tuple[str, str]] = set()  # targets given to a frame's writer
        self._open: set[_Assembling] = set()
        self._busy = 0  # volumes admitted and not yet released
        self._seen_sets: set[str] = set()
        self._records: list[dict[str, Any]] = []
        self._changed = anyio.Event()
        self._done_tx, self._done_rx = anyio.create_memory_object_stream[_Assembling](
            self.in_flight)

    # Metadata stage.

    async def open(self, image_set: ImageSetRef, blob: bytes) -> list[FrameRef]:
        """Plan ``image_set``'s volumes, wait for room, make their buffers; its frames."""
        planned = await anyio.to_thread.run_sync(functools.partial(
            parse_and_plan, blob, image_set, self.metadata_max_bytes))
        if image_set.image_set_id in self._seen_sets:
            return planned.refs  # named twice: its volumes are under way already
        self._seen_sets.add(image_set.image_set_id)
        for note in planned.notes:
            self._records.append(_note_record(image_set.image_set_id, note))
        todo = []
        for plan in planned.plans:
            if self.keep_existing and self._on_disk(plan):
                self._records.append(self._record(plan, "kept", self._outputs(plan)))
            else:
                todo.append(plan)
        if not todo:
            return planned.refs
        while self._busy and self._busy + len(todo) > self.in_flight:
            await self._changed.wait()
        self._busy += len(todo)  # claimed before the next await: no one else takes it
        try:
            # Shielded: buffers made while the run is cancelled are still registered,
            # so that run() removes their files.
            with anyio.CancelScope(shield=True):
                buffers = await anyio.to_thread.run_sync(self._make_buffers, todo)
        except BaseException:
            self._busy -= len(todo)
            self._notify()
            raise
        for buffer in buffers:
            entry = _Assembling(buffer, len(buffer.plan.frame_ids))
            self._open.add(entry)
            for frame_id, target in buffer.targets().items():
                key = (buffer.plan.image_set_id, frame_id)
                self._targets[key] = target
                self._owner[key] = entry
        return planned.refs

    def _make_buffers(self, plans: list[VolumePlan]) -> list[VolumeBuffer]:
        made: list[VolumeBuffer] = []
        try:
            for plan in plans:
                # Threshold 0: always a file, so that any process can write its frames.
                made.append(VolumeBuffer(plan, scratch=buffer_path(self.out_dir, plan),
                                         memmap_threshold=0))
        except OSError as exc:
            for buffer in made:
                buffer.close()
            raise OutputError(f"cannot make a volume's assembly file under {self.out_dir}: "
                              f"{exc.strerror or exc}",
                              hint="free some disk space (a volume needs its size in the "
                              "output folder while it is assembled) or leave out --volume"
                              ) from None
        return made

    def target(self, ref: FrameRef) -> SliceTarget | None:
        """Where ``ref``'s pixels go in its volume, or None (no volume, or done).

        Whoever writes frames asks here first, so a frame whose target was never asked
        for (a path that writes no slices) cannot count as being in its volume."""
        key = (ref.image_set_id, ref.image_frame_id)
        found = self._targets.get(key)
        if found is not None:
            self._handed.add(key)
        return found

    async def restore(self, resumed: list[FrameResult]
                      ) -> tuple[list[FrameResult], list[FrameRef]]:
        """Read resumed frames that a volume needs back from their files into it.

        Returns (results to report as resumed, frames to fetch again: no usable file).
        """
        usable = [True] * len(resumed)
        pending = iter([n for n, r in enumerate(resumed) if self.target(r.ref) is not None])

        async def reader() -> None:
            for n in pending:
                target = self.target(resumed[n].ref)
                assert target is not None
                usable[n] = await anyio.to_thread.run_sync(_restore, resumed[n], target)

        async with anyio.create_task_group() as tg:
            for _ in range(self._readers):
                tg.start_soon(reader)
        return ([r for r, ok in zip(resumed, usable, strict=True) if ok],
                [r.ref for r, ok in zip(resumed, usable, strict=True) if not ok])

    # Sink.

    async def on_results(self, batch: list[FrameResult]) -> None:
        """Mark the slots of frames that arrived; send complete volumes to be finished."""
        for result in batch:
            key = (result.ref.image_set_id, result.ref.image_frame_id)
            entry = self._owner.pop(key, None)
            if entry is None:
                continue
            self._targets.pop(key, None)
            written = key in self._handed
            self._handed.discard(key)
            if result.status is not FrameStatus.FAILED and written:
                entry.buffer.mark_filled(result.ref.image_frame_id)
                entry.unverifiable += result.status is FrameStatus.UNVERIFIABLE
            entry.waiting -= 1
            if entry.waiting == 0:
                await self._done_tx.send(entry)

    async def results_done(self) -> None:
        """Every result is in: volumes still short of results are finished as they are
        (a note names their missing frames), and the finishers stop when done."""
        async with self._done_tx:
            for entry in [e for e in self._open if e.waiting > 0]:
                for frame_id in entry.buffer.missing():
                    key = (entry.plan.image_set_id, frame_id)
                    self._owner.pop(key, None)
                    self._targets.pop(key, None)
                    self._handed.discard(key)
                entry.waiting = 0
                await self._done_tx.send(entry)

    # The stage's own task.

    async def run(self) -> None:
        """Finish volumes as they complete, ``finishing`` at a time, until results_done."""
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(self.finishing):
                    tg.start_soon(self._finisher, self._done_rx.clone())
                self._done_rx.close()
        finally:
            # Stopped early (an error, Ctrl-C): unfinished buffers and their files go.
            self._release(list(self._open))

    async def _finisher(self, done: MemoryObjectReceiveStream[_Assembling]) -> None:
        async with done:
            async for entry in done:
                try:
                    output, volume = await anyio.to_thread.run_sync(self._finish, entry)
                finally:
                    self._release([entry])
                status = "written" if output.written else "incomplete"
                self._records.append(self._record(output.plan, status, output))
                if volume is not None and self._on_volume is not None:
                    await self._on_volume(volume)

    def _finish(self, entry: _Assembling) -> tuple[VolumeOutput, Volume | None]:
        """In a thread: the Volume (library), then the files; the buffer is released."""
        buffer = entry.buffer
        plan = buffer.plan
        if entry.unverifiable:
            buffer.plan = plan = dataclasses.replace(plan, warnings=(*plan.warnings, (
                f"{entry.unverifiable} frame(s) could not be verified: the metadata has no "
                f"checksum for them")))
        try:
            volume = None
            if self._on_volume is not None and buffer.complete:
                volume = Volume.from_buffer(buffer)
            return finish_volume(buffer, self.out_dir, fmt=self.fmt,
                                 preview=self.preview), volume
        except ValueError as exc:  # a volume the format cannot hold (4 samples in NIfTI)
            return VolumeOutput(plan, note=Note(plan.series_instance_uid,
                                                f"volume {plan.name} not written: {exc}")), None
        except OSError as exc:
            raise OutputError(f"cannot write volume {plan.name} under {self.out_dir}: "
                              f"{exc.strerror or exc}",
                              hint="free some disk space and run again; verified frames "
                              "are kept and the volume is assembled from them") from None
        finally:
            buffer.close()  # (finish_volume closes it too; closing twice is harmless)
            entry.finished = True

    def _release(self, entries: list[_Assembling]) -> None:
        for entry in entries:
            if entry in self._open:
                self._open.discard(entry)
                self._busy -= 1
                if not entry.finished:
                    entry.buffer.close()
        self._notify()

    def _notify(self) -> None:
        """Wake image sets waiting for room (each waits on the event of its time)."""
        self._changed.set()
        self._changed = anyio.Event()

    # The report.

    def records(self) -> list[dict[str, Any]]:
        """summary.json's ``volumes``: one entry per volume and per note, in name order."""
        return sorted(self._records, key=lambda r: (r["imageSetId"], r["seriesInstanceUid"],
                                                    r["name"] or ""))

    def _on_disk(self, plan: VolumePlan) -> bool:
        paths = self._outputs(plan)
        files = [p for p in (paths.volume, paths.sidecar, paths.preview) if p is not None]
        return bool(files) and all(p.is_file() for p in files)

    def _outputs(self, plan: VolumePlan) -> VolumeOutput:
        """The files ``plan`` gets in this run (whether or not they exist yet)."""
        volume = volume_path(self.out_dir, plan, self.fmt) if self.fmt is not None else None
        return VolumeOutput(plan, volume, sidecar_path(volume) if volume else None,
                            preview_path(self.out_dir, plan) if self.preview else None)

    def _record(self, plan: VolumePlan, status: str, output: VolumeOutput) -> dict[str, Any]:
        def relative(path: Path | None) -> str | None:
            return None if path is None else path.relative_to(self.out_dir).as_posix()

        return {
            "imageSetId": plan.image_set_id, "seriesInstanceUid": plan.series_instance_uid,
            "name": plan.name, "status": status,
            "seriesDescription": plan.series_description, "modality": plan.modality,
            "path": relative(output.volume), "sidecar": relative(output.sidecar),
            "preview": relative(output.preview), "shape": voxel_shape(plan),
            "spacing": list(plan.spacing), "fourthAxis": plan.fourth_axis,
            "warnings": list(plan.warnings),
            "note": str(output.note) if output.note is not None else None,
        }


def _note_record(image_set_id: str, note: Note) -> dict[str, Any]:
    return {"imageSetId": image_set_id, "seriesInstanceUid": note.series_instance_uid,
            "name": None, "status": "note", "seriesDescription": None, "modality": None,
            "path": None, "sidecar": None, "preview": None, "shape": None, "spacing": None,
            "fourthAxis": None, "warnings": [], "note": str(note)}


def _restore(result: FrameResult, target: SliceTarget) -> bool:
    """In a thread: the resumed frame's file into its volume slot; False if unusable."""
    from ..output.readback import FrameFileUnusable, read_frame_file

    if result.path is None:
        return False  # --format none: nothing on disk to read back
    try:
        pixels = read_frame_file(result.path, result.ref, result.content_type)
        write_slice(target, pixels)
    except (FrameFileUnusable, OSError, ValueError):
        return False
    return True
