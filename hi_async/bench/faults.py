"""Download under the issue's fault mix: is every frame verified, and what did it cost?

Starts ``python -m hi_async local serve`` in a child process, imports a synthetic series
of SIZE x SIZE frames (real HTJ2K, through an import job), then turns on 5 % errors, 2 %
drops, 1 % truncations, 1 % corruptions and a 300 requests/s throttle (seeded), downloads
every frame with the library (default settings, explicit credentials), and prints JSON:
verified share, retries by cause, 429s, the limiter's lowest concurrency, frames/s, and
the faults the server says it injected.

    python -m hi_async.bench.faults [--frames 300] [--size 512] [--seed 8]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from hi_async import Downloader
from hi_async.bench.study import import_series
from hi_async.event_loop import run_sync
from hi_async.local.stack import LocalStack
from hi_async.model import Summary
from hi_async.settings import Settings

ISSUE_MIX = {"error_rate": 0.05, "drop_rate": 0.02, "truncate_rate": 0.01,
             "corrupt_rate": 0.01, "throttle_rps": 300.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    knobs = {**ISSUE_MIX, "fault_seed": args.seed}
    with tempfile.TemporaryDirectory(prefix="hi_async-faults-") as tmp, \
            LocalStack(mode="process", data_dir=Path(tmp) / "stack",
                       datastore_delay=0.0) as stack:
        ds, image_sets = import_series(stack.url, "ct", args.frames, args.size, args.size,
                                       name="faults-bench")
        stack.set_faults(**knobs)
        settings = Settings(endpoint_url=stack.url, region="us-east-1",
                            access_key_id="test", secret_access_key="test")
        out = Path(tmp) / "out"

        async def run() -> tuple[Summary, Downloader]:
            async with Downloader(settings) as dl:
                summary = await dl.download(ds, image_set_ids=image_sets, out_dir=out)
                return summary, dl

        t0 = time.perf_counter()
        summary, dl = run_sync(run, settings)
        wall = time.perf_counter() - t0
        stats = stack.stats()
    retrier = dl.retrier
    by_kind = dict(retrier.by_kind)
    print(json.dumps({
        "benchmark": "faults", "fault_mix": knobs, "frame_size": f"{args.size}x{args.size}",
        "frames": summary.frames, "verified": summary.verified,
        "failed": summary.failed,
        "verified_percent": round(100.0 * summary.verified / max(1, summary.frames), 2),
        "retries": summary.retries, "retries_by_kind": by_kind,
        "throttled_429": retrier.throttled, "fetchers": settings.fetchers,
        **_rate_figures(dl),
        "seconds": round(wall, 3),
        "frames_per_second": round(summary.frames / wall, 1),
        "server_injected_faults": stats.get("faults", {}),
        "server_requests": {op: stats["requests"].get(op, {})
                            for op in ("GetImageFrame", "GetImageSetMetadata")},
        "cpus": os.cpu_count(),
    }, indent=2))


def _rate_figures(dl: Downloader) -> dict[str, Any]:
    """How the send rate reacted to 429s: the rate the worker processes shared, or this
    process's own concurrency limiter when it ran alone."""
    if dl.workers is not None:
        share = dl.workers.rate
        return {"workers": dl.workers.size, "shared_rate_cuts": share.epoch,
                "shared_rate_lowest": round(share.lowest, 1) if share.lowest else None}
    limiter = dl.limiter
    return {"workers": 1, "limiter_lowest_concurrency": round(limiter.lowest, 2),
            "limiter_final_concurrency": round(limiter.limit, 2)}


if __name__ == "__main__":
    main()
