"""Volumes from served metadata and downloaded frames match dcm2niix on the same files.

Each case went through a real import (DICOM P10 → HTJ2K in the local stack), its frames
through ``Downloader.frames`` (decoded, CRC-verified). The volume planned from the served
metadata and written by ``write_nifti`` must hold the same real-world values as the
volume dcm2niix makes of the original files, voxel for voxel in a common orientation
(``nibabel.as_closest_canonical`` on both), with affines within 0.01 mm.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from numpy.lib import recfunctions
from PIL import Image

from hi_async.volumes import (
    VolumeBuffer,
    VolumePlan,
    plan_volumes,
    preview_path,
    sidecar_path,
    volume_path,
    write_nifti,
    write_npy,
    write_preview,
)

from .cases import CASES
from .conftest import Imported, Study

AFFINE_MM = 0.01


def assemble(imported: Imported) -> tuple[VolumePlan, np.ndarray]:
    plans, notes = plan_volumes(imported.doc)
    assert notes == []
    (plan,) = plans
    buffer = VolumeBuffer(plan)
    for frame_id in plan.frame_ids:
        buffer.put(frame_id, imported.pixels[frame_id])
    assert buffer.complete
    return plan, buffer.array


def canonical(image: nib.Nifti1Image) -> tuple[np.ndarray, np.ndarray]:
    """(RAS-closest affine, real-world values as float64) of a NIfTI image."""
    image = nib.as_closest_canonical(image)
    raw = np.asanyarray(image.dataobj)
    if raw.dtype.names:  # RGB24: compare the three samples
        return image.affine, recfunctions.structured_to_unstructured(raw).astype(np.float64)
    return image.affine, image.get_fdata()


def reference(imported: Imported) -> nib.Nifti1Image:
    """dcm2niix's volume of the case (not its equalised or tilt-corrected extra copies)."""
    (path,) = [p for p in imported.dcm2niix if p.name == f"{imported.case.name}.nii"]
    return nib.load(path)


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_nifti_matches_dcm2niix(volume_study: Study, tmp_path: Path, name: str) -> None:
    imported = volume_study.cases[name]
    plan, array = assemble(imported)
    path = write_nifti(plan, array, volume_path(tmp_path, plan, "nifti"))

    ours_affine, ours = canonical(nib.load(path))
    theirs_affine, theirs = canonical(reference(imported))
    assert ours.shape == theirs.shape
    voxel_difference = float(np.max(np.abs(ours - theirs)))
    affine_difference = float(np.max(np.abs(ours_affine - theirs_affine)))
    print(f"{name}: max voxel difference {voxel_difference:.3g}, "
          f"max affine difference {affine_difference:.3g} mm")
    # Integers with an exact rescale agree exactly; float32 values within float32's
    # rounding of values near 1000 (dcm2niix keeps integers and a float32 slope).
    tolerance = 0.0 if imported.case.values == "stored" else 1e-3
    assert voxel_difference <= tolerance
    assert affine_difference <= AFFINE_MM


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_plan_of_served_metadata(volume_study: Study, name: str) -> None:
    imported = volume_study.cases[name]
    case = imported.case
    plan, _ = assemble(imported)
    assert plan.name == case.series_uid
    assert plan.image_set_id == imported.image_set_id
    assert plan.slice_count == case.slices
    assert plan.fourth_axis == case.fourth_axis
    for expected in case.warnings:
        assert any(expected in w for w in plan.warnings), plan.warnings
    if not case.warnings:
        assert plan.warnings == ()
    assert sorted(plan.index_of) == sorted(imported.pixels)


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_nifti_header_and_values_kept(volume_study: Study, tmp_path: Path, name: str) -> None:
    imported = volume_study.cases[name]
    plan, array = assemble(imported)
    image = nib.load(write_nifti(plan, array, tmp_path / "v.nii.gz"))
    header = image.header
    assert int(header["sform_code"]) == 1 and int(header["qform_code"]) == 1
    np.testing.assert_allclose(image.get_qform(), image.get_sform(), atol=1e-4)
    np.testing.assert_allclose(image.affine, plan.affine_array(), atol=1e-4)
    if imported.case.values == "float32":
        assert header.get_data_dtype() == np.float32
    elif plan.samples_per_pixel == 1:
        assert header.get_data_dtype() == np.dtype(plan.dtype)
        # nibabel moves scl_slope/scl_inter from the header into the array proxy.
        assert (image.dataobj.slope, image.dataobj.inter) == (plan.slopes[0],
                                                              plan.intercepts[0])
        # The stored integers themselves, in NIfTI's (column, row, slice[, t]) order.
        stored = np.asarray(image.dataobj.get_unscaled())
        expected = array.T
        assert np.array_equal(stored, expected)
    if plan.is_4d:
        assert header.get_zooms()[3] == pytest.approx(2.0)  # 2 s between positions


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_npy_and_sidecar_round_trip(volume_study: Study, tmp_path: Path, name: str) -> None:
    imported = volume_study.cases[name]
    plan, array = assemble(imported)
    nifti = nib.load(write_nifti(plan, array, volume_path(tmp_path, plan, "nifti"),
                                 with_sidecar=False))
    npy, side = write_npy(plan, array, volume_path(tmp_path, plan, "npy"))
    assert side == sidecar_path(npy)
    loaded = np.load(npy)
    meta = json.loads(side.read_text())
    assert list(loaded.shape) == meta["shape"]
    assert meta["dimensions"] == (4 if plan.is_4d else 3)
    np.testing.assert_allclose(meta["affine"], nifti.affine, atol=1e-4)
    assert [s["sopInstanceUid"] for s in meta["slices"]] == list(plan.sop_instance_uids)
    assert meta["warnings"] == list(plan.warnings)
    # The same real-world values as the NIfTI file, once the sidecar's rescale is applied.
    rescale = meta["rescale"]
    values = loaded.astype(np.float64) * rescale["slope"] + rescale["intercept"]
    if plan.samples_per_pixel > 1:
        expected = recfunctions.structured_to_unstructured(np.asanyarray(nifti.dataobj))
    else:
        expected = nifti.get_fdata()
    np.testing.assert_allclose(values, expected, atol=1e-3)


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_preview_reads_back(volume_study: Study, tmp_path: Path, name: str) -> None:
    imported = volume_study.cases[name]
    plan, array = assemble(imported)
    path = write_preview(plan, array, preview_path(tmp_path, plan))
    assert path == tmp_path / plan.image_set_id / "previews" / f"{plan.series_instance_uid}.png"
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG" and image.mode == "RGB"
        width, height = image.size
        pixels = np.asarray(image, dtype=np.float64)
    assert 320 <= width <= 1000 and 100 <= height <= 1000
    # Not blank: the picture below the caption varies.
    assert pixels[30:].std() > 10
