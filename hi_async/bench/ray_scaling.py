"""The Ray section of the bench: a cluster download on 1 node vs 2, and the Dataset's rows/s
against ``Downloader.frames``, on the same frames of a local stack.

    python -m hi_async.bench.ray_scaling [--instances 800] [--latency-ms 5]

A local multi-node cluster (``ray.cluster_utils.Cluster``, one CPU per node) on loopback,
against a local stack in its own process. Everything shares this machine's cores: the
emulator, the driver and every node; so the 2-node figure says how the work spreads, not
what two machines would reach (the README's scaling model says that). Prints one JSON
document on its last line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Before Ray is imported: every node on 127.0.0.1, and no usage report sent anywhere.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cluster(nodes: int) -> Any:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1,
                                                            "include_dashboard": False})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level=logging.WARNING, log_to_driver=False)
    return cluster


def _stop(cluster: Any) -> None:
    import ray

    ray.shutdown()
    cluster.shutdown()


def _download(settings: Any, datastore_id: str, image_sets: list[str], out: Path,
              shard_frames: int) -> dict[str, Any]:
    from hi_async.ray import ClusterOptions, download

    t0 = time.perf_counter()
    summary = download(datastore_id, image_set_ids=image_sets, out_dir=out, settings=settings,
                       options=ClusterOptions(shard_frames=shard_frames))
    wall = time.perf_counter() - t0
    return {"frames": summary.frames, "verified": summary.verified,
            "wallSeconds": round(wall, 3),
            "framesPerSecond": round(summary.frames / wall, 1) if wall else None,
            "nodes": len(summary.nodes), "framesByNode": sorted(summary.nodes.values())}


def _dataset(settings: Any, datastore_id: str, image_sets: list[str]) -> dict[str, Any]:
    from hi_async.ray import read_frames

    t0 = time.perf_counter()
    ds = read_frames(datastore_id, image_set_ids=image_sets, settings=settings)
    rows = 0
    for batch in ds.iter_batches(batch_size=64, batch_format="numpy"):
        rows += len(batch["crc32"])
    wall = time.perf_counter() - t0
    return {"rows": rows, "wallSeconds": round(wall, 3),
            "rowsPerSecond": round(rows / wall, 1) if wall else None}


def _frames(settings: Any, datastore_id: str, image_sets: list[str]) -> dict[str, Any]:
    import anyio

    from hi_async import Downloader

    async def main() -> int:
        n = 0
        async with Downloader(settings) as dl:
            async for _ in dl.frames(datastore_id, image_set_ids=image_sets):
                n += 1
        return n

    t0 = time.perf_counter()
    rows = anyio.run(main)
    wall = time.perf_counter() - t0
    return {"rows": rows, "wallSeconds": round(wall, 3),
            "rowsPerSecond": round(rows / wall, 1) if wall else None}


def run(instances: int, latency_ms: float, shard_frames: int) -> dict[str, Any]:
    from hi_async.local.stack import LocalStack
    from hi_async.settings import Settings

    from .study import import_series

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    doc: dict[str, Any] = {"instances": instances, "latencyMs": latency_ms,
                           "shardFrames": shard_frames}
    with tempfile.TemporaryDirectory(prefix="hi_async-ray-bench-") as tmp, \
            LocalStack(mode="process", data_dir=Path(tmp) / "stack",
                       datastore_delay=0.0) as stack:
        _log(f"importing an MR series of {instances} instances (256x256) ...")
        datastore_id, image_sets = import_series(stack.url, "mr", instances, 256, 256,
                                                 name="ray-bench")
        settings = Settings(endpoint_url=stack.url, region="us-east-1", output_format="none",
                            resume=False, workers=1)
        stack.set_faults(latency_ms=latency_ms)
        doc["downloaderFrames"] = _frames(settings, datastore_id, image_sets)
        doc["frames"] = doc["downloaderFrames"]["rows"]
        for nodes in (1, 2):
            _log(f"starting a local Ray cluster of {nodes} node(s) ...")
            cluster = _cluster(nodes)
            try:
                _log(f"download --ray on {nodes} node(s): {doc['frames']} frames")
                doc[f"download{nodes}Node"] = _download(
                    settings, datastore_id, image_sets, Path(tmp) / f"out-{nodes}",
                    shard_frames)
                _log(f"read_frames on {nodes} node(s)")
                doc[f"dataset{nodes}Node"] = _dataset(settings, datastore_id, image_sets)
            finally:
                _stop(cluster)
    one, two = doc["download1Node"], doc["download2Node"]
    if one["framesPerSecond"] and two["framesPerSecond"]:
        doc["downloadSpeedup2v1"] = round(two["framesPerSecond"] / one["framesPerSecond"], 2)
    ds2, local = doc["dataset2Node"], doc["downloaderFrames"]
    if ds2["rowsPerSecond"] and local["rowsPerSecond"]:
        doc["datasetVsDownloaderFrames"] = round(ds2["rowsPerSecond"] / local["rowsPerSecond"],
                                                 2)
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hi_async.bench.ray_scaling",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--instances", type=int, default=800, help="MR instances in all")
    p.add_argument("--latency-ms", type=float, default=5.0)
    p.add_argument("--shard-frames", type=int, default=100)
    args = p.parse_args(argv)
    try:
        import ray  # noqa: F401
    except ImportError:
        print(json.dumps({"skipped": "Ray is not installed (pip install 'hi_async[ray]')"}))
        return 0
    doc = run(args.instances, args.latency_ms, args.shard_frames)
    print(json.dumps(doc))
    return 0 if doc["download2Node"]["verified"] == doc["frames"] else 1


if __name__ == "__main__":
    sys.exit(main())
