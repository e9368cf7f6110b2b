"""Instances in the pipeline, piece by piece: metadata slices, shards cut on instance
boundaries, frames gathered into files, the memory bound, and failures named."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pydicom
import pytest

from hi_async.decodepool import DecodePool
from hi_async.dicom.assembly import (
    InstanceJob,
    failed_instances,
    held_bytes,
    instance_slice,
    jobs_of,
)
from hi_async.dicom.errors import InstanceNotFound
from hi_async.dicom.instance import build_instance
from hi_async.metadata import parse_metadata
from hi_async.model import FrameRef, FrameResult, FrameStatus
from hi_async.settings import Settings
from hi_async.stages.assembler import Assembler
from hi_async.stages.context import FrameWork
from hi_async.workers.instance_dispatch import cut
from tests.client.helpers import crc, encode

from .test_instance import SERIES, SOP, document

STORE, IMAGE_SET = "d" * 32, "a" * 32
SOP2 = SOP + ".2"


def _pixels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4095, (8, 8)).astype(np.uint16)


def two_instances() -> tuple[dict[str, Any], dict[str, bytes]]:
    """A document of two instances, the first of two frames, and the frames as stored."""
    doc = document(NumberOfFrames="2")
    instances = doc["Study"]["Series"][SERIES]["Instances"]
    served: dict[str, bytes] = {}
    frames = []
    for n in range(3):
        frame_id = f"{n + 1:032x}"
        pixels = _pixels(n)
        served[frame_id] = encode(pixels, "image/jph")
        frames.append({"ID": frame_id, "PixelDataChecksumFromBaseToFullResolution": [
            {"Width": 8, "Height": 8, "Checksum": crc(pixels)}]})
    instances[SOP]["ImageFrames"] = frames[:2]
    second = copy.deepcopy(instances[SOP])
    second["DICOM"].update(SOPInstanceUID=SOP2, NumberOfFrames=None)
    second["ImageFrames"] = frames[2:]
    instances[SOP2] = second
    return doc, served


@pytest.fixture
async def pool() -> AsyncIterator[DecodePool]:
    pool = DecodePool("thread", 1)
    try:
        yield pool
    finally:
        await pool.aclose()


def _work(pool: DecodePool, served: dict[str, bytes], out_dir: Path,
          fetched: list[str]) -> FrameWork:
    async def get_frame(ref: FrameRef) -> tuple[bytes, str | None]:
        fetched.append(ref.image_frame_id)
        return served[ref.image_frame_id], "image/jph"

    return FrameWork(settings=Settings(mismatch_refetches=0), get_frame=get_frame,
                     count_retry=lambda _kind: None, pool=pool, out_dir=out_dir, fmt="dcm")


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def _jobs(doc: dict[str, Any]) -> list[InstanceJob]:
    return jobs_of(doc, parse_metadata(doc, STORE, IMAGE_SET))


def test_an_instance_is_rebuilt_from_its_slice_as_from_the_whole_document() -> None:
    doc, _ = two_instances()
    whole = build_instance(doc, SERIES, SOP2).dataset
    alone = build_instance(instance_slice(doc, SERIES, SOP2), SERIES, SOP2).dataset
    assert alone == whole and alone.file_meta == whole.file_meta
    assert list(instance_slice(doc, SERIES, SOP2)["Study"]["Series"][SERIES]["Instances"]) \
        == [SOP2]


def test_a_slice_of_an_instance_the_document_lacks_is_refused_by_name() -> None:
    doc, _ = two_instances()
    with pytest.raises(InstanceNotFound, match=r"has no instance 9\.9"):
        build_instance(instance_slice(doc, SERIES, "9.9"), SERIES, "9.9")


def test_frames_are_grouped_into_instances_in_metadata_order() -> None:
    doc, _ = two_instances()
    jobs = _jobs(doc)
    assert [(job.key[2], [r.frame_number for r in job.refs]) for job in jobs] == [
        (SOP, [1, 2]), (SOP2, [1])]
    assert held_bytes(jobs[0].refs) == 2 * 8 * 8 * 2


async def test_a_shard_is_cut_on_instance_boundaries_only() -> None:
    doc, _ = two_instances()
    one = _jobs(doc)[1]
    sizes = [1, 3, 40, 1, 1, 1]
    jobs = [InstanceJob(one.refs * n, one.metadata) for n in sizes]
    send, receive = anyio.create_memory_object_stream[InstanceJob](len(jobs))
    for job in jobs[1:]:
        send.send_nowait(job)
    send.close()
    shards = [cut(jobs[0], receive, 4)]
    while True:
        try:
            first = receive.receive_nowait()
        except anyio.EndOfStream:
            break
        shards.append(cut(first, receive, 4))
    assert [[len(job.refs) for job in shard] for shard in shards] == [[1, 3], [40], [1, 1, 1]]


async def test_an_instance_is_written_when_its_last_frame_is_in(
        pool: DecodePool, tmp_path: Path) -> None:
    doc, served = two_instances()
    first, _ = _jobs(doc)
    assembler: Assembler[str] = Assembler(_work(pool, served, tmp_path, []), "stored")
    assembler.expect(first.refs, first.metadata)
    assert assembler.held == held_bytes(first.refs)
    assert await assembler.frame(first.refs[1], "second") == []
    assert _files(tmp_path) == []
    done = await assembler.frame(first.refs[0], "first")
    path = tmp_path / IMAGE_SET / SERIES / f"{SOP}.dcm"
    assert [(tag, r.status, r.path, r.ref.frame_number) for tag, r in done] == [
        ("first", FrameStatus.VERIFIED, path, 1), ("second", FrameStatus.VERIFIED, path, 2)]
    written = pydicom.dcmread(path)
    assert int(written.NumberOfFrames) == 2 and written.SOPInstanceUID == SOP
    assert assembler.held == 0 and assembler.open_instances == 0


async def test_another_instance_waits_while_those_open_hold_the_budget(
        pool: DecodePool, tmp_path: Path) -> None:
    doc, served = two_instances()
    first, second = _jobs(doc)
    assembler: Assembler[None] = Assembler(_work(pool, served, tmp_path, []), "native")
    # Nothing open: even an instance over the budget may go (alone).
    with anyio.fail_after(1):
        await assembler.room_for(first.refs, budget=1)
    assembler.expect(first.refs, first.metadata)
    budget = held_bytes(first.refs) + held_bytes(second.refs) - 1
    admitted = anyio.Event()

    async def open_second() -> None:
        await assembler.room_for(second.refs, budget)
        admitted.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(open_second)
        await anyio.wait_all_tasks_blocked()
        assert not admitted.is_set()
        await assembler.frame(first.refs[0], None)
        await anyio.wait_all_tasks_blocked()
        assert not admitted.is_set()  # half an instance is still held
        await assembler.frame(first.refs[1], None)
        with anyio.fail_after(1):
            await admitted.wait()


async def test_a_frame_that_fails_fails_its_instance_and_the_rest_is_not_fetched(
        pool: DecodePool, tmp_path: Path) -> None:
    doc, served = two_instances()
    first, _ = _jobs(doc)
    bad = first.refs[0].image_frame_id
    served[bad] = encode(_pixels(7), "image/jph")  # decodes, to other pixels
    fetched: list[str] = []
    assembler: Assembler[int] = Assembler(_work(pool, served, tmp_path, fetched), "stored")
    assembler.expect(first.refs, first.metadata)
    assert await assembler.frame(first.refs[0], 0) == []
    done = await assembler.frame(first.refs[1], 1)
    assert fetched == [bad]
    results = [r for _, r in done]
    assert {r.status for r in results} == {FrameStatus.FAILED}
    assert results[0].error is not None and results[0].error.startswith(
        "instance not written: this frame failed: CRC32 mismatch")
    assert results[1].error == f"instance not written: frame {bad} of the instance failed"
    assert _files(tmp_path) == []
    [line] = failed_instances(results)
    assert line.startswith(f"instance {SOP} of series {SERIES} in image set {IMAGE_SET} was "
                           f"not written: frame {bad} (number 1) failed: CRC32 mismatch")


async def test_an_instance_that_cannot_be_rebuilt_fails_as_a_whole(
        pool: DecodePool, tmp_path: Path) -> None:
    doc, served = two_instances()
    _, second = _jobs(doc)
    del doc["Study"]["Series"][SERIES]["Instances"][SOP2]["DICOM"]["SOPClassUID"]
    del doc["Study"]["Series"][SERIES]["Instances"][SOP2]["DICOM"]["MediaStorageSOPClassUID"]
    assembler: Assembler[None] = Assembler(_work(pool, served, tmp_path, []), "stored")
    assembler.expect(second.refs, instance_slice(doc, SERIES, SOP2))
    [(_, result)] = await assembler.frame(second.refs[0], None)
    assert result.status is FrameStatus.FAILED
    assert result.error == (f"instance not written: instance {SOP2} has no SOPClassUID, so "
                            "its file cannot say what it is (Media Storage SOP Class UID)")
    [line] = failed_instances([result])
    assert line.endswith(f"was not written: instance {SOP2} has no SOPClassUID, so its file "
                         "cannot say what it is (Media Storage SOP Class UID)")
    assert _files(tmp_path) == []


def test_failed_instances_names_each_instance_once() -> None:
    doc, _ = two_instances()
    refs = [r for job in _jobs(doc) for r in job.refs]
    results = [FrameResult(ref=refs[0], status=FrameStatus.FAILED,
                           error=f"instance not written: frame {refs[1].image_frame_id} of the "
                           "instance failed"),
               FrameResult(ref=refs[1], status=FrameStatus.FAILED,
                           error="instance not written: this frame failed: gone"),
               FrameResult(ref=refs[2], status=FrameStatus.FAILED,
                           error="instance not written: bad attribute")]
    assert failed_instances(results) == [
        f"instance {SOP} of series {SERIES} in image set {IMAGE_SET} was not written: frame "
        f"{refs[1].image_frame_id} (number 2) failed: gone",
        f"instance {SOP2} of series {SERIES} in image set {IMAGE_SET} was not written: "
        "bad attribute"]
