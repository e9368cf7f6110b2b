"""Assemble a volume in place as its frames arrive, in bounded memory.

A :class:`VolumeBuffer` is the one copy of a volume's voxels while its series downloads:
a decoded frame is copied into its slot (``put``) and the caller drops the frame, so no
frame is held twice. Small volumes live in memory; a volume larger than
``memmap_threshold`` bytes lives in a ``*.tmp`` file under the output folder (see
``files.buffer_path``), so a 2000-slice series costs page cache, not resident memory:
frames go into the file with positioned writes (never through the map), the file is
mapped read-only for the writers, and :func:`stream_slices` hands the mapped pages back
to the kernel as soon as a writer has consumed them. Resident memory then stays at a few
slices whatever the size of the volume.

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
import mmap
import os
from collections.abc import Iterator
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


def _pwrite_all(fd: int, data: bytes, offset: int, where: str) -> None:
    written = os.pwrite(fd, data, offset)
    if written != len(data):
        raise OSError(f"short write to {where}: {written} of {len(data)} bytes (disk full?)")


def write_slice(target: SliceTarget, pixels: np.ndarray) -> None:
    """Write one decoded frame into a buffer file at its offset (any process).

    Opens the file, writes the frame's bytes with one positioned write and closes it;
    the rest of the volume is neither read nor mapped.
    """
    data = _fit(pixels, target.shape, np.dtype(target.dtype), target.path)
    fd = os.open(target.path, os.O_WRONLY)
    try:
        _pwrite_all(fd, np.ascontiguousarray(data).tobytes(), target.offset, target.path)
    finally:
        os.close(fd)


def stream_slices(array: np.ndarray, slice_shape: tuple[int, ...]) -> Iterator[np.ndarray]:
    """Each slice of ``array`` in storage order; for a memory map, the pages of a slice
    are released (``MADV_DONTNEED``) once the consumer asks for the next one.

    Releasing a shared file mapping's pages loses nothing (they come back from the file
    on the next access); it only keeps a writer's resident memory at one slice.
    """
    slices = array.reshape((-1, *slice_shape))
    found = getattr(array, "_mmap", None)
    mapping = found if isinstance(found, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED") \
        else None
    start = int(np.frombuffer(mapping, dtype=np.uint8).ctypes.data) if mapping is not None else 0
    for flat in range(slices.shape[0]):
        current = slices[flat]
        yield current
        if mapping is not None:
            first = int(current.ctypes.data) - start
            page = first - first % mmap.PAGESIZE
            with contextlib.suppress(OSError, ValueError):
                mapping.madvise(mmap.MADV_DONTNEED, page, first + current.nbytes - page)


class VolumeBuffer:
    """The voxels of one planned volume, filled slot by slot."""

    def __init__(self, plan: VolumePlan, *, scratch: Path | None = None,
                 memmap_threshold: int = DEFAULT_MEMMAP_THRESHOLD) -> None:
        """``scratch``: the ``*.tmp`` file to map when the volume is larger than
        ``memmap_threshold`` bytes (no file: always in memory)."""
        self.plan = plan
        self._dtype = np.dtype(plan.dtype).newbyteorder("<")
        self._filled = np.zeros(plan.slice_count, dtype=bool)
        self._slice_bytes = int(np.prod(plan.slice_shape)) * self._dtype.itemsize
        self.path: Path | None = None
        self._fd: int | None = None
        if scratch is not None and plan.nbytes > memmap_threshold:
            self.path = Path(scratch)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            os.ftruncate(self._fd, plan.nbytes)  # sparse: disk is used only as slots fill
            # Read-only: frames arrive by pwrite, so the map holds only what writers read.
            self._array: np.ndarray = np.memmap(self.path, dtype=self._dtype, mode="r",
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
        data = _fit(pixels, self.plan.slice_shape, self._dtype,
                    f"frame {frame_id} of volume {self.plan.name}")
        if self._fd is not None:
            _pwrite_all(self._fd, np.ascontiguousarray(data).tobytes(),
                        flat * self._slice_bytes, str(self.path))
        else:
            self._slices[flat] = data
        self._filled[flat] = True

    def targets(self) -> dict[str, SliceTarget]:
        """Each frame's slot in the buffer file, for writers in other processes."""
        if self.path is None:
            raise ValueError(f"volume {self.plan.name} is assembled in memory; only a "
                             f"memory-mapped buffer can be written by other processes")
        return {fid: SliceTarget(str(self.path), self.plan.flat_index(fid) * self._slice_bytes,
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
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
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
