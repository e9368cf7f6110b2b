"""An instance with a frame that fails verification is not written, and is named.

Frames are corrupted the way a network would: by the local stack's fault knob
(``corrupt_rate``, bits flipped in the answer), or, to single out one instance, by
flipping a bit of the real bytes the stack served.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hi_async.aws.healthimaging import HealthImaging
from hi_async.aws.session import AwsSession
from hi_async.dicom import InstanceFailed, export_image_set, export_instance
from hi_async.dicom.export import instances_of
from hi_async.metadata import gunzip_bounded, parse_metadata

from .conftest import RoundTrip, stack_settings

DECODE_OR_CRC = r"CRC32 mismatch|does not decode|JPEG 2000 header"


@pytest.fixture
async def hi(endpoint_url: str) -> AsyncIterator[HealthImaging]:
    async with AwsSession(stack_settings(endpoint_url)) as aws, \
            HealthImaging(aws, data_plane=True) as client:
        yield client


async def _document(hi: HealthImaging, store: str, image_set: str) -> dict[str, Any]:
    return dict(json.loads(gunzip_bounded(await hi.metadata_blob(store, image_set))))


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


async def test_corrupted_frames_fail_every_instance_by_name_and_nothing_is_written(
        round_trip: RoundTrip, local_stack: Any, hi: HealthImaging, tmp_path: Path) -> None:
    assert round_trip.ct_image_set is not None
    store, image_set = round_trip.ct_image_set
    corrupted_before = local_stack.stats()["faults"].get("corrupt", 0)
    local_stack.set_faults(corrupt_rate=1.0)
    try:
        summary = await export_image_set(hi, store, image_set, tmp_path, "stored")
    finally:
        local_stack.set_faults(corrupt_rate=0.0)
    assert summary.written == ()
    assert len(summary.failed) == 12
    for failure in summary.failed:
        assert failure.image_set_id == image_set and failure.frame_id
        assert re.search(DECODE_OR_CRC, failure.reason)
        assert f"instance {failure.sop_uid}" in str(failure)
        assert f"(frame {failure.frame_id})" in str(failure)
    assert _files(tmp_path) == []
    refetches = hi.aws.settings.mismatch_refetches
    corrupted = local_stack.stats()["faults"]["corrupt"] - corrupted_before
    assert corrupted == 12 * (1 + refetches)  # each frame fetched again before giving up


async def test_only_the_instance_with_the_bad_frame_is_left_out(
        round_trip: RoundTrip, hi: HealthImaging, tmp_path: Path) -> None:
    assert round_trip.ct_image_set is not None
    store, image_set = round_trip.ct_image_set
    doc = await _document(hi, store, image_set)
    groups = instances_of(parse_metadata(doc, store, image_set))
    victim = groups[3][0]

    async def fetch(frame_id: str) -> tuple[bytes, str | None]:
        data, content_type = await hi.get_frame(store, image_set, frame_id)
        if frame_id == victim.image_frame_id:
            damaged = bytearray(data)
            damaged[len(damaged) * 3 // 4] ^= 0x10  # in the code-blocks, past the headers
            data = bytes(damaged)
        return data, content_type

    written, failed = [], []
    for group in groups:
        try:
            written.append(await export_instance(doc, group, fetch, tmp_path, "native",
                                                 refetches=1))
        except InstanceFailed as exc:
            failed.append(exc)
    assert [(f.sop_uid, f.frame_id) for f in failed] == \
        [(victim.sop_instance_uid, victim.image_frame_id)]
    assert len(written) == len(groups) - 1
    names = sorted(p.name for p in _files(tmp_path))
    assert names == sorted(f"{g[0].sop_instance_uid}.dcm" for g in groups if g[0] != victim)


async def test_a_frame_without_a_checksum_cannot_be_verified_so_its_instance_fails(
        round_trip: RoundTrip, hi: HealthImaging, tmp_path: Path) -> None:
    assert round_trip.ct_image_set is not None
    store, image_set = round_trip.ct_image_set
    doc = await _document(hi, store, image_set)
    series = next(iter(doc["Study"]["Series"].values()))
    sop, instance = next(iter(series["Instances"].items()))
    instance["ImageFrames"][0]["PixelDataChecksumFromBaseToFullResolution"] = []
    group = [r for r in parse_metadata(doc, store, image_set) if r.sop_instance_uid == sop]

    async def fetch(frame_id: str) -> tuple[bytes, str | None]:
        return await hi.get_frame(store, image_set, frame_id)

    with pytest.raises(InstanceFailed, match="no checksum for this frame") as caught:
        await export_instance(doc, group, fetch, tmp_path)
    assert caught.value.sop_uid == sop
    assert _files(tmp_path) == []


async def test_export_instance_takes_the_frames_of_exactly_one_instance(
        tmp_path: Path) -> None:
    async def fetch(frame_id: str) -> tuple[bytes, str | None]:
        raise AssertionError("nothing is fetched")

    with pytest.raises(ValueError, match="exactly one instance"):
        await export_instance({}, [], fetch, tmp_path)
