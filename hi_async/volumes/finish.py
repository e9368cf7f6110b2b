"""The end of a series: write a complete volume's outputs, or say why there are none.

One call for the pipeline once every frame of a plan has either arrived or failed:
a complete buffer becomes the volume file (NIfTI or NumPy, each with its JSON sidecar)
and, on request, the preview; an incomplete one becomes a note and no file (see
``buffer.py`` for why). Either way the buffer is released and its ``*.tmp`` removed.
This runs blocking file I/O and compression: call it from a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .buffer import VolumeBuffer
from .files import VolumeFormat, preview_path, sidecar_path, volume_path
from .plan import Note, VolumePlan


@dataclass(frozen=True, slots=True)
class VolumeOutput:
    """What became of one planned volume."""

    plan: VolumePlan
    volume: Path | None = None  # the .nii.gz or .npy written
    sidecar: Path | None = None  # the .json beside it
    preview: Path | None = None  # the .png
    note: Note | None = None  # why nothing was written (frames missing)

    @property
    def written(self) -> bool:
        return self.note is None


def finish_volume(buffer: VolumeBuffer, out_dir: Path, *, fmt: VolumeFormat | None,
                  preview: bool) -> VolumeOutput:
    """Write the outputs of ``buffer`` under ``out_dir`` (``fmt`` None: no volume file,
    only the preview), then release it."""
    plan = buffer.plan
    try:
        note = buffer.missing_note()
        if note is not None:
            return VolumeOutput(plan, note=note)
        volume = side = picture = None
        if fmt == "nifti":
            from .nifti import write_nifti

            volume = write_nifti(plan, buffer.array, volume_path(out_dir, plan, "nifti"))
            side = sidecar_path(volume)
        elif fmt == "npy":
            from .npy import write_npy

            volume, side = write_npy(plan, buffer.array, volume_path(out_dir, plan, "npy"))
        if preview:
            from .preview import write_preview

            picture = write_preview(plan, buffer.array, preview_path(out_dir, plan))
        return VolumeOutput(plan, volume, side, picture)
    finally:
        buffer.close()
