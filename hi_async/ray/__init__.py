"""hi_async on Ray (the ``hi_async[ray]`` extra): a cluster download, and a Ray Dataset of
verified frames.

- :func:`download` (``python -m hi_async download ... --ray ADDRESS``): shards of frames
  run as Ray tasks on the cluster's nodes; the driver keeps discovery, the one journal,
  progress and summary.json (which gains ``"nodes"``). See :mod:`hi_async.ray.cluster`.
- :func:`read_frames`: a lazy, streaming ``ray.data.Dataset`` of verified frames, one row
  per frame with its decoded pixels. See :mod:`hi_async.ray.dataset`.

Ray is imported only when one of these is used, so ``import hi_async.ray`` works (and
says how to install Ray) without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .connect import INSTALL_HINT, RayNotInstalled, require_ray

if TYPE_CHECKING:
    from .cluster import ClusterOptions, download, download_async
    from .dataset import read_frames

__all__ = ["INSTALL_HINT", "ClusterOptions", "RayNotInstalled", "download", "download_async",
           "read_frames", "require_ray"]

_LAZY = {"ClusterOptions": "cluster", "download": "cluster", "download_async": "cluster",
         "read_frames": "dataset"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hi_async.ray' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)
