"""How much server CPU does the local stack spend per GetImageFrame?

Seeds a data directory with real HTJ2K frames (512x512 int16 phantoms) through the
backend, starts ``python -m hi_async local serve`` on it in a child process, then drives
GetImageFrame over N keep-alive connections with aiohttp for a fixed number of requests,
and reads the server's CPU time (user + system) from /proc before and after. Prints JSON:

    python benchmarks/emulator_frames.py [--connections 256] [--requests 20000]

The client runs in this process; on a 2-core machine client and server share the cores,
so frames/s is a floor, while CPU ms per frame is the server's own cost.
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

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hi_async.local.healthimaging.registry import Registry
from hi_async.local.stack import LocalStack
from tests.local.helpers import frame_of, instance, phantom

AUTH = ("AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/medical-imaging/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64)


def seed(data_dir: Path, frames: int) -> tuple[str, str, list[str]]:
    registry = Registry(data_dir / "healthimaging")
    backend = registry.get()
    ds = backend.create_datastore("bench", ready=True).datastore_id
    # The helper's instances carry 64x64 frames; a frame benchmark wants CT-sized ones.
    items = [dataclasses.replace(instance("1.2.840.99.1", f"1.2.840.99.1.{i}"),
                                 frames=(frame_of(phantom(i, 512, 512)),))
             for i in range(frames)]
    results = backend.add_instances(ds, items, job_id=None)
    image_set_id = results[0].image_set_id
    doc = backend.metadata_doc(ds, image_set_id)
    frame_ids = [f["ID"] for s in doc["Study"]["Series"].values()
                 for i in s["Instances"].values() for f in i["ImageFrames"]]
    registry.close()
    return ds, image_set_id, frame_ids


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(url: str, ds: str, image_set: str, frame_ids: list[str], connections: int,
                total: int) -> tuple[int, int, int]:
    target = f"{url}/datastore/{ds}/imageSet/{image_set}/getImageFrame"
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    counter = iter(range(total))
    ok = failed = nbytes = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            nonlocal ok, failed, nbytes
            for n in counter:
                body = json.dumps({"imageFrameId": frame_ids[n % len(frame_ids)]})
                headers = {"Authorization": AUTH, "X-Amz-Date": "20250101T000000Z",
                           "Content-Type": "application/json"}
                async with session.post(target, data=body, headers=headers) as resp:
                    data = await resp.read()
                    if resp.status == 200:
                        ok += 1
                        nbytes += len(data)
                    else:
                        failed += 1
        await asyncio.gather(*(worker() for _ in range(connections)))
    return ok, failed, nbytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--frames", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hi_async-bench-") as tmp:
        ds, image_set, frame_ids = seed(Path(tmp), args.frames)
        with LocalStack(mode="process", data_dir=tmp) as stack:
            assert stack.pid is not None
            # Warm up: page cache, frame cache, connection pool.
            asyncio.run(drive(stack.url, ds, image_set, frame_ids, args.connections,
                              args.connections * 2))
            cpu0, t0 = cpu_seconds(stack.pid), time.perf_counter()
            ok, failed, nbytes = asyncio.run(drive(stack.url, ds, image_set, frame_ids,
                                                   args.connections, args.requests))
            wall, cpu = time.perf_counter() - t0, cpu_seconds(stack.pid) - cpu0
    print(json.dumps({
        "benchmark": "emulator_frames", "connections": args.connections,
        "requests": args.requests, "ok": ok, "failed": failed,
        "mean_frame_bytes": round(nbytes / max(ok, 1)), "seconds": round(wall, 3),
        "frames_per_second": round(ok / wall, 1),
        "server_cpu_seconds": round(cpu, 3),
        "server_cpu_ms_per_frame": round(cpu * 1000 / max(ok, 1), 4),
        "cpus": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
