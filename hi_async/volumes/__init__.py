"""Series as volumes: plan from the metadata, assemble frames in place, write, preview.

    plans, notes = plan_volumes(doc)               # doc: the parsed image set metadata
    for plan in plans:
        buf = VolumeBuffer(plan, scratch=buffer_path(out, plan))
        for frame in frames_of(plan):              # any order, as they arrive
            buf.put(frame.ref.image_frame_id, frame.pixels)
        result = finish_volume(buf, out, fmt="nifti", preview=True)  # files, or a note

Modules, one job each: ``values`` (metadata value conventions), ``frames`` (per-frame
geometry, classic and enhanced multi-frame), ``geometry`` (order, spacing, affine,
warnings), ``stacks`` (a series' frames → 3-D stacks or one 4-D stack), ``plan``
(VolumePlan, Note, plan_volumes), ``buffer`` (VolumeBuffer, SliceTarget, write_slice),
``scaling`` (integers with a rescale, or float32), ``files`` (paths, atomic writes),
``sidecar``, ``nifti``, ``npy``, ``preview``, ``finish`` (the end of a series). The
writers import nibabel and Pillow, so they load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .buffer import DEFAULT_MEMMAP_THRESHOLD, SliceTarget, VolumeBuffer, write_slice
from .files import VolumeFormat, buffer_path, preview_path, sidecar_path, volume_path
from .finish import VolumeOutput, finish_volume
from .plan import Note, VolumePlan, plan_volumes

if TYPE_CHECKING:
    from .nifti import write_nifti
    from .npy import write_npy
    from .preview import write_preview
    from .sidecar import sidecar, write_sidecar

__all__ = [
    "DEFAULT_MEMMAP_THRESHOLD", "Note", "SliceTarget", "VolumeBuffer", "VolumeFormat",
    "VolumeOutput", "VolumePlan", "buffer_path", "finish_volume", "plan_volumes",
    "preview_path", "sidecar", "sidecar_path", "volume_path", "write_nifti", "write_npy",
    "write_preview", "write_sidecar", "write_slice",
]

_LAZY = {"write_nifti": "nifti", "write_npy": "npy", "write_preview": "preview",
         "sidecar": "sidecar", "write_sidecar": "sidecar"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hi_async.volumes' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)
