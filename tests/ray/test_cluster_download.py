"""``download --ray``: shards as Ray tasks on a two-node local cluster, against the local
stack; the driver keeps the one journal and the summary."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from hi_async.model import FrameResult
from tests.client.conftest import local_settings
from tests.faults.conftest import faults, frames_served, injected, leftovers
from tests.local.helpers import seed_image_set

from .conftest import LocalCluster

__all__ = ["faults"]  # the fault knobs' fixture, switched off after each test


def _journal(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]


async def test_every_frame_is_verified_once_with_work_on_both_nodes(
        cluster: LocalCluster, endpoint_url: str, aws_env: dict[str, str], backend: Any,
        tmp_path: Path) -> None:
    from hi_async.ray import ClusterOptions, download_async

    seeded = seed_image_set(backend, instances=40, frames=2)
    summary = await download_async(
        seeded.datastore_id, image_set_ids=[seeded.image_set_id], out_dir=tmp_path,
        settings=local_settings(endpoint_url), options=ClusterOptions(shard_frames=8))
    assert (summary.frames, summary.verified, summary.failed) == (80, 80, 0)
    assert set(summary.nodes) == cluster.node_ids() and all(summary.nodes.values())
    assert sum(summary.nodes.values()) == 80
    entries = _journal(tmp_path)
    assert sorted(e["imageFrameId"] for e in entries) == sorted(seeded.frame_ids)
    assert {e["status"] for e in entries} == {"verified"}
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert doc["nodes"] == summary.nodes


class _RemoveANodeAfter:
    """A progress listener that removes ``node`` from the cluster (its processes killed)
    once ``n`` frames are done, in a thread so that the driver's loop goes on."""

    def __init__(self, cluster: LocalCluster, node: Any, n: int) -> None:
        self.cluster, self.node, self.n, self.done = cluster, node, n, 0
        self.remover: threading.Thread | None = None

    def add_total(self, frames: int) -> None:
        pass

    def on_result(self, result: FrameResult) -> None:
        self.done += 1
        if self.done == self.n:
            self.remover = threading.Thread(target=self.cluster.remove_node, args=(self.node,))
            self.remover.start()


async def test_a_node_lost_mid_run_has_its_shards_run_elsewhere_and_each_frame_once(
        cluster: LocalCluster, endpoint_url: str, aws_env: dict[str, str], backend: Any,
        local_stack: Any, faults: Any, tmp_path: Path) -> None:
    from hi_async.ray import ClusterOptions, download_async

    seeded = seed_image_set(backend, instances=60, frames=2)
    third = cluster.add_node()
    faults(latency_ms=20)
    before = frames_served(local_stack)
    progress = _RemoveANodeAfter(cluster, third, 12)
    summary = await download_async(
        seeded.datastore_id, image_set_ids=[seeded.image_set_id], out_dir=tmp_path,
        settings=local_settings(endpoint_url), progress=progress,
        options=ClusterOptions(shard_frames=6, lanes=2))
    assert progress.remover is not None
    progress.remover.join()  # the node's processes are all gone (remove_node checks)
    assert (summary.frames, summary.verified, summary.failed) == (120, 120, 0)
    assert sum(summary.nodes.values()) == 120
    entries = _journal(tmp_path)
    assert len(entries) == 120  # each frame journaled once
    assert sorted(e["imageFrameId"] for e in entries) == sorted(seeded.frame_ids)
    # The lost node's shards were fetched again on the others.
    assert frames_served(local_stack) - before > 120
    assert not leftovers(tmp_path)


async def test_throttling_gives_the_cluster_one_send_rate(
        cluster: LocalCluster, endpoint_url: str, aws_env: dict[str, str], backend: Any,
        local_stack: Any, faults: Any, tmp_path: Path) -> None:
    from hi_async.ray import ClusterOptions, download_async

    seeded = seed_image_set(backend, instances=40, frames=2)
    faults(throttle_rps=20.0)
    before = injected(local_stack).get("throttle", 0)
    summary = await download_async(
        seeded.datastore_id, image_set_ids=[seeded.image_set_id], out_dir=tmp_path,
        settings=local_settings(endpoint_url).replace(backoff_base=0.05, backoff_cap=1.0),
        options=ClusterOptions(shard_frames=4, lanes=4))
    throttled = injected(local_stack).get("throttle", 0) - before
    assert summary.verified == summary.frames == 80
    # Twenty short tasks that each found the rate on their own drew about fifty 429s
    # here (each starts unlimited); sharing one rate, a handful.
    assert 0 < throttled < 25 and summary.retries >= throttled
