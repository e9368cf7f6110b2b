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
   one 4-D stack (time, echo or acquisition on the 4th axis, ascending). When the
   values differ slightly from slice to slice (a trigger time per slice) but every
   position has the same number of repeats, the n-th value at each position makes the
   n-th volume, with a warning. Otherwise each value becomes a 3-D stack of its own.
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

    def sort_key(self) -> float:
        """Volumes of a series are numbered in acquisition order: lowest InstanceNumber
        first (the sort is stable, so stacks without numbers keep document order)."""
        numbers = [f.instance_number for row in self.grid for f in row
                   if f.instance_number is not None]
        return float(min(numbers)) if numbers else float("inf")


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
    where = {id(f): i for i, c in enumerate(clusters) for f in c}
    everything = tuple(range(len(clusters)))

    def complete(rows: dict[Any, list[FrameInfo]]) -> bool:
        return len(rows) > 1 and all(
            tuple(sorted(where[id(f)] for f in row)) == everything for row in rows.values())

    uniform = len({len(c) for c in clusters}) == 1  # as many repeats at every position
    for axis, name, read, by_value in _REPEAT_KEYS:
        if not _tells_apart(read, frames, clusters):
            continue
        if by_value:
            rows = _rows_by_value(clusters, read)
            if complete(rows):
                keys = sorted(rows)
                return [Stack([rows[k] for k in keys], axis=axis, key=name,
                              values=[_number(k) for k in keys])]
            if uniform:
                # The values differ a little from slice to slice (a trigger time per
                # slice): the n-th value at each position is the n-th volume.
                ranked = _rows_by_rank(clusters, read)
                return [Stack(list(ranked.values()), axis=axis, key=name,
                              values=[float(np.mean([_number(read(f)) for f in row]))
                                      for row in ranked.values()],
                              warnings=[f"{name} differs between the slices of one "
                                        f"{axis} point; the n-th {name} at every slice "
                                        f"position makes the n-th volume"])]
            return [Stack([row], key=name, values=[_number(value)],
                          warnings=[f"{name} {_number(value):g} does not cover the same "
                                    f"slice positions as the rest of the series: a volume "
                                    f"of its own"])
                    for value, row in sorted(rows.items())]
        rows = _rows_by_rank(clusters, read)
        told = (f"slice positions repeat with no temporal position, echo or acquisition "
                f"number to tell the repeats apart; they are told apart by {name} order")
        if complete(rows):
            return [Stack(list(rows.values()), axis=axis, key=name,
                          values=[float(rank) for rank in rows], warnings=[told])]
        return [Stack([row], key=name, values=[float(rank)],
                      warnings=[told, f"repeat {rank} does not cover the same slice "
                                      f"positions as the rest of the series: a volume of "
                                      f"its own"])
                for rank, row in rows.items()]
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


def _number(value: Any) -> float:
    if isinstance(value, tuple):
        return float(value[0])
    return float(value)
