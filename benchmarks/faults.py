"""Download under the issue's fault mix: is every frame verified, and what did it cost?

Seeds a data directory with real HTJ2K frames (CT-sized 512x512 phantoms) through the
backend, starts ``python -m hi_async local serve`` on it in a child process with 5 %
errors, 2 % drops, 1 % truncations, 1 % corruptions and a 300 requests/s throttle
(seeded), downloads every frame with the library (default settings, explicit
credentials), and prints JSON: verified share, retries by cause, 429s, the limiter's
lowest concurrency, frames/s, and the faults the server says it injected.

    python benchmarks/faults.py [--frames 300] [--size 512] [--seed 8]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hi_async import Downloader
from hi_async.api import run_sync
from hi_async.local.healthimaging.registry import Registry
from hi_async.local.stack import LocalStack
from hi_async.settings import Settings
from tests.local.helpers import frame_of, instance, phantom

ISSUE_MIX = {"error_rate": 0.05, "drop_rate": 0.02, "truncate_rate": 0.01,
             "corrupt_rate": 0.01, "throttle_rps": 300.0}


def seed(data_dir: Path, frames: int, size: int) -> tuple[str, str]:
    registry = Registry(data_dir / "healthimaging")
    backend = registry.get()
    ds = backend.create_datastore("faults-bench", ready=True).datastore_id
    items = []
    for i in range(frames):
        base = instance("1.2.840.99.8", f"1.2.840.99.8.{i}")
        dicom = {**base.instance_dicom, "Rows": size, "Columns": size}
        items.append(dataclasses.replace(base, instance_dicom=dicom,
                                         frames=(frame_of(phantom(i, size, size)),)))
    image_set_id = backend.add_instances(ds, items, job_id=None)[0].image_set_id
    registry.close()
    return ds, image_set_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hi_async-faults-") as tmp:
        ds, image_set = seed(Path(tmp), args.frames, args.size)
        knobs = {**ISSUE_MIX, "fault_seed": args.seed}
        with LocalStack(mode="process", data_dir=tmp, knobs=knobs) as stack:
            settings = Settings(endpoint_url=stack.url, region="us-east-1",
                                access_key_id="test", secret_access_key="test")
            out = Path(tmp) / "out"

            async def run() -> tuple[object, object]:
                async with Downloader(settings) as dl:
                    summary = await dl.download(ds, image_set_ids=[image_set], out_dir=out)
                    return summary, dl

            t0 = time.perf_counter()
            summary, dl = run_sync(run, settings)
            wall = time.perf_counter() - t0
            stats = stack.stats()
    retrier, limiter = dl.retrier, dl.limiter  # type: ignore[attr-defined]
    by_kind = dict(retrier.by_kind)
    by_kind["refetch_after_mismatch"] = summary.retries - sum(by_kind.values())  # type: ignore[attr-defined]
    print(json.dumps({
        "benchmark": "faults", "fault_mix": knobs, "frame_size": f"{args.size}x{args.size}",
        "frames": summary.frames, "verified": summary.verified,  # type: ignore[attr-defined]
        "failed": summary.failed,  # type: ignore[attr-defined]
        "verified_percent": round(100.0 * summary.verified / max(1, summary.frames), 2),  # type: ignore[attr-defined]
        "retries": summary.retries, "retries_by_kind": by_kind,  # type: ignore[attr-defined]
        "throttled_429": retrier.throttled, "fetchers": settings.fetchers,
        "limiter_lowest_concurrency": round(limiter.lowest, 2),
        "limiter_final_concurrency": round(limiter.limit, 2),
        "seconds": round(wall, 3),
        "frames_per_second": round(summary.frames / wall, 1),  # type: ignore[attr-defined]
        "server_injected_faults": stats.get("faults", {}),
        "server_requests": {op: stats["requests"].get(op, {})
                            for op in ("GetImageFrame", "GetImageSetMetadata")},
        "cpus": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
