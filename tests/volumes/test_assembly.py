"""The volume stage's rules on hand-made image sets: room for volumes in flight, slots
that count only when a writer had them, notes in the report, the buffers removed."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from hi_async.model import FrameRef, FrameResult, FrameStatus, ImageSetRef
from hi_async.settings import Settings
from hi_async.stages.volumes import VolumeAssembly
from hi_async.volumes import volume_path, write_slice

from .docs import axial_stack, document, image

SETTINGS = Settings(volume="npy", decoders=2)


def _image_set(n: int, slices: int = 3, **kw: Any) -> tuple[ImageSetRef, bytes, dict[str, Any]]:
    doc = document(axial_stack([2.0 * k for k in range(slices)]), **kw)
    doc["ImageSetID"] = f"{n:032x}"
    return ImageSetRef("f" * 32, doc["ImageSetID"]), gzip.compress(json.dumps(doc).encode()), doc


def _files(root: Path, pattern: str) -> list[Path]:
    return list(root.rglob(pattern))


def _verified(ref: FrameRef, status: FrameStatus = FrameStatus.VERIFIED) -> FrameResult:
    return FrameResult(ref=ref, status=status)


def _write(assembly: VolumeAssembly, refs: list[FrameRef]) -> None:
    for ref in refs:
        target = assembly.target(ref)
        assert target is not None
        write_slice(target, np.full(target.shape, 7, dtype=target.dtype))


async def test_image_sets_wait_for_room_and_one_alone_always_gets_in(tmp_path: Path) -> None:
    assembly = VolumeAssembly(SETTINGS, tmp_path, in_flight=1)
    (first, first_blob, _), (second, second_blob, _) = _image_set(1), _image_set(2)
    opened: list[str] = []
    second_done = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(assembly.run)
        refs = await assembly.open(first, first_blob)

        async def open_second() -> None:
            opened.append("waiting")
            second_refs = await assembly.open(second, second_blob)
            opened.append("open")
            _write(assembly, second_refs)
            await assembly.on_results([_verified(r) for r in second_refs])
            second_done.set()

        tg.start_soon(open_second)
        await anyio.wait_all_tasks_blocked()
        assert opened == ["waiting"]  # no room while the first volume is in flight
        _write(assembly, refs)
        await assembly.on_results([_verified(r) for r in refs])
        with anyio.fail_after(10):
            await second_done.wait()
        assert opened == ["waiting", "open"]
        await assembly.results_done()
    assert [r["status"] for r in assembly.records()] == ["written", "written"]
    assert not _files(tmp_path, "*.tmp")


async def test_a_verified_frame_whose_slot_no_writer_asked_for_does_not_count(
        tmp_path: Path) -> None:
    assembly = VolumeAssembly(SETTINGS, tmp_path)
    image_set, blob, _ = _image_set(3)
    async with anyio.create_task_group() as tg:
        tg.start_soon(assembly.run)
        refs = await assembly.open(image_set, blob)
        _write(assembly, refs[:2])
        # The third frame was verified somewhere that never wrote it into the volume.
        await assembly.on_results([_verified(r) for r in refs])
        await assembly.results_done()
    (record,) = assembly.records()
    assert record["status"] == "incomplete" and record["path"] is None
    assert "1 of 3 frames did not arrive" in record["note"]
    assert not _files(tmp_path, "*.npy") and not _files(tmp_path, "*.tmp")


async def test_unverifiable_frames_are_kept_with_a_warning(tmp_path: Path) -> None:
    assembly = VolumeAssembly(SETTINGS, tmp_path)
    image_set, blob, _ = _image_set(4)
    async with anyio.create_task_group() as tg:
        tg.start_soon(assembly.run)
        refs = await assembly.open(image_set, blob)
        _write(assembly, refs)
        await assembly.on_results([_verified(refs[0], FrameStatus.UNVERIFIABLE),
                                   *map(_verified, refs[1:])])
        await assembly.results_done()
    (record,) = assembly.records()
    assert record["status"] == "written"
    assert record["warnings"] == ["1 frame(s) could not be verified: the metadata has no "
                                  "checksum for them"]
    sidecar = json.loads((tmp_path / record["sidecar"]).read_text())
    assert sidecar["warnings"] == record["warnings"]


async def test_series_without_geometry_get_a_note_and_every_frame_still_downloads(
        tmp_path: Path) -> None:
    assembly = VolumeAssembly(SETTINGS, tmp_path)
    doc = document([image(None, number=1), image(None, number=2)])
    doc["ImageSetID"] = f"{5:032x}"
    refs = await assembly.open(ImageSetRef("f" * 32, doc["ImageSetID"]),
                               gzip.compress(json.dumps(doc).encode()))
    assert len(refs) == 2 and all(assembly.target(r) is None for r in refs)
    (record,) = assembly.records()
    assert record["status"] == "note" and record["name"] is None
    assert "no geometry" in record["note"]


async def test_an_unfinished_run_removes_its_buffers(tmp_path: Path) -> None:
    assembly = VolumeAssembly(SETTINGS, tmp_path)
    image_set, blob, doc = _image_set(6)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(assembly.run)
            await assembly.open(image_set, blob)
            assert _files(tmp_path, "*.volume.tmp")
            scope.cancel()  # Ctrl-C, or an error elsewhere in the pipeline
    assert not _files(tmp_path, "*.tmp") and assembly.records() == []
    assert not volume_path(tmp_path, _plan_of(doc), "npy").exists()


def _plan_of(doc: dict[str, Any]) -> Any:
    from hi_async.volumes import plan_volumes

    return plan_volumes(doc)[0][0]
