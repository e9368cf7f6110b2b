"""Assemble a volume in place as its frames arrive, in bounded memory.

A :class:`VolumeBuffer` is the one copy of a volume's voxels while its series downloads:
a decoded frame is copied into its slot (``put``) and the caller drops the frame, so no
frame is held twice. Small volumes live in memory; a volume larger than
``memmap_threshold`` bytes lives in a memory-mapped ``*.tmp`` file under the output
folder (see ``files.buffer_path``), so a 2000-slice series costs page cache, not
resident memory.

Several processes can fill one memory-mapped buffer: :meth:`VolumeBuffer.targets` gives
each frame's :class:`SliceTarget` (file, byte offset, shape, dtype: small and
picklable), a worker calls :func:`write_slice` with its decoded frame (one ``pwrite``;
the volume is never loaded), and the owner records it with :meth:`mark_filled` once the
worker reports success. Writes through the file and reads through the owner's shared
map see the same pages (POSIX ``MAP_SHARED``).

Missing slices. A frame that failed leaves its slot unfilled, and ``missing()`` names
it. Such a volume is **not written**: an unfilled slot holds zeros (or whatever the
file held), and a NIfTI or NumPy file carries no mark that says "this plane is not
data". Every tool that opens it (a viewer, a segmentation model, a statistics script)
would take the zeros as tissue, air or signal, and most never read a sidecar. So the
owner writes nothing, the run's report gets a note naming the missing frames, and a
rerun of the download (which fetches only what failed) completes the volume. Geometry
gaps in the series itself (a slice position absent from the metadata) are different:
those volumes are written with the slices that exist and a warning (see ``geometry.py``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from .plan import Note, VolumePlan

#: Volumes up to this size are assembled in memory; larger ones in a memory-mapped file.
DEFAULT_MEMMAP_THRESHOLD = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SliceTarget:
    """Where one frame goes in a memory-mapped buffer file."""

    path: str
    offset: int  # bytes from the start of the file
    shape: tuple[int, ...]  # (rows, columns) or (rows, columns, samples)
    dtype: str  # stored dtype, little-endian


def _fit(pixels: np.ndarray, shape: tuple[int, ...], dtype: np.dtype, what: str) -> np.ndarray:
    """``pixels`` as ``dtype`` when that loses nothing, else a clear error."""
    if tuple(pixels.shape) != shape:
        raise ValueError(f"{what}: frame shape {tuple(pixels.shape)} is not the "
                         f"volume's slice shape {shape}")
    if not np.can_cast(pixels.dtype, dtype, casting="safe"):
        raise ValueError(f"{what}: frame dtype {pixels.dtype} does not fit the volume's "
                         f"stored dtype {dtype}")
    return pixels.astype(dtype, copy=False)


def write_slice(target: SliceTarget, pixels: np.ndarray) -> None:
    """Write one decoded frame into a buffer file at its offset (any process).

    Opens the file, writes the frame's bytes with one positioned write and closes it;
    the rest of the volume is neither read nor mapped.
    """
    data = _fit(pixels, target.shape, np.dtype(target.dtype), target.path)
    raw = np.ascontiguousarray(data).tobytes()
    fd = os.open(target.path, os.O_WRONLY)
    try:
        written = os.pwrite(fd, raw, target.offset)
        if written != len(raw):
            raise OSError(f"short write to {target.path}: {written} of {len(raw)} bytes "
                          f"(disk full?)")
    finally:
        os.close(fd)


class VolumeBuffer:
    """The voxels of one planned volume, filled slot by slot."""

    def __init__(self, plan: VolumePlan, *, scratch: Path | None = None,
                 memmap_threshold: int = DEFAULT_MEMMAP_THRESHOLD) -> None:
        """``scratch``: the ``*.tmp`` file to map when the volume is larger than
        ``memmap_threshold`` bytes (no file: always in memory)."""
        self.plan = plan
        self._dtype = np.dtype(plan.dtype).newbyteorder("<")
        self._filled = np.zeros(plan.slice_count, dtype=bool)
        self.path: Path | None = None
        if scratch is not None and plan.nbytes > memmap_threshold:
            self.path = Path(scratch)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "wb") as fh:
                fh.truncate(plan.nbytes)  # sparse: disk is used only as slots fill
            self._array: np.ndarray = np.memmap(self.path, dtype=self._dtype, mode="r+",
                                                shape=plan.shape)
        else:
            self._array = np.zeros(plan.shape, dtype=self._dtype)
        self._slices = self._array.reshape((-1, *plan.slice_shape))

    @property
    def array(self) -> np.ndarray:
        """The volume in the plan's buffer shape (a memory map for large volumes)."""
        return self._array

    @property
    def memory_mapped(self) -> bool:
        return self.path is not None

    def put(self, frame_id: str, pixels: np.ndarray) -> None:
        """Copy one decoded frame into its slot (a frame sent twice overwrites itself)."""
        flat = self._flat(frame_id)
        self._slices[flat] = _fit(pixels, self.plan.slice_shape, self._dtype,
                                  f"frame {frame_id} of volume {self.plan.name}")
        self._filled[flat] = True

    def targets(self) -> dict[str, SliceTarget]:
        """Each frame's slot in the buffer file, for writers in other processes."""
        if self.path is None:
            raise ValueError(f"volume {self.plan.name} is assembled in memory; only a "
                             f"memory-mapped buffer can be written by other processes")
        slice_bytes = int(np.prod(self.plan.slice_shape)) * self._dtype.itemsize
        return {fid: SliceTarget(str(self.path), self.plan.flat_index(fid) * slice_bytes,
                                 self.plan.slice_shape, self._dtype.str)
                for fid in self.plan.frame_ids}

    def mark_filled(self, frame_id: str) -> None:
        """Record that another process wrote ``frame_id`` with :func:`write_slice`."""
        self._filled[self._flat(frame_id)] = True

    @property
    def complete(self) -> bool:
        return bool(self._filled.all())

    def missing(self) -> list[str]:
        """Frame IDs whose slot was never filled, in slice order."""
        return [self.plan.frame_ids[i] for i in np.flatnonzero(~self._filled)]

    def missing_note(self) -> Note | None:
        """The note to report when the volume cannot be written (see the module docstring)."""
        gone = self.missing()
        if not gone:
            return None
        shown = ", ".join(gone[:5]) + (", ..." if len(gone) > 5 else "")
        return Note(self.plan.series_instance_uid,
                    f"volume {self.plan.name} not written: {len(gone)} of "
                    f"{self.plan.slice_count} frames did not arrive ({shown}); rerun the "
                    f"download to fetch them")

    def close(self) -> None:
        """Release the memory and remove the buffer file (after the outputs are written,
        or when the volume is abandoned)."""
        array = self._array
        self._array = self._slices = np.empty((0,), dtype=self._dtype)
        if isinstance(array, np.memmap):
            mapping = getattr(array, "_mmap", None)
            del array
            if mapping is not None:
                with contextlib.suppress(BufferError, ValueError):
                    mapping.close()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def __enter__(self) -> VolumeBuffer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _flat(self, frame_id: str) -> int:
        try:
            return self.plan.flat_index(frame_id)
        except KeyError:
            raise KeyError(f"frame {frame_id} is not part of volume {self.plan.name}") from None
