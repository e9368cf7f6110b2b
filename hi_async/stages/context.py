"""What the stages of one run share: how to work on a frame, where output goes, tallies."""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..aws.healthimaging import HealthImaging
from ..durability import Committer
from ..model import Counts, FrameRef, FrameResult, FrameStatus, InstanceCounts
from ..resume import Resumable
from ..settings import Settings

if TYPE_CHECKING:
    from ..decodepool import DecodePool
    from ..volumes.buffer import SliceTarget
    from .instances import DicomOptions
    from .volumes import VolumeAssembly


class ProgressListener(Protocol):
    """What the pipeline tells a progress display."""

    def add_total(self, frames: int) -> None: ...
    def on_result(self, result: FrameResult) -> None: ...


OnResult = Callable[[FrameResult], Awaitable[None]]
#: GetImageFrame with retries: (bytes as stored, Content-Type), or a hi_async error.
GetFrame = Callable[[FrameRef], Awaitable[tuple[bytes, str | None]]]

STAGES = ("metadata", "fetch", "decode", "sink")


@dataclass
class StageStats:
    """Seconds each stage spent working (summed over its tasks) and mean queue fill."""

    busy: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    fill_sum: dict[str, float] = field(default_factory=dict)
    samples: int = 0

    def queue_fill(self) -> dict[str, float]:
        n = max(1, self.samples)
        return {k: v / n for k, v in self.fill_sum.items()}


@dataclass
class FrameWork:
    """What fetching, verifying and writing a frame needs: the parent builds one for work
    in its own process, and each worker process builds its own."""

    settings: Settings
    get_frame: GetFrame
    #: Counts one request sent again, by cause (see Retrier.count_retry).
    count_retry: Callable[[str], None]
    #: The decode pool of work done in this process (None: worker processes do it).
    pool: DecodePool | None
    #: None: nothing is written (``Downloader.frames`` without an out_dir).
    out_dir: Path | None
    fmt: str
    want_pixels: bool = False
    stats: StageStats = field(default_factory=StageStats)
    #: Where a frame goes in its volume's buffer file (``--volume``), or None.
    targets: Callable[[FrameRef], SliceTarget | None] | None = None
    #: ``out_dir`` as a string, for building frame paths without pathlib.
    out_text: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.out_text = str(self.out_dir) if self.out_dir is not None else ""


@dataclass
class Tally:
    """The run's counts, overall and per label, and the frames that failed."""

    counts: Counts = field(default_factory=Counts)
    by_label: dict[str, Counts] = field(default_factory=dict)
    failures: list[FrameResult] = field(default_factory=list)
    #: Frames verified by each worker process, by its ID (none when run in-process).
    by_worker: collections.Counter[str] = field(default_factory=collections.Counter)
    #: Instances, when the run writes DICOM files.
    dicom: InstanceCounts | None = None
    #: Frames verified on each node of a cluster, by its Ray node ID (none elsewhere).
    by_node: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, result: FrameResult) -> None:
        self.counts.add(result)
        if self.dicom is not None:
            self.dicom.add(result)
        if result.ref.label is not None:
            self.by_label.setdefault(result.ref.label, Counts()).add(result)
        if result.status is FrameStatus.FAILED:
            self.failures.append(result)


@dataclass
class RunContext:
    """One run's shared parts, in the process that owns the run."""

    work: FrameWork
    hi: HealthImaging
    #: Frames a previous run verified, by (image set ID, frame ID): not fetched again.
    resumable: dict[tuple[str, str], Resumable] = field(default_factory=dict)
    committer: Committer | None = None
    progress: ProgressListener | None = None
    on_result: OnResult | None = None
    tally: Tally = field(default_factory=Tally)
    #: Series assembled into volumes as their frames arrive (``--volume``, ``--preview``).
    volumes: VolumeAssembly | None = None
    #: How DICOM files are written, when the format is ``dcm`` (the pipeline fills it in
    #: from the settings unless the caller did).
    dicom: DicomOptions | None = None

    @property
    def settings(self) -> Settings:
        return self.work.settings

    @property
    def out_dir(self) -> Path | None:
        return self.work.out_dir

    @property
    def stats(self) -> StageStats:
        return self.work.stats
