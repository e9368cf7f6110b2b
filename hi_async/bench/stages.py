"""Name the pipeline's bottleneck from summary.json's stage statistics.

The pipeline reports, per stage, the seconds its tasks spent working (summed over the
tasks) and, per hand-off queue, its mean fill sampled at every result. The queues say
where work piles up: a full ``encoded`` queue means fetched frames wait for the decoder
pool; a full ``frames`` queue with an empty ``encoded`` one means frame references wait
for a fetcher (latency, or the client's per-request cost); an empty ``frames`` queue
means the pipeline is starved by metadata. Utilisation divides busy time by the stage's
task-seconds (fetch: one task per fetcher; decode: TASKS_PER_DECODER tasks per decoder, as
the pipeline starts them) to show how hard each stage works.
"""

from __future__ import annotations

import os
from typing import Any

from hi_async.stages.frames import TASKS_PER_DECODER

FULL = 0.5

_WHY = {
    "decode": "fetched frames wait for the decoder pool (encoded queue mostly full)",
    "fetch": "frame references wait for a fetcher: latency or per-request client cost "
             "(frames queue full, encoded queue not)",
    "sink": "results wait for the sink (results queue mostly full)",
    "metadata": "the fetchers are starved of frame references (frames queue mostly empty)",
}


def analyse(stages: dict[str, Any] | None, seconds: float | None, fetchers: int | None,
            decoders: int | None, *, frames: int = 0, cpu_seconds: float = 0.0,
            wall_seconds: float = 0.0) -> dict[str, Any] | None:
    """Busy time, queue fill, utilisation and the bottleneck with the reason.

    For the decode stage it also compares the time a frame spends in the pool's round
    trip with the CPU the whole client spends per frame: a round trip many times longer
    than the CPU, with the client using well under its cores, means the pool waits on
    hand-offs (too few jobs in flight, a busy event loop holding the interpreter lock), not
    on decoding.
    """
    if not stages or not seconds:
        return None
    busy = stages.get("busySeconds", {})
    fill = stages.get("queueFill", {})
    fetchers = fetchers or 64
    decoders = decoders or os.cpu_count() or 1
    tasks = {"metadata": 8, "fetch": fetchers, "decode": TASKS_PER_DECODER * decoders,
             "sink": 1}
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
    out: dict[str, Any] = {"busySeconds": busy, "queueFill": fill,
                           "utilisation": utilisation, "bottleneck": neck, "why": _WHY[neck]}
    if frames and wall_seconds:
        cores = os.cpu_count() or 1
        out["decodeRoundTripMsPerFrame"] = round(busy.get("decode", 0.0) * 1000 / frames, 3)
        out["clientCpuMsPerFrame"] = round(cpu_seconds * 1000 / frames, 3)
        out["clientCoresUsed"] = round(cpu_seconds / wall_seconds, 3)
        out["decodeInFlight"] = tasks["decode"]
        if neck == "decode" and cpu_seconds / wall_seconds < 0.6 * cores:
            out["why"] += (f"; yet the client used {cpu_seconds / wall_seconds:.2f} of "
                           f"{cores} cores and a frame spent "
                           f"{out['decodeRoundTripMsPerFrame']} ms in the pool's round trip "
                           f"for {out['clientCpuMsPerFrame']} ms of client CPU: the pool "
                           f"waits on hand-offs ({tasks['decode']} jobs in flight) or, with "
                           "a thread pool, on the interpreter lock the event loop holds, "
                           "not on decoding")
    return out
