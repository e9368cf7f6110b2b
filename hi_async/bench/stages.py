"""Name the pipeline's bottleneck from summary.json's stage statistics.

The pipeline reports, per stage, the seconds its tasks spent working in the run's own
process (summed over the tasks) and, per hand-off queue, its mean fill sampled at every
batch of results. The queues say where work piles up: a full ``results`` queue means
results wait for the sink (journal, progress); a full ``frames`` queue means frame
references wait for the frame stage (fetch, decode, verify, write: in worker processes,
or lanes in this process); an empty ``frames`` queue means the frame stage is starved by
metadata. With worker processes the fetch and decode busy times are theirs, not shown.
"""

from __future__ import annotations

import os
from typing import Any

FULL = 0.5

_WHY = {
    "frames": "frame references wait for the frame stage (fetch, decode, verify, write): "
              "latency, decode or per-frame client cost (frames queue mostly full)",
    "sink": "results wait for the sink (results queue mostly full)",
    "metadata": "the frame stage is starved of frame references (frames queue mostly empty)",
}


def analyse(stages: dict[str, Any] | None, seconds: float | None, *, frames: int = 0,
            cpu_seconds: float = 0.0, wall_seconds: float = 0.0) -> dict[str, Any] | None:
    """Busy time, queue fill, the bottleneck with the reason, and the cores the client
    used (its whole process tree's CPU over its wall time)."""
    if not stages or not seconds:
        return None
    fill = stages.get("queueFill", {})
    if fill.get("results", 0.0) >= FULL:
        neck = "sink"
    elif fill.get("frames", 0.0) >= FULL:
        neck = "frames"
    else:
        neck = "metadata"
    out: dict[str, Any] = {"busySeconds": stages.get("busySeconds", {}), "queueFill": fill,
                           "bottleneck": neck, "why": _WHY[neck]}
    if frames and wall_seconds:
        out["clientCpuMsPerFrame"] = round(cpu_seconds * 1000 / frames, 3)
        out["clientCoresUsed"] = round(cpu_seconds / wall_seconds, 3)
        out["cores"] = os.cpu_count() or 1
    return out
