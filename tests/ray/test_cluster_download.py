"""``download --ray``: shards as Ray tasks on a two-node local cluster, against the local
stack; the driver keeps the one journal and the summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.client.conftest import local_settings
from tests.local.helpers import seed_image_set

from .conftest import LocalCluster


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
