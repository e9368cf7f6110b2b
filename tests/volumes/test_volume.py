"""Volume: the library's view of a finished buffer, equal to the .npy file a download
writes, whether it lives in memory or in a map of a file that is already gone."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from hi_async.volumes import VolumeBuffer, VolumePlan, buffer_path, write_npy
from hi_async.volumes.volume import Volume, voxel_shape

from .docs import axial_stack, document, image, plan_one


def _filled(plan: VolumePlan, tmp_path: Path, *, mapped: bool) -> VolumeBuffer:
    buffer = VolumeBuffer(plan, scratch=buffer_path(tmp_path, plan),
                          memmap_threshold=0 if mapped else 1 << 40)
    rng = np.random.default_rng(7)
    for frame_id in plan.frame_ids:
        buffer.put(frame_id, rng.integers(0, 200, plan.slice_shape).astype(plan.dtype))
    return buffer


def _grey() -> VolumePlan:
    return plan_one(document(axial_stack([0, 2, 4])))


def _rescaled() -> VolumePlan:
    stack = axial_stack([0, 2, 4])
    for n, inst in enumerate(stack):
        inst["DICOM"].update(RescaleSlope=str(n + 1), RescaleIntercept=str(-100 * n))
    return plan_one(document(stack))


def _rgb() -> VolumePlan:
    return plan_one(document(axial_stack([0, 1], SamplesPerPixel=3, BitsAllocated=8,
                                         BitsStored=8, HighBit=7, PixelRepresentation=0,
                                         PhotometricInterpretation="RGB")))


def _4d() -> VolumePlan:
    return plan_one(document([image((0, 0, 2 * z), number=t * 3 + z + 1,
                                    TemporalPositionIdentifier=str(t + 1))
                              for t in range(2) for z in range(3)]))


@pytest.mark.parametrize("make", [_grey, _rescaled, _rgb, _4d])
@pytest.mark.parametrize("mapped", [False, True], ids=["in-memory", "mapped"])
def test_the_array_is_what_the_npy_file_holds(tmp_path: Path, make: object,
                                              mapped: bool) -> None:
    assert callable(make)
    plan = make()
    buffer = _filled(plan, tmp_path, mapped=mapped)
    npy, _ = write_npy(plan, buffer.array, tmp_path / "v.npy")
    volume = Volume.from_buffer(buffer, memmap_threshold=0)
    buffer.close()  # the buffer file is gone; the volume keeps its own map
    assert not list(tmp_path.rglob("*.tmp"))
    expected = np.load(npy)
    assert volume.array.dtype == expected.dtype and volume.shape == expected.shape
    assert np.array_equal(volume.array, expected)
    assert list(volume.shape) == voxel_shape(plan)
    assert volume.memory_mapped is mapped


def test_to_nifti_writes_the_downloads_file(tmp_path: Path) -> None:
    plan = _rescaled()
    buffer = _filled(plan, tmp_path, mapped=True)
    volume = Volume.from_buffer(buffer, memmap_threshold=0)
    buffer.close()
    image_ = nib.load(volume.to_nifti(tmp_path / "v.nii.gz"))
    assert image_.get_data_dtype() == np.float32 and (volume.slope, volume.intercept) == (1, 0)
    np.testing.assert_array_equal(image_.get_fdata(), volume.array)
    np.testing.assert_allclose(image_.affine, volume.affine)
    assert (tmp_path / "v.json").is_file()
    assert "Volume('1.2.3.4.5'" in repr(volume)


def test_an_incomplete_buffer_gives_no_volume(tmp_path: Path) -> None:
    plan = _grey()
    buffer = VolumeBuffer(plan)
    buffer.put(plan.frame_ids[0], np.zeros(plan.slice_shape, dtype=plan.dtype))
    with pytest.raises(ValueError, match="2 frames are missing"):
        Volume.from_buffer(buffer)
