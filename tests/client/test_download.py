"""The pipeline end to end on the local stack, over HTTP with real clients."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hi_async import Downloader, FrameFailed, ImageSetRef, NotFound
from hi_async.settings import Settings
from tests.local.helpers import Seeded

from .helpers import crc


def _frames_served(local_stack: Any) -> int:
    return sum(local_stack.stats()["requests"].get("GetImageFrame", {}).values())


def _index(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]


def _glob(root: Path, pattern: str) -> list[Path]:
    return list(root.glob(pattern))


def _subdirs(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if p.is_dir()}


def _originals(sets: list[Seeded]) -> dict[str, bytes]:
    return {fid: f.data for s in sets for fid, f in zip(s.frame_ids, s.frames, strict=True)}


async def test_every_frame_of_several_image_sets_is_verified(
        settings: Settings, seeded_sets: list[Seeded], tmp_path: Path) -> None:
    ds = seeded_sets[0].datastore_id
    async with Downloader(settings) as dl:
        summary = await dl.download(ds, image_set_ids=[s.image_set_id for s in seeded_sets],
                                    out_dir=tmp_path)
    total = sum(len(s.frame_ids) for s in seeded_sets)
    assert (summary.frames, summary.verified, summary.failed) == (total, total, 0)
    originals = _originals(seeded_sets)
    entries = _index(tmp_path)
    assert len(entries) == total and {e["status"] for e in entries} == {"verified"}
    for entry in entries:
        assert (tmp_path / entry["path"]).read_bytes() == originals[entry["imageFrameId"]]
        assert entry["actualCrc32"] == entry["expectedCrc32"]
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert doc["frames"] == total and doc["verified"] == total and doc["bytes"] > 0


@pytest.mark.parametrize("fmt", ["npy", "raw"])
async def test_decoded_formats_read_back_to_the_served_pixels(
        settings: Settings, seeded_sets: list[Seeded], tmp_path: Path, fmt: str) -> None:
    sets = seeded_sets[:1]
    async with Downloader(settings.replace(output_format=fmt, pool="process")) as dl:
        summary = await dl.download(sets[0].datastore_id, image_set_ids=[sets[0].image_set_id],
                                    out_dir=tmp_path)
    assert summary.verified == summary.frames == 5
    for entry in _index(tmp_path):
        path = tmp_path / entry["path"]
        pixels = np.load(path) if fmt == "npy" else np.fromfile(path, "<i2").reshape(64, 64)
        assert pixels.dtype == np.int16 and pixels.shape == (64, 64)
        assert crc(pixels) == entry["expectedCrc32"]


async def test_a_corrupted_frame_is_refetched_then_reported(
        settings: Settings, seeded_sets: list[Seeded], tmp_path: Path, faults: Any) -> None:
    faults(corrupt_rate=1.0)
    one = seeded_sets[1]
    async with Downloader(settings.replace(mismatch_refetches=2)) as dl:
        summary = await dl.download(one.datastore_id, image_set_ids=[one.image_set_id],
                                    out_dir=tmp_path)
    assert summary.failed == summary.frames == 4 and not summary.ok
    assert summary.retries == 4 * 2  # fetched again exactly twice each, then reported
    for entry in _index(tmp_path):
        assert entry["status"] == "failed" and entry["path"] is None and entry["error"]
    assert not _glob(tmp_path, "*/*.jph") and not _glob(tmp_path, "*/*.tmp")


async def test_transient_faults_are_retried_until_every_frame_is_verified(
        settings: Settings, seeded_sets: list[Seeded], tmp_path: Path, faults: Any) -> None:
    faults(error_rate=0.2, drop_rate=0.05, truncate_rate=0.1, fault_seed=7)
    ds = seeded_sets[0].datastore_id
    async with Downloader(settings) as dl:
        summary = await dl.download(ds, image_set_ids=[s.image_set_id for s in seeded_sets],
                                    out_dir=tmp_path)
    assert summary.verified == summary.frames == 15
    assert summary.retries > 0
    assert json.loads((tmp_path / "summary.json").read_text())["retries"] == summary.retries


async def test_a_server_that_drips_a_frame_is_cut_off_and_asked_again(
        settings: Settings, seeded_sets: list[Seeded], tmp_path: Path, faults: Any,
        local_stack: Any) -> None:
    # The stack drips 30 % of the frames at 100 bytes/s: a byte every 10 ms never trips
    # the read timeout, only the minimum rate does.
    faults(drip_rate=0.3, fault_seed=11)
    ds = seeded_sets[0].datastore_id
    quick = settings.replace(read_timeout=0.5, min_rate=50_000.0)
    async with Downloader(quick) as dl:
        summary = await dl.download(ds, image_set_ids=[s.image_set_id for s in seeded_sets],
                                    out_dir=tmp_path)
    dripped = local_stack.stats()["faults"].get("drip", 0)
    assert dripped > 0 and summary.retries >= dripped
    assert summary.verified == summary.frames == 15


async def test_resume_after_an_interruption_downloads_only_what_is_missing(
        settings: Settings, seeded_sets: list[Seeded], tmp_path: Path,
        local_stack: Any) -> None:
    ds = seeded_sets[0].datastore_id
    ids = [s.image_set_id for s in seeded_sets]
    async with Downloader(settings) as dl:
        await dl.download(ds, image_set_ids=ids, out_dir=tmp_path)
    # A crash: the last two lines never made it, one line is torn, a temp file is left.
    lines = (tmp_path / "index.jsonl").read_text().splitlines(keepends=True)
    lost = [json.loads(line) for line in lines[-2:]]
    (tmp_path / "index.jsonl").write_text("".join(lines[:-2]) + lines[-2][:40])
    leftover = tmp_path / lost[0]["path"]
    leftover.rename(leftover.with_name(leftover.name + ".tmp"))
    before = _frames_served(local_stack)
    async with Downloader(settings) as dl:
        summary = await dl.download(ds, image_set_ids=ids, out_dir=tmp_path)
    assert _frames_served(local_stack) - before == 2
    assert (summary.resumed, summary.verified, summary.frames) == (13, 15, 15)
    assert not _glob(tmp_path, "*/*.tmp")
    before = _frames_served(local_stack)
    async with Downloader(settings) as dl:
        summary = await dl.download(ds, image_set_ids=ids, out_dir=tmp_path)
    assert _frames_served(local_stack) == before and summary.resumed == 15
    async with Downloader(settings.replace(resume=False)) as dl:
        summary = await dl.download(ds, image_set_ids=ids, out_dir=tmp_path)
    assert _frames_served(local_stack) - before == 15 and summary.resumed == 0


async def test_a_file_changed_after_it_was_verified_is_fetched_again_with_a_warning(
        settings: Settings, seeded_sets: list[Seeded], tmp_path: Path,
        local_stack: Any) -> None:
    one = seeded_sets[0]
    async with Downloader(settings) as dl:
        await dl.download(one.datastore_id, image_set_ids=[one.image_set_id], out_dir=tmp_path)
    entries = _index(tmp_path)
    flipped = tmp_path / entries[0]["path"]
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size, one bit off
    flipped.write_bytes(bytes(data))
    before = _frames_served(local_stack)
    async with Downloader(settings) as dl:
        summary = await dl.download(one.datastore_id, image_set_ids=[one.image_set_id],
                                    out_dir=tmp_path)
    assert _frames_served(local_stack) - before == 1
    assert (summary.resumed, summary.verified) == (len(entries) - 1, len(entries))
    assert any("journaled as verified" in w for w in summary.warnings)
    assert flipped.read_bytes() == _originals([one])[entries[0]["imageFrameId"]]


async def test_verify_existing_decodes_the_files_a_rerun_would_skip(
        settings: Settings, seeded_sets: list[Seeded], tmp_path: Path,
        local_stack: Any) -> None:
    one = seeded_sets[0]
    npy = settings.replace(output_format="npy")
    async with Downloader(npy) as dl:
        await dl.download(one.datastore_id, image_set_ids=[one.image_set_id], out_dir=tmp_path)
    before = _frames_served(local_stack)
    async with Downloader(npy.replace(verify_existing=True)) as dl:
        summary = await dl.download(one.datastore_id, image_set_ids=[one.image_set_id],
                                    out_dir=tmp_path)
    assert _frames_served(local_stack) == before
    assert summary.resumed == summary.frames == len(one.frame_ids) and not summary.warnings


async def test_frames_yields_verified_pixels_as_they_arrive(
        settings: Settings, seeded_sets: list[Seeded]) -> None:
    ds = seeded_sets[0].datastore_id
    originals = _originals(seeded_sets)
    seen = {}
    async with Downloader(settings.replace(pool="process")) as dl:
        async for frame in dl.frames(ds, image_set_ids=[s.image_set_id for s in seeded_sets]):
            seen[frame.ref.image_frame_id] = frame
    assert set(seen) == set(originals)
    for frame in seen.values():
        assert frame.status == "verified" and frame.path is None
        assert crc(frame.pixels) == frame.ref.expected_crc32


async def test_frames_with_paths_and_an_early_break(
        settings: Settings, seeded_sets: list[Seeded], tmp_path: Path) -> None:
    one = seeded_sets[0]
    async with Downloader(settings) as dl:
        got = []
        async for frame in dl.frames(one.datastore_id, image_set_ids=[one.image_set_id],
                                     want="path", out_dir=tmp_path):
            assert frame.path is not None and frame.path.is_file() and frame.pixels is None
            got.append(frame)
            if len(got) == 2:
                break
        # The downloader is still usable after a consumer left early.
        summary = await dl.download(one.datastore_id, image_set_ids=[one.image_set_id],
                                    out_dir=tmp_path / "again")
    assert summary.verified == 5


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_frames_raises_frame_failed_for_a_bad_frame(
        settings: Settings, seeded_sets: list[Seeded], faults: Any) -> None:
    faults(corrupt_rate=1.0)
    one = seeded_sets[1]
    async with Downloader(settings) as dl:
        with pytest.raises(FrameFailed):
            async for _ in dl.frames(one.datastore_id, image_set_ids=[one.image_set_id]):
                pass


async def test_run_feeds_image_sets_in_while_the_pipeline_runs(
        settings: Settings, seeded_sets: list[Seeded], tmp_path: Path) -> None:
    async def studies():  # type: ignore[no-untyped-def]
        for label, s in zip(["a", "b", "a"], seeded_sets, strict=True):
            yield ImageSetRef(s.datastore_id, s.image_set_id, label)

    async with Downloader(settings) as dl:
        summary = await dl.run(studies(), out_dir=tmp_path)
    assert summary.verified == 15
    assert summary.by_label["a"].verified == 11 and summary.by_label["b"].verified == 4
    assert json.loads((tmp_path / "summary.json").read_text())["byLabel"]["b"]["frames"] == 4


async def test_all_image_sets_of_a_data_store(
        settings: Settings, seeded_sets: list[Seeded], tmp_path: Path) -> None:
    async with Downloader(settings) as dl:
        summary = await dl.download(seeded_sets[0].datastore_id, all_image_sets=True,
                                    out_dir=tmp_path)
    assert summary.verified == 15
    assert _subdirs(tmp_path) == {
        s.image_set_id for s in seeded_sets}


async def test_an_unknown_image_set_is_not_found(settings: Settings, seeded_sets: list[Seeded],
                                                 tmp_path: Path) -> None:
    async with Downloader(settings) as dl:
        with pytest.raises(NotFound, match="region"):
            await dl.download(seeded_sets[0].datastore_id, image_set_ids=["0" * 32],
                              out_dir=tmp_path)
