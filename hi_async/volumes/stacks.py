"""Split a series' frames into stacks: one per grid, and repeats into a 4th axis. Pure.

A series may hold several things that are not one volume: a localizer, stacks in other
orientations or sizes, several echoes, several temporal positions. The rules:

1. Frames are grouped by their grid: rows, columns, samples, stored dtype, colour
   model, orientation, pixel spacing, and whether they are a localizer. Each group is
   a stack candidate.
2. Within a group, frames at the same position along the normal are repeats. The first
   attribute that tells the repeats at every position apart decides what they are:
   TemporalPositionIndex / Identifier, TriggerTime (time); EchoNumbers, EchoTime
   (echo); AcquisitionNumber (acquisition). Failing those, AcquisitionTime or the
   instance order tells them apart by rank, with a warning.
3. When every value of that attribute covers exactly the same positions, the group is
   one 4-D stack (time, echo or acquisition on the 4th axis, ascending). Otherwise
   each value becomes a 3-D stack of its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .frames import FrameInfo
from .geometry import SAME_POSITION_MM, GeometryError, normal


@dataclass(slots=True)
class Stack:
    """Frames of one volume as ``grid[t][z]`` (one row for a 3-D stack), z in any order."""

    grid: list[list[FrameInfo]]
    axis: str | None = None  # "time" | "echo" | "acquisition" | "repeat" for 4-D
    key: str | None = None  # the attribute the 4th axis (or the split) follows
    values: list[float] = field(default_factory=list)  # its value per row of grid
    warnings: list[str] = field(default_factory=list)

    @property
    def first(self) -> FrameInfo:
        return self.grid[0][0]

    def sort_key(self) -> tuple[float, int]:
        """Volumes of a series are numbered in acquisition order: lowest InstanceNumber."""
        numbers = [f.instance_number for row in self.grid for f in row
                   if f.instance_number is not None]
        return (min(numbers) if numbers else float("inf"), 0)


_Key = Callable[[FrameInfo], Any]
#: (4th-axis kind, attribute name, reader, by value?) in the order they are tried.
_REPEAT_KEYS: tuple[tuple[str, str, _Key, bool], ...] = (
    ("time", "TemporalPositionIndex", lambda f: f.temporal_index, True),
    ("time", "TriggerTime", lambda f: f.trigger_time, True),
    ("echo", "EchoNumbers", lambda f: f.echo_number, True),
    ("echo", "EchoTime", lambda f: f.echo_time, True),
    ("acquisition", "AcquisitionNumber", lambda f: f.acquisition_number, True),
    ("time", "AcquisitionTime", lambda f: f.acquisition_time, False),
    ("repeat", "InstanceNumber", lambda f: (f.instance_number or 0, f.frame_number), False),
)


def grid_key(frame: FrameInfo) -> tuple[Any, ...]:
    """What frames of one volume must share (geometry is required: checked before)."""
    assert frame.orientation is not None and frame.pixel_spacing is not None
    return (frame.rows, frame.columns, frame.samples_per_pixel, frame.dtype,
            frame.photometric, frame.localizer,
            tuple(round(v, 4) for v in frame.orientation),
            tuple(round(v, 4) for v in frame.pixel_spacing))


def group_by_grid(frames: Sequence[FrameInfo]) -> list[list[FrameInfo]]:
    """Frames grouped by :func:`grid_key`, groups in order of first appearance."""
    groups: dict[tuple[Any, ...], list[FrameInfo]] = {}
    for frame in frames:
        groups.setdefault(grid_key(frame), []).append(frame)
    return list(groups.values())


def position_clusters(frames: Sequence[FrameInfo]) -> list[list[FrameInfo]]:
    """Frames of one grid at the same place along the normal, nearest-first order."""
    assert frames[0].orientation is not None
    _, _, n = normal(frames[0].orientation)
    located = sorted(frames, key=lambda f: float(np.asarray(f.position) @ n))
    clusters: list[list[FrameInfo]] = []
    start = None
    for frame in located:
        where = float(np.asarray(frame.position) @ n)
        if start is None or where - start > SAME_POSITION_MM:
            clusters.append([])
            start = where
        clusters[-1].append(frame)
    return clusters


def split_stacks(frames: Sequence[FrameInfo]) -> list[Stack]:
    """One grid's frames as 3-D stacks or one 4-D stack (see the module docstring).

    Raises GeometryError when the grid's orientation or pixel spacing cannot place them.
    """
    spacing = frames[0].pixel_spacing
    if spacing is None or min(spacing) <= 0:
        raise GeometryError(f"PixelSpacing {list(spacing or ())} is not positive")
    clusters = position_clusters(frames)
    if all(len(c) == 1 for c in clusters):
        return [Stack([[c[0] for c in clusters]])]
    everything = tuple(range(len(clusters)))
    for axis, name, read, by_value in _REPEAT_KEYS:
        if not _tells_apart(read, frames, clusters):
            continue
        rows = _rows_by_value(clusters, read) if by_value else _rows_by_rank(clusters, read)
        warnings = [] if by_value else [
            f"slice positions repeat with no temporal position, echo or acquisition number "
            f"to tell the repeats apart; they are told apart by {name} order"]
        if len(rows) > 1 and all(_covers(r, clusters) == everything for r in rows.values()):
            values = sorted(rows)
            return [Stack([rows[v] for v in values], axis=axis, key=name,
                          values=[_number(v) for v in values], warnings=warnings)]
        stacks = []
        for value, row in sorted(rows.items()):
            note = (f"{name} {_number(value):g} does not cover the same slice positions as "
                    f"the rest of the series: a volume of its own")
            stacks.append(Stack([row], key=name, values=[_number(value)],
                                warnings=[*warnings, note]))
        return stacks
    raise AssertionError("the instance order always tells repeats apart")


def _tells_apart(read: _Key, frames: Sequence[FrameInfo],
                 clusters: list[list[FrameInfo]]) -> bool:
    """Every frame has a value, and no two frames at one position share it."""
    if any(read(f) is None for f in frames):
        return False
    for cluster in clusters:
        values = [read(f) for f in cluster]
        if len(set(values)) != len(values):
            return False
    return True


def _rows_by_value(clusters: list[list[FrameInfo]], read: _Key) -> dict[Any, list[FrameInfo]]:
    """Frames by the value of ``read``, each row in position order."""
    rows: dict[Any, list[FrameInfo]] = defaultdict(list)
    for cluster in clusters:
        for frame in cluster:
            rows[read(frame)].append(frame)
    return dict(rows)


def _rows_by_rank(clusters: list[list[FrameInfo]], read: _Key) -> dict[Any, list[FrameInfo]]:
    """Frames by their rank within their position (1st, 2nd, ... by ``read``)."""
    rows: dict[Any, list[FrameInfo]] = defaultdict(list)
    for cluster in clusters:
        for rank, frame in enumerate(sorted(cluster, key=read), start=1):
            rows[rank].append(frame)
    return dict(rows)


def _covers(row: Sequence[FrameInfo], clusters: list[list[FrameInfo]]) -> tuple[int, ...]:
    """The positions (cluster indices) ``row`` has a frame at, in order."""
    where = {id(f): i for i, c in enumerate(clusters) for f in c}
    return tuple(sorted(where[id(f)] for f in row))


def _number(value: Any) -> float:
    if isinstance(value, tuple):
        return float(value[0])
    return float(value)
