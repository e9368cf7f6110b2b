"""Name the pipeline's bottleneck from summary.json's stage statistics.

The pipeline reports, per stage, the seconds its tasks spent working (summed over the
tasks) and, per hand-off queue, its mean fill sampled at every result. The queues say
where work piles up: a full ``encoded`` queue means fetched frames wait for the decoder
pool; a full ``frames`` queue with an empty ``encoded`` one means frame references wait
for a fetcher (latency, or the client's per-request cost); an empty ``frames`` queue
means the pipeline is starved by metadata. Utilisation divides busy time by the stage's
task-seconds (fetch: one task per fetcher; decode: two tasks per decoder, as the
pipeline starts them) to show how hard each stage works.
"""

from __future__ import annotations

import os
from typing import Any

FULL = 0.5

_WHY = {
    "decode": "fetched frames wait for the decoder pool (encoded queue mostly full)",
    "fetch": "frame references wait for a fetcher: latency or per-request client cost "
             "(frames queue full, encoded queue not)",
    "sink": "results wait for the sink (results queue mostly full)",
    "metadata": "the fetchers are starved of frame references (frames queue mostly empty)",
}


def analyse(stages: dict[str, Any] | None, seconds: float | None, fetchers: int | None,
            decoders: int | None) -> dict[str, Any] | None:
    """Busy time, queue fill, utilisation and the bottleneck with the reason."""
    if not stages or not seconds:
        return None
    busy = stages.get("busySeconds", {})
    fill = stages.get("queueFill", {})
    fetchers = fetchers or 64
    decoders = decoders or os.cpu_count() or 1
    tasks = {"metadata": 8, "fetch": fetchers, "decode": 2 * decoders, "sink": 1}
    utilisation = {name: round(busy.get(name, 0.0) / (seconds * n), 3)
                   for name, n in tasks.items() if name in busy}
    if fill.get("encoded", 0.0) >= FULL:
        neck = "decode"
    elif fill.get("results", 0.0) >= FULL:
        neck = "sink"
    elif fill.get("frames", 0.0) >= FULL:
        neck = "fetch"
    else:
        neck = "metadata"
    return {"busySeconds": busy, "queueFill": fill, "utilisation": utilisation,
            "bottleneck": neck, "why": _WHY[neck]}
