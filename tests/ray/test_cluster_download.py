"""``download --ray``: shards as Ray tasks on a two-node local cluster, against the local
stack; the driver keeps the one journal and the summary."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hi_async.errors import OutputError
from hi_async.model import FrameResult
from tests.client.conftest import local_settings
from tests.faults.conftest import faults, frames_served, injected, leftovers
from tests.local.helpers import seed_image_set
from tests.page_cache import cached_pages, drops_clean_pages

from .conftest import LocalCluster, shard_workers

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
    if drops_clean_pages(tmp_path):  # tmpfs keeps its pages: they are the files
        assert sum(cached_pages(tmp_path / e["path"])[0] for e in entries) == 0


class _RemoveANodeAfter:
    """A progress listener that removes ``node`` from the cluster (its processes killed)
    once ``n`` frames are done and the node is running a shard, in a thread so that the
    driver's loop goes on."""

    def __init__(self, cluster: LocalCluster, node: Any, n: int) -> None:
        self.cluster, self.node, self.n, self.done = cluster, node, n, 0
        self.raylet = node.all_processes["raylet"][0].process.pid
        self.remover: threading.Thread | None = None
        self.busy: set[int] = set()

    def add_total(self, frames: int) -> None:
        pass

    def on_result(self, result: FrameResult) -> None:
        self.done += 1
        if self.done < self.n or self.remover is not None:
            return
        self.busy = {pid for pid in shard_workers() if _parent(pid) == self.raylet}
        if self.busy:
            self.remover = threading.Thread(target=self.cluster.remove_node, args=(self.node,))
            self.remover.start()


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


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
    assert progress.remover is not None, "the third node never ran a shard"
    progress.remover.join()  # the node's processes are all gone (remove_node checks)
    assert progress.busy  # it was running a shard when it went
    assert (summary.frames, summary.verified, summary.failed) == (120, 120, 0)
    assert sum(summary.nodes.values()) == 120
    entries = _journal(tmp_path)
    assert len(entries) == 120  # each frame journaled once
    assert sorted(e["imageFrameId"] for e in entries) == sorted(seeded.frame_ids)
    # Every frame was fetched at least once more than it was journaled: the lost
    # attempt's requests (if it had sent any) came on top.
    assert frames_served(local_stack) - before >= 120
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


def _start_blind_node(cluster: LocalCluster, hidden: Path) -> subprocess.Popen[bytes]:
    """A third node in a mount namespace of its own, where ``hidden`` is an empty tmpfs:
    a node that does not see the output folder the driver sees. It stops when its stdin
    closes."""
    node = [sys.executable, str(Path(__file__).with_name("blind_node.py")), cluster.address]
    script = f"mount -t tmpfs none {shlex.quote(str(hidden))} && exec {shlex.join(node)}"
    return subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _hold(seconds: float) -> None:
    """A task that keeps its node's CPU busy."""
    time.sleep(seconds)


def _blind_node_id(ray: Any) -> str | None:
    for node in ray.nodes():
        if node["Alive"] and node["Resources"].get("blind"):
            return str(node["NodeID"])
    return None


def test_a_node_that_cannot_see_the_output_folder_stops_the_run(
        cluster: LocalCluster, endpoint_url: str, aws_env: dict[str, str], backend: Any,
        tmp_path: Path) -> None:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from hi_async.ray import ClusterOptions, download

    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("no mount namespaces here (unshare -m)")
    seeded = seed_image_set(backend, instances=6)
    out = tmp_path / "out"
    out.mkdir()
    node = _start_blind_node(cluster, out)
    sleepers: list[Any] = []
    try:
        deadline = time.monotonic() + 60
        while (blind := _blind_node_id(ray)) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert blind is not None, "the third node did not join"
        # The other nodes' CPUs are taken, so the shards can only run on the blind one.
        hold = ray.remote(_hold)
        for other in cluster.node_ids() - {blind}:
            sleepers.append(hold.options(num_cpus=1, scheduling_strategy=(
                NodeAffinitySchedulingStrategy(other, soft=False))).remote(120))
        with pytest.raises(OutputError) as raised:
            download(seeded.datastore_id, image_set_ids=[seeded.image_set_id], out_dir=out,
                     settings=local_settings(endpoint_url),
                     options=ClusterOptions(shard_frames=2))
        said = str(raised.value)
        assert f"Ray node {blind}" in said and f"cannot see the output folder {out}" in said
        assert "every node mounts at the same path" in said
        assert raised.value.exit_code == 2
        assert not list(out.glob("*/*.jph"))  # no frame written where the driver looks
    finally:
        for sleeper in sleepers:
            ray.cancel(sleeper, force=True)
        assert node.stdin is not None
        node.stdin.close()
        try:
            node.wait(timeout=60)
        finally:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()
