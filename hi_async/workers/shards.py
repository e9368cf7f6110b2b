"""The worker pool's records: a run's use of the pool, the shards it is cut into, and
the parent's view of each worker process."""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from ..errors import HiAsyncError
from ..model import FrameRef, FrameResult

if TYPE_CHECKING:
    from ..volumes.buffer import SliceTarget

Deliver = Callable[[list[FrameResult]], Awaitable[None]]


@dataclass(eq=False)
class RunHandle:
    """One run's use of the pool: where its results go, and whether it is finished."""

    deliver: Deliver
    error: HiAsyncError | None = None
    #: Frames verified by each worker process (by its process ID).
    by_worker: collections.Counter[str] = field(default_factory=collections.Counter)
    failed: anyio.Event = field(default_factory=anyio.Event)
    open_shards: int = 0
    idle: anyio.Event = field(default_factory=anyio.Event)

    def fail(self, error: HiAsyncError) -> None:
        if self.error is None:
            self.error = error
        self.failed.set()


@dataclass(eq=False)
class Shard:
    """Frames of one run handed to one worker process as a unit (``protocol.Assign``)."""

    shard_id: int
    run: RunHandle
    frames: tuple[FrameRef, ...]
    out_dir: Path | None
    fmt: str
    #: How many worker deaths these frames lived through.
    deaths: int = 0
    pending: set[int] = field(default_factory=set)
    worker: WorkerSlot | None = None
    #: Per frame, its volume slot (``--volume``), or None for the whole shard.
    targets: tuple[SliceTarget | None, ...] | None = None
    #: ``protocol.Assign.dicom``: the frames are whole DICOM instances, kept together.
    dicom: Any = None

    def targets_of(self, indices: Sequence[int]) -> tuple[SliceTarget | None, ...] | None:
        """The volume slots of frames ``indices``, as the targets of a shard of them."""
        return None if self.targets is None else tuple(self.targets[i] for i in indices)


@dataclass(eq=False)
class WorkerSlot:
    """The parent's view of one worker process: its pipe, its state and the shards it holds."""

    number: int
    process: Process
    reader: BufferedByteReceiveStream
    ready: bool = False
    alive: bool = True
    load: int = 0
    shards: set[int] = field(default_factory=set)
    lock: anyio.Lock = field(default_factory=anyio.Lock)


def unfinished(shard: Shard) -> list[tuple[int, ...]]:
    """The frames a dead worker held without a result (their indices), each to be run
    again on its own: one by one, or, for DICOM files, one instance at a time (an
    instance's frames come back together, once it is written, so those without a result
    are whole instances)."""
    pending = sorted(shard.pending)
    if shard.dicom is None:
        return [(i,) for i in pending]
    instances: dict[tuple[str, str, str], list[int]] = {}
    for i in pending:
        instances.setdefault(shard.frames[i].instance_key, []).append(i)
    return [tuple(group) for group in instances.values()]
