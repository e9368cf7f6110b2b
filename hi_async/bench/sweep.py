"""Sweeps: latency x fetchers, then decoders, pool kind, uvloop and the GetImageFrame
client (the lean HTTP client or the SDK) one factor at a time.

All on the CT series (512x512, 16-bit, the decode-heavy case). One fetcher at 20 ms or
more needs a round trip per frame, so those points run on the first instances of the
same series, imported again into a second data store (the same frames, fewer of them);
each result names the study and frame count it ran on. Frames/s here is the pipeline's
own (start-up excluded), since a few hundred frames would otherwise measure start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import clients
from .study import Study

LATENCIES = (0.0, 5.0, 20.0, 50.0)
FETCHERS = (1, 4, 16, 64, 256)
QUICK_LATENCIES = (0.0, 50.0)
QUICK_FETCHERS = (1, 16)
DEFAULT_FETCHERS = 64


def run(target: clients.Target, study: Study, set_latency: Callable[[float], None], *,
        quick: bool, headline_latency: float, log: Callable[[str], None]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    latencies = QUICK_LATENCIES if quick else LATENCIES
    fetchers = QUICK_FETCHERS if quick else FETCHERS
    for latency in latencies:
        set_latency(latency)
        for n in fetchers:
            use_prefix = n == 1 and latency >= 20 and study.prefix is not None
            ds = study.prefix_datastore_id if use_prefix else study.datastore_id
            group = study.prefix if use_prefix else study.ct
            assert ds is not None and group is not None
            label = f"sweep-{latency:g}ms-f{n}"
            log(f"  {label} ({group.total_frames} frames of {group.name})")
            r = clients.hi_async(target, ds, group.image_sets, "none", label=label,
                                 fetchers=n)
            out.append({**r, "sweep": "latency-fetchers", "study": group.name})
    set_latency(headline_latency)
    factors: list[tuple[str, dict[str, Any]]] = [
        ("decoders-1", {"decoders": 1}), ("decoders-2", {"decoders": 2}),
        ("pool-process", {"pool": "process"}), ("pool-thread", {"pool": "thread"}),
        ("uvloop-on", {"uvloop": True}), ("uvloop-off", {"uvloop": False}),
        ("frame-client-lean", {"frame_client": "lean"}),
        ("frame-client-sdk", {"frame_client": "sdk"}),
    ]
    for name, kw in factors:
        label = f"sweep-{name}"
        log(f"  {label} ({study.ct.total_frames} frames of ct at {headline_latency:g} ms)")
        r = clients.hi_async(target, study.datastore_id, study.ct.image_sets, "none",
                             label=label, fetchers=DEFAULT_FETCHERS, **kw)
        out.append({**r, "sweep": "one-factor", "factor": name, "study": "ct"})
    return out


def table(sweep: list[dict[str, Any]]) -> str:
    """Pipeline frames/s: one row per latency, one column per fetcher count; then factors."""
    grid = [r for r in sweep if r.get("sweep") == "latency-fetchers"]
    lines: list[str] = []
    if grid:
        fetchers = sorted({r["config"]["fetchers"] for r in grid})
        lines += ["| latency \\ fetchers | " + " | ".join(str(f) for f in fetchers) + " |",
                  "|---|" + "---|" * len(fetchers)]
        for latency in sorted({r["config"]["latencyMs"] for r in grid}):
            cells = []
            for f in fetchers:
                hit = [r for r in grid if r["config"]["latencyMs"] == latency
                       and r["config"]["fetchers"] == f]
                cells.append(_cell(hit[0]) if hit else "")
            lines.append(f"| {latency:g} ms | " + " | ".join(cells) + " |")
    factors = [r for r in sweep if r.get("sweep") == "one-factor"]
    if factors:
        lines += ["", "| factor | frames/s (pipeline) | CPU ms/frame | peak RSS MB | "
                  "bottleneck |", "|---|---|---|---|---|"]
        for r in factors:
            neck = (r.get("stages") or {}).get("bottleneck", "")
            lines.append(f"| {r['factor']} | {r.get('pipelineFramesPerSecond')} | "
                         f"{r.get('cpuMsPerFrame')} | {r.get('peakRssMB')} | {neck} |")
    return "\n".join(lines)


def _cell(r: dict[str, Any]) -> str:
    mark = "" if r.get("study") == "ct" else f" ({r['frames']} fr)"
    ok = "" if r.get("verified") == r.get("frames") else " !"
    return f"{r.get('pipelineFramesPerSecond')}{mark}{ok}"
