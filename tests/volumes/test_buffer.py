"""Assembling volumes: slots filled in any order, in memory or in a shared memory map."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from hi_async.volumes import (
    VolumeBuffer,
    VolumePlan,
    buffer_path,
    finish_volume,
    preview_path,
    volume_path,
    write_slice,
)

from .docs import axial_stack, document, frame_ids, image, plan_one


def _plan_3d(slices: int = 4) -> tuple[VolumePlan, list[str]]:
    doc = document(axial_stack([2.0 * k for k in range(slices)]))
    return plan_one(doc), frame_ids(doc)


def _plan_4d() -> tuple[VolumePlan, list[str]]:
    stack = [image((0, 0, 2 * z), number=t * 3 + z + 1, TemporalPositionIdentifier=str(t + 1))
             for t in range(2) for z in range(3)]
    doc = document(stack)
    return plan_one(doc), frame_ids(doc)


def _frame(value: int) -> np.ndarray:
    return np.arange(12, dtype=np.int16).reshape(4, 3) + value * 100


def test_frames_in_any_order_land_in_their_slots() -> None:
    plan, ids = _plan_4d()
    with VolumeBuffer(plan) as buffer:
        for n in (5, 0, 3, 1, 4, 2):
            buffer.put(ids[n], _frame(n))
        assert buffer.complete and not buffer.memory_mapped
        for n, frame_id in enumerate(ids):
            t, z = plan.index_of[frame_id]
            assert np.array_equal(buffer.array[t, z], _frame(n))


def test_unfilled_slots_are_reported_as_missing() -> None:
    plan, ids = _plan_3d()
    with VolumeBuffer(plan) as buffer:
        buffer.put(ids[0], _frame(0))
        buffer.put(ids[2], _frame(2))
        assert not buffer.complete
        assert buffer.missing() == [ids[1], ids[3]]
        note = buffer.missing_note()
        assert note is not None
        assert f"volume {plan.name} not written: 2 of 4 frames did not arrive " \
               f"({ids[1]}, {ids[3]}); rerun the download to fetch them" == note.message


def test_a_complete_buffer_has_no_missing_note() -> None:
    plan, ids = _plan_3d(1)
    with VolumeBuffer(plan) as buffer:
        buffer.put(ids[0], _frame(0))
        assert buffer.missing_note() is None


def test_a_frame_of_another_volume_is_refused_by_name() -> None:
    plan, _ = _plan_3d()
    with VolumeBuffer(plan) as buffer, pytest.raises(KeyError, match="is not part of volume"):
        buffer.put("f" * 32, _frame(0))


def test_a_frame_of_the_wrong_shape_or_dtype_is_refused() -> None:
    plan, ids = _plan_3d()
    with VolumeBuffer(plan) as buffer:
        with pytest.raises(ValueError, match=r"frame shape \(3, 4\) is not the volume's"):
            buffer.put(ids[0], np.zeros((3, 4), np.int16))
        with pytest.raises(ValueError, match="frame dtype float64 does not fit"):
            buffer.put(ids[0], np.zeros((4, 3)))
        buffer.put(ids[0], np.ones((4, 3), np.uint8))  # widening is lossless: accepted
        assert buffer.missing() == ids[1:]


def test_large_volumes_are_memory_mapped_under_the_output_folder(tmp_path: Path) -> None:
    plan, ids = _plan_3d()
    scratch = buffer_path(tmp_path, plan)
    buffer = VolumeBuffer(plan, scratch=scratch, memmap_threshold=plan.nbytes - 1)
    assert buffer.memory_mapped and isinstance(buffer.array, np.memmap)
    assert scratch.name.endswith(".volume.tmp") and scratch.stat().st_size == plan.nbytes
    for n, frame_id in enumerate(ids):
        buffer.put(frame_id, _frame(n))
    assert np.array_equal(buffer.array[3], _frame(3))
    buffer.close()
    assert not scratch.exists()


def test_small_volumes_stay_in_memory_even_with_a_scratch_file(tmp_path: Path) -> None:
    plan, _ = _plan_3d()
    scratch = buffer_path(tmp_path, plan)
    with VolumeBuffer(plan, scratch=scratch, memmap_threshold=plan.nbytes) as buffer:
        assert not buffer.memory_mapped and not scratch.exists()
        with pytest.raises(ValueError, match="assembled in memory"):
            buffer.targets()


def test_other_processes_fill_a_memory_mapped_buffer(tmp_path: Path) -> None:
    plan, ids = _plan_4d()
    with VolumeBuffer(plan, scratch=buffer_path(tmp_path, plan), memmap_threshold=0) as buffer:
        targets = buffer.targets()
        assert targets[ids[4]].offset == plan.flat_index(ids[4]) * 4 * 3 * 2
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(2, mp_context=context) as pool:
            done = [pool.submit(write_slice, targets[fid], _frame(n))
                    for n, fid in enumerate(ids)]
            for future, frame_id in zip(done, ids, strict=True):
                future.result()
                buffer.mark_filled(frame_id)
        assert buffer.complete
        for n, frame_id in enumerate(ids):
            t, z = plan.index_of[frame_id]
            assert np.array_equal(buffer.array[t, z], _frame(n))


def test_write_slice_checks_the_frame_against_its_target(tmp_path: Path) -> None:
    plan, ids = _plan_3d()
    with VolumeBuffer(plan, scratch=buffer_path(tmp_path, plan), memmap_threshold=0) as buffer:
        target = buffer.targets()[ids[0]]
        with pytest.raises(ValueError, match="frame shape"):
            write_slice(target, np.zeros((2, 2), np.int16))


def test_finishing_a_complete_volume_writes_its_files_and_removes_the_buffer(
        tmp_path: Path) -> None:
    plan, ids = _plan_3d()
    buffer = VolumeBuffer(plan, scratch=buffer_path(tmp_path, plan), memmap_threshold=0)
    for n, frame_id in enumerate(ids):
        buffer.put(frame_id, _frame(n))
    result = finish_volume(buffer, tmp_path, fmt="nifti", preview=True)
    assert result.written and result.note is None
    assert result.volume == volume_path(tmp_path, plan, "nifti") and result.volume.exists()
    assert result.sidecar is not None and result.sidecar.exists()
    assert result.preview == preview_path(tmp_path, plan) and result.preview.exists()
    assert not buffer_path(tmp_path, plan).exists()


def test_finishing_an_incomplete_volume_writes_nothing_and_says_why(tmp_path: Path) -> None:
    plan, ids = _plan_3d()
    buffer = VolumeBuffer(plan, scratch=buffer_path(tmp_path, plan), memmap_threshold=0)
    for n, frame_id in enumerate(ids[:-1]):
        buffer.put(frame_id, _frame(n))
    result = finish_volume(buffer, tmp_path, fmt="npy", preview=True)
    assert not result.written and result.note is not None
    assert "1 of 4 frames did not arrive" in result.note.message
    assert (result.volume, result.sidecar, result.preview) == (None, None, None)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def _resident_file_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    pytest.skip("no RssFile in /proc/self/status on this system")


def test_a_memory_mapped_volume_is_filled_and_written_without_becoming_resident(
        tmp_path: Path) -> None:
    doc = document(axial_stack([1.0 * k for k in range(256)], rows=256, columns=256))
    plan = plan_one(doc)  # 32 MiB of int16
    buffer = VolumeBuffer(plan, scratch=buffer_path(tmp_path, plan), memmap_threshold=0)
    before = _resident_file_kib()
    frame = np.arange(256 * 256, dtype=np.int16).reshape(256, 256)
    for frame_id in plan.frame_ids:
        buffer.put(frame_id, frame)
    result = finish_volume(buffer, tmp_path, fmt="npy", preview=True)
    assert result.written
    # Frames went in by pwrite and the writers released each slice's pages after use:
    # far less than the volume's 32 MiB ever became resident.
    assert _resident_file_kib() - before < 8 * 1024
    assert np.array_equal(np.load(result.volume, mmap_mode="r")[:, :, 255], frame.T)
