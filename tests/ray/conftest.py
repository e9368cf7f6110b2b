"""A local Ray cluster for the Ray tests: a head and one more node, one CPU each.

Everything stays on the loopback address: with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
Ray takes 127.0.0.1 as every node's address instead of finding the machine's own, and
with ``RAY_USAGE_STATS_ENABLED=0`` it reports nothing anywhere. Both must be set before
Ray is imported, here and in every process the tests start (they inherit them).
"""

from __future__ import annotations

import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
# The tests' driver and the nodes share this machine; its Ray output stays in the logs.
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.client.conftest import set_aws_env

ray = pytest.importorskip("ray", reason="the Ray extra is not installed")

#: A secret distinctive enough that finding it in any file means it was written there.
SECRET = "hiAsyncRaySecret-Zq8Lw3Nv6Tb1Xk"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Credentials in the driver's environment only: the cluster's processes were started
    before, so whatever a task signs with came to it from the driver."""
    return set_aws_env(monkeypatch, "AKIAHIASYNCRAYTEST", SECRET)


class LocalCluster:
    """A ``ray.cluster_utils.Cluster`` this process is connected to as its driver."""

    def __init__(self) -> None:
        from ray.cluster_utils import Cluster

        self.cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "include_dashboard": False,
            "object_store_memory": 100 * 1024 * 1024})
        self.extra: list[Any] = []
        self.add_node()
        ray.init(address=self.cluster.address, logging_level="warning", log_to_driver=False)

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def add_node(self) -> Any:
        node = self.cluster.add_node(num_cpus=1, object_store_memory=100 * 1024 * 1024)
        self.extra.append(node)
        self.cluster.wait_for_nodes()
        return node

    def remove_node(self, node: Any) -> None:
        self.cluster.remove_node(node, allow_graceful=False)
        self.extra.remove(node)

    def node_ids(self) -> set[str]:
        return {n["NodeID"] for n in ray.nodes() if n["Alive"]}

    def shutdown(self) -> None:
        ray.shutdown()
        self.cluster.shutdown()


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    started = LocalCluster()
    try:
        yield started
    finally:
        started.shutdown()


def shard_workers() -> set[int]:
    """PIDs of Ray workers running a shard now (Ray titles a busy worker ``ray::NAME``)."""
    pids = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes()
        except OSError:
            continue
        if argv.startswith((b"ray::hi_async_shard", b"ray::shard_task")):
            pids.add(int(cmdline.parent.name))
    return pids
