"""``hi_async.ray.read_frames``: a Ray Dataset of verified frames on the two-node local
cluster, against the local stack."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hi_async import Downloader
from hi_async.errors import HiAsyncError
from tests.client.conftest import local_settings
from tests.faults.conftest import faults
from tests.local.helpers import seed_image_set

from .conftest import SECRET, LocalCluster

__all__ = ["faults"]


def _crc(pixels: np.ndarray) -> int:
    le = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False)
    return zlib.crc32(np.ascontiguousarray(le).tobytes()) & 0xFFFFFFFF


async def test_the_rows_equal_a_single_process_download(
        cluster: LocalCluster, endpoint_url: str, aws_env: dict[str, str],
        backend: Any) -> None:
    from hi_async.ray import read_frames

    first = seed_image_set(backend, instances=20, frames=2)
    second = seed_image_set(backend, first.datastore_id, instances=6)
    settings = local_settings(endpoint_url)
    ds = read_frames(first.datastore_id, image_set_ids=[first.image_set_id,
                                                        second.image_set_id],
                     settings=settings, frames_per_block=8)
    rows = list(ds.iter_rows())
    async with Downloader(settings) as dl:
        local = {(f.ref.image_set_id, f.ref.image_frame_id): _crc(f.pixels)
                 async for f in dl.frames(first.datastore_id,
                                          image_set_ids=[first.image_set_id,
                                                         second.image_set_id])}
    assert len(rows) == len(local) == 46
    assert {(r["image_set_id"], r["image_frame_id"]): r["crc32"] for r in rows} == local
    for row in rows:
        pixels = row["pixels"]
        assert pixels.dtype == np.int16 and pixels.shape == (64, 64)  # as stored
        assert _crc(pixels) == row["crc32"]
        assert row["frame_number"] in (1, 2) and row["sop_instance_uid"]
    assert set(ds.columns()) >= {"image_set_id", "image_frame_id", "study_instance_uid",
                                 "series_instance_uid", "sop_instance_uid", "frame_number",
                                 "pixels", "crc32"}


def test_it_is_lazy_and_works_with_map_batches(
        cluster: LocalCluster, endpoint_url: str, aws_env: dict[str, str], backend: Any,
        local_stack: Any) -> None:
    from hi_async.ray import read_frames

    seeded = seed_image_set(backend, instances=12)
    before = local_stack.stats()["requests"].get("GetImageFrame", {})
    ds = read_frames(seeded.datastore_id, image_set_ids=[seeded.image_set_id],
                     settings=local_settings(endpoint_url), frames_per_block=4)
    assert local_stack.stats()["requests"].get("GetImageFrame", {}) == before  # lazy

    def means(batch: dict[str, Any]) -> dict[str, Any]:
        return {"image_frame_id": batch["image_frame_id"],
                "mean": batch["pixels"].reshape(len(batch["pixels"]), -1).mean(axis=1)}

    out = ds.map_batches(means, batch_format="numpy").take_all()
    assert sorted(r["image_frame_id"] for r in out) == sorted(seeded.frame_ids)
    assert all(-1100 < r["mean"] < 0 for r in out)


def test_iter_torch_batches_gives_tensors_of_the_stored_dtype(
        cluster: LocalCluster, endpoint_url: str, aws_env: dict[str, str],
        backend: Any) -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    from hi_async.ray import read_frames

    seeded = seed_image_set(backend, instances=8)
    ds = read_frames(seeded.datastore_id, image_set_ids=[seeded.image_set_id],
                     settings=local_settings(endpoint_url), frames_per_block=4)
    batches = list(ds.select_columns(["pixels", "crc32"]).iter_torch_batches(batch_size=3))
    assert sum(len(b["pixels"]) for b in batches) == 8
    assert all(b["pixels"].dtype == torch.int16 and b["pixels"].shape[1:] == (64, 64)
               for b in batches)


def test_a_frame_that_cannot_be_verified_raises_or_becomes_a_row_with_its_error(
        cluster: LocalCluster, endpoint_url: str, aws_env: dict[str, str], backend: Any,
        faults: Any) -> None:
    from hi_async.ray import read_frames

    seeded = seed_image_set(backend, instances=3)
    settings = local_settings(endpoint_url)
    faults(corrupt_rate=1.0)  # every frame body damaged: no CRC32 ever matches
    with pytest.raises(Exception) as raised:
        read_frames(seeded.datastore_id, image_set_ids=[seeded.image_set_id],
                    settings=settings).take_all()
    # Ray Data stops the Dataset with its own error, which carries the task's: which
    # frame of which image set, and why.
    said = str(raised.value)
    assert "FrameFailed" in said
    assert "CRC32 mismatch" in said or "does not decode" in said
    assert seeded.image_set_id in said and any(f in said for f in seeded.frame_ids)
    rows = read_frames(seeded.datastore_id, image_set_ids=[seeded.image_set_id],
                       settings=settings, on_failure="row").take_all()
    assert sorted(r["image_frame_id"] for r in rows) == sorted(seeded.frame_ids)
    assert all(r["error"] and r["pixels"].size == 0 for r in rows)


@pytest.mark.parametrize("selection", ["image set", "all"])
def test_a_data_store_that_does_not_exist_is_one_clear_error(
        cluster: LocalCluster, endpoint_url: str, aws_env: dict[str, str], backend: Any,
        selection: str) -> None:
    from hi_async.ray import read_frames

    unknown = "0123456789abcdef0123456789abcdef"
    chosen: dict[str, Any] = ({"image_set_ids": [unknown]} if selection == "image set"
                              else {"all_image_sets": True})
    with pytest.raises(HiAsyncError) as raised:
        read_frames(unknown, settings=local_settings(endpoint_url), **chosen)
    assert raised.value.exit_code == 2 and "not found" in str(raised.value)
    assert unknown in str(raised.value) and "check the ID" in str(raised.value)


def test_credentials_are_written_nowhere(cluster: LocalCluster, tmp_path: Path) -> None:
    # Runs after the others of this module: every task above got the secret.
    import ray

    session = Path(ray._private.worker._global_node.get_session_dir_path())
    files = [p for p in session.rglob("*") if p.is_file() and not p.is_symlink()]
    assert files  # the logs of every worker and node are there
    assert [p for p in files if SECRET.encode() in p.read_bytes()] == []
