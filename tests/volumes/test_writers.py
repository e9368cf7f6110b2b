"""NIfTI, NumPy and sidecar writers on hand-made plans: values, headers, paths, atomicity."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from hi_async.errors import ServiceError
from hi_async.volumes import (
    VolumePlan,
    buffer_path,
    preview_path,
    sidecar_path,
    volume_path,
    write_nifti,
    write_npy,
)

from .docs import IMAGE_SET_ID, SERIES, axial_stack, document, image, plan_one


def _filled(plan: VolumePlan, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    info = np.iinfo(np.dtype(plan.dtype)) if np.dtype(plan.dtype).kind in "iu" else None
    low, high = (max(info.min, -2000), min(info.max, 4000)) if info else (0, 1)
    return rng.integers(low, high, size=plan.shape).astype(plan.dtype)


def test_paths_follow_the_download_layout(tmp_path: Path) -> None:
    plan = plan_one(document(axial_stack([0, 1])))
    base = tmp_path / IMAGE_SET_ID
    assert volume_path(tmp_path, plan, "nifti") == base / "volumes" / f"{SERIES}.nii.gz"
    assert volume_path(tmp_path, plan, "npy") == base / "volumes" / f"{SERIES}.npy"
    assert sidecar_path(base / "volumes" / f"{SERIES}.nii.gz") == base / "volumes" / \
        f"{SERIES}.json"
    assert preview_path(tmp_path, plan) == base / "previews" / f"{SERIES}.png"
    assert buffer_path(tmp_path, plan).name == f"{SERIES}.volume.tmp"


def test_an_image_set_id_that_could_leave_the_folder_is_refused(tmp_path: Path) -> None:
    doc = document(axial_stack([0, 1]))
    doc["ImageSetID"] = "../../outside"
    plan = plan_one(doc)
    with pytest.raises(ServiceError, match="not valid"):
        volume_path(tmp_path, plan, "nifti")


def test_per_slice_rescale_is_written_as_float32_real_values(tmp_path: Path) -> None:
    stack = axial_stack([0, 1, 2])
    for n, inst in enumerate(stack):
        inst["DICOM"].update(RescaleSlope=str(n + 1), RescaleIntercept=str(-100 * n))
    plan = plan_one(document(stack))
    array = _filled(plan)
    image_ = nib.load(write_nifti(plan, array, tmp_path / "v.nii.gz"))
    assert image_.get_data_dtype() == np.float32
    expected = np.stack([array[k] * (k + 1) - 100.0 * k for k in range(3)])
    np.testing.assert_array_equal(image_.get_fdata(), expected.T)


def test_a_4d_volume_has_its_time_step_in_pixdim4(tmp_path: Path) -> None:
    stack = [image((0, 0, 2 * z), number=t * 2 + z + 1, TemporalPositionIdentifier=str(t + 1),
                   AcquisitionTime=f"1200{3 * t:02d}.5")
             for t in range(3) for z in range(2)]
    plan = plan_one(document(stack))
    image_ = nib.load(write_nifti(plan, _filled(plan), tmp_path / "v.nii.gz"))
    assert image_.shape == (3, 4, 2, 3)
    assert image_.header.get_zooms()[3] == pytest.approx(3.0)
    assert image_.header.get_xyzt_units() == ("mm", "sec")
    side = json.loads((tmp_path / "v.json").read_text())
    assert side["fourthAxis"] == {"kind": "time", "attribute": "TemporalPositionIndex",
                                  "values": [1.0, 2.0, 3.0], "stepSeconds": 3.0}
    assert side["axes"] == ["column (i)", "row (j)", "slice (k)", "time"]
    assert side["slices"][3]["index"] == [1, 1]


def test_a_sheared_affine_is_exact_in_the_sform(tmp_path: Path) -> None:
    plan = plan_one(document([image((0, 0.5 * k, 2 * k), number=k + 1) for k in range(3)]))
    image_ = nib.load(write_nifti(plan, _filled(plan), tmp_path / "v.nii.gz"))
    np.testing.assert_allclose(image_.get_sform(), plan.affine_array(), atol=1e-6)
    assert int(image_.header["qform_code"]) == 1 and int(image_.header["sform_code"]) == 1


def test_npy_holds_nifti_voxel_order_and_the_sidecar_its_geometry(tmp_path: Path) -> None:
    plan = plan_one(document(axial_stack([0, 3, 6], RescaleSlope="1",
                                         RescaleIntercept="-1024")))
    array = _filled(plan)
    npy, side = write_npy(plan, array, volume_path(tmp_path, plan, "npy"))
    loaded = np.load(npy)
    assert loaded.shape == (3, 4, 3)  # (columns, rows, slices)
    np.testing.assert_array_equal(loaded, array.T)
    meta = json.loads(side.read_text())
    assert meta["rescale"]["slope"] == 1.0 and meta["rescale"]["intercept"] == -1024.0
    assert meta["rescale"]["applied"] is False
    assert meta["spacing"] == [0.25, 0.5, 3.0]
    assert meta["shape"] == [3, 4, 3] and meta["dimensions"] == 3
    assert meta["fourthAxis"] is None
    assert len(meta["slices"]) == 3 and meta["slices"][0]["index"] == [0]


def test_colour_npy_keeps_samples_last(tmp_path: Path) -> None:
    plan = plan_one(document(axial_stack([0, 1], SamplesPerPixel=3, BitsAllocated=8,
                                         BitsStored=8, PixelRepresentation=0,
                                         PhotometricInterpretation="RGB")))
    array = _filled(plan)
    npy, _ = write_npy(plan, array, tmp_path / "c.npy")
    loaded = np.load(npy)
    assert loaded.shape == (3, 4, 2, 3)
    np.testing.assert_array_equal(loaded, np.transpose(array, (2, 1, 0, 3)))


def test_writes_leave_no_temporary_file_and_refuse_a_wrong_array(tmp_path: Path) -> None:
    plan = plan_one(document(axial_stack([0, 1])))
    target = volume_path(tmp_path, plan, "nifti")
    with pytest.raises(ValueError, match="is not the plan's"):
        write_nifti(plan, np.zeros((3, 4, 3), np.int16), target)
    assert not target.parent.exists() or list(target.parent.iterdir()) == []
    write_nifti(plan, _filled(plan), target)
    write_npy(plan, _filled(plan), volume_path(tmp_path, plan, "npy"))
    names = sorted(p.name for p in target.parent.iterdir())
    assert names == [f"{SERIES}.json", f"{SERIES}.nii.gz", f"{SERIES}.npy"]


def test_an_interrupted_write_removes_its_temporary_file(tmp_path: Path) -> None:
    plan = plan_one(document(axial_stack([0, 1])))

    class Exploding(np.ndarray):
        """Fails while the slices are being written (after the header)."""

        def __getitem__(self, key: object) -> np.ndarray:
            raise KeyboardInterrupt

    array = _filled(plan).view(Exploding)
    with pytest.raises(KeyboardInterrupt):
        write_nifti(plan, array, tmp_path / "v.nii.gz")
    assert list(tmp_path.iterdir()) == []
