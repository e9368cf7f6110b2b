"""Where volume outputs go, and writing them so that a final name is always whole.

Paths: ``DIR/<imageSetId>/volumes/<name>.nii.gz`` (or ``.npy`` + ``.json``),
``DIR/<imageSetId>/previews/<name>.png``, and the memory-mapped assembly file
``DIR/<imageSetId>/volumes/<name>.volume.tmp``. ``name`` is the plan's: a SeriesInstanceUID
the planner proved to be a DICOM UID (digits and dots), with ``-<n>`` when a series has
several volumes; the image set ID is checked against the service's pattern. Neither can
hold a separator or ``..``, so no path leaves ``DIR``.

Every file is written to ``<final>.tmp`` and renamed into place; an interrupted write
leaves only a ``*.tmp``, which a resumed download removes (the project's rule for
temporary files).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from ..paths import check_server_id
from .plan import VolumePlan

VolumeFormat = Literal["nifti", "npy"]
_SUFFIX = {"nifti": ".nii.gz", "npy": ".npy"}


def _folder(out_dir: Path, plan: VolumePlan, kind: str) -> Path:
    check_server_id(plan.image_set_id, "image set ID")
    return Path(out_dir) / plan.image_set_id / kind


def volume_path(out_dir: Path, plan: VolumePlan, fmt: VolumeFormat) -> Path:
    """``DIR/<imageSetId>/volumes/<name>.nii.gz`` or ``.npy``."""
    return _folder(out_dir, plan, "volumes") / (plan.name + _SUFFIX[fmt])


def sidecar_path(volume: Path) -> Path:
    """The JSON beside a volume: ``<name>.json`` for ``<name>.npy`` or ``<name>.nii.gz``."""
    name = volume.name
    for suffix in _SUFFIX.values():
        if name.endswith(suffix):
            return volume.with_name(name[: -len(suffix)] + ".json")
    return volume.with_suffix(".json")


def preview_path(out_dir: Path, plan: VolumePlan) -> Path:
    """``DIR/<imageSetId>/previews/<name>.png``."""
    return _folder(out_dir, plan, "previews") / (plan.name + ".png")


def buffer_path(out_dir: Path, plan: VolumePlan) -> Path:
    """The memory-mapped assembly file of a large volume (a ``*.tmp``: never a result)."""
    return _folder(out_dir, plan, "volumes") / (plan.name + ".volume.tmp")


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield ``<path>.tmp`` to write; on success rename it to ``path``, else remove it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
