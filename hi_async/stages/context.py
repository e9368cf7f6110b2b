"""What the stages of one run share: where output goes, the service, the pool, the tallies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..aws.healthimaging import HealthImaging
from ..decodepool import DecodePool
from ..journal import Journal, Resumable
from ..model import Counts, FrameResult
from ..settings import Settings


class ProgressListener(Protocol):
    """What the pipeline tells a progress display."""

    def add_total(self, frames: int) -> None: ...
    def on_result(self, result: FrameResult) -> None: ...


OnResult = Callable[[FrameResult], Awaitable[None]]

STAGES = ("metadata", "fetch", "decode", "sink")


@dataclass
class Tally:
    """The run's counts, overall and per label, and the frames that failed."""

    counts: Counts = field(default_factory=Counts)
    by_label: dict[str, Counts] = field(default_factory=dict)
    failures: list[FrameResult] = field(default_factory=list)

    def add(self, result: FrameResult) -> None:
        self.counts.add(result)
        if result.ref.label is not None:
            self.by_label.setdefault(result.ref.label, Counts()).add(result)
        if result.status == "failed":
            self.failures.append(result)


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
class RunContext:
    """One run's shared parts. ``out_dir`` None: nothing is written (``frames()``)."""

    settings: Settings
    hi: HealthImaging
    pool: DecodePool
    out_dir: Path | None
    fmt: str
    want_pixels: bool = False
    #: Frames a previous run verified, by (image set ID, frame ID): not fetched again.
    resumable: dict[tuple[str, str], Resumable] = field(default_factory=dict)
    journal: Journal | None = None
    progress: ProgressListener | None = None
    on_result: OnResult | None = None
    tally: Tally = field(default_factory=Tally)
    stats: StageStats = field(default_factory=StageStats)
