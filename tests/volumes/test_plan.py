"""Planning volumes from hand-made metadata documents: the geometry rules, one per test."""

from __future__ import annotations

import numpy as np
import pytest

from hi_async.errors import MetadataError
from hi_async.volumes.scaling import scaling_for

from .docs import (
    AXIAL,
    IMAGE_SET_ID,
    SERIES,
    axial_stack,
    document,
    ds,
    frame_ids,
    image,
    plan_one,
    plans_and_notes,
    voxel_to_lps,
)


def test_slices_are_ordered_along_the_normal_whatever_the_instance_order() -> None:
    doc = document(axial_stack([6, 0, 3, 9], numbers=[3, 1, 2, 4]))
    plan = plan_one(doc)
    ids = frame_ids(doc)
    assert plan.frame_ids == (ids[1], ids[2], ids[0], ids[3])
    assert [plan.index_of[i] for i in ids] == [(2,), (0,), (1,), (3,)]
    assert plan.locations == (30.0, 33.0, 36.0, 39.0)


def test_axial_affine_maps_voxels_to_ras() -> None:
    plan = plan_one(document(axial_stack([0, 2, 4])))
    # Column spacing 0.25 along +x(L), row spacing 0.5 along +y(P), 2 mm slices along +z(S);
    # RAS negates x and y.
    np.testing.assert_allclose(plan.affine_array(), [[-0.25, 0, 0, -10], [0, -0.5, 0, -20],
                                                     [0, 0, 2, 30], [0, 0, 0, 1]])
    assert plan.spacing == (0.25, 0.5, 2.0)
    assert plan.shape == (3, 4, 3)  # (slices, rows, columns)


def test_spacing_is_measured_between_positions_not_read_from_slice_thickness() -> None:
    plan = plan_one(document(axial_stack([0, 1.5, 3], SliceThickness="5 ",
                                         SpacingBetweenSlices="7 ")))
    assert plan.spacing[2] == pytest.approx(1.5)


def test_positions_descending_with_instance_number_are_stored_ascending() -> None:
    doc = document(axial_stack([0, -2, -4, -6]))
    plan = plan_one(doc)
    ids = frame_ids(doc)
    assert plan.frame_ids == tuple(reversed(ids))
    np.testing.assert_allclose(voxel_to_lps(plan, 0, 0, 0), [10, 20, 24])
    np.testing.assert_allclose(voxel_to_lps(plan, 0, 0, 3), [10, 20, 30])


@pytest.mark.parametrize(("orientation", "normal"), [
    (["0", "1", "0", "0", "0", "-1"], [-1, 0, 0]),  # sagittal
    (["1", "0", "0", "0", "0", "-1"], [0, 1, 0]),  # coronal
])
def test_every_voxel_lands_where_dicom_puts_its_pixel(orientation: list[str],
                                                      normal: list[float]) -> None:
    start = np.array([5.0, -7.0, 11.0])
    stack = [image(tuple(start + k * 3 * np.array(normal)), orientation=orientation,
                   number=k + 1) for k in range(3)]
    plan = plan_one(document(stack))
    x, y = np.array(orientation[:3], float), np.array(orientation[3:], float)
    for i, j, k in [(0, 0, 0), (2, 3, 1), (1, 2, 2)]:
        dicom = start + k * 3 * np.array(normal) + i * 0.25 * x + j * 0.5 * y
        np.testing.assert_allclose(voxel_to_lps(plan, i, j, k), dicom, atol=1e-9)


def test_values_with_pad_spaces_and_backslashes_are_read() -> None:
    doc = document([image(None, ImagePositionPatient="1\\2\\3 ", number=1),
                    image(None, ImagePositionPatient=["1 ", "2", "5.0 "], number=2)])
    plan = plan_one(doc)
    assert plan.positions == ((1.0, 2.0, 3.0), (1.0, 2.0, 5.0))


def test_a_missing_slice_is_warned_and_never_filled_in() -> None:
    plan = plan_one(document(axial_stack([0, 2, 4, 8, 10])))
    assert plan.slice_count == 5
    assert any("missing slice: 1 slice position absent between slices 2 and 3" in w
               for w in plan.warnings), plan.warnings
    assert plan.spacing[2] == pytest.approx(2.0)  # the usual step, not the gap
    assert any("up to 2.00 mm" in w for w in plan.warnings)


def test_uneven_spacing_is_warned() -> None:
    plan = plan_one(document(axial_stack([0, 2, 4, 7, 10, 12])))
    assert any(w.startswith("uneven slice spacing: steps from 2 to 3 mm") for w in plan.warnings)


def test_even_spacing_has_no_warning() -> None:
    assert plan_one(document(axial_stack([0, 1.25, 2.5, 3.75]))).warnings == ()


def test_gantry_tilt_keeps_voxels_in_place_with_a_sheared_affine() -> None:
    # Each slice 2 mm up and 0.5 mm further posterior: the stack leans.
    stack = [image((10, 20 + 0.5 * k, 30 + 2 * k), number=k + 1) for k in range(4)]
    plan = plan_one(document(stack))
    assert any(w.startswith("gantry tilt: slice positions run 14.04° off") for w in plan.warnings)
    for k in range(4):
        np.testing.assert_allclose(voxel_to_lps(plan, 0, 0, k), [10, 20 + 0.5 * k, 30 + 2 * k])


def test_one_slice_takes_its_extent_from_slice_thickness() -> None:
    plan = plan_one(document([image((0, 0, 0))]))
    assert plan.spacing[2] == 5.0
    assert plan.warnings == ("one slice: its extent along the normal is taken as 5 mm "
                             "(from SpacingBetweenSlices or SliceThickness)",)


def test_a_series_without_geometry_gets_a_note_and_no_volume() -> None:
    plans, notes = plans_and_notes(document([image(None, orientation=None), image(None)]))
    assert plans == []
    assert [str(n) for n in notes] == [
        f"series {SERIES}: no geometry (ImagePositionPatient, ImageOrientationPatient and "
        "PixelSpacing are needed to place slices): no volume"]


def test_frames_without_geometry_are_noted_and_left_out() -> None:
    plans, notes = plans_and_notes(document([*axial_stack([0, 1, 2]), image(None, number=9)]))
    assert plans[0].slice_count == 3
    assert "1 of 4 frames have no geometry" in notes[0].message


def test_a_localizer_and_the_axial_stack_are_two_volumes_numbered_in_order() -> None:
    localizer = image((0, -100, 0), orientation=["0", "1", "0", "0", "0", "-1"], number=1,
                      ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"], rows=8)
    doc = document([localizer, *axial_stack([0, 1, 2], numbers=[2, 3, 4])])
    plans, notes = plans_and_notes(doc)
    assert notes == []
    assert [p.name for p in plans] == [f"{SERIES}-1", f"{SERIES}-2"]
    assert [p.slice_count for p in plans] == [1, 3]


def test_stacks_of_different_sizes_are_separate_volumes() -> None:
    doc = document([*axial_stack([0, 1]), *axial_stack([5, 6], numbers=[3, 4], rows=6)])
    plans, _ = plans_and_notes(doc)
    assert [p.shape for p in plans] == [(2, 4, 3), (2, 6, 3)]


def test_temporal_positions_on_one_grid_form_a_4d_volume() -> None:
    stack = [image((10, 20, 30 + 2 * z), number=t * 3 + z + 1,
                   TemporalPositionIdentifier=f"{t + 1} ", TriggerTime=ds(250 * t))
             for t in range(2) for z in range(3)]
    doc = document(stack)
    plan = plan_one(doc)
    ids = frame_ids(doc)
    assert plan.shape == (2, 3, 4, 3)
    assert (plan.fourth_axis, plan.fourth_key, plan.fourth_values) == (
        "time", "TemporalPositionIndex", (1.0, 2.0))
    assert plan.index_of[ids[4]] == (1, 1)
    assert plan.time_step == pytest.approx(0.25)
    assert plan.flat_index(ids[4]) == 4


def test_echoes_on_one_grid_form_a_4d_volume_along_echo() -> None:
    stack = [image((0, 0, z), number=z * 2 + e + 1, EchoNumbers=str(e + 1),
                   EchoTime=ds(10 + 40 * e))
             for z in range(2) for e in range(2)]
    plan = plan_one(document(stack))
    assert (plan.fourth_axis, plan.fourth_key, plan.time_step) == ("echo", "EchoNumbers", None)


def test_temporal_positions_that_do_not_share_a_grid_are_separate_volumes() -> None:
    stack = [image((0, 0, z), number=t * 3 + z + 1, TemporalPositionIdentifier=str(t + 1))
             for t in range(2) for z in range(3 - t)]
    plans, _ = plans_and_notes(document(stack))
    assert [(p.name, p.slice_count, p.fourth_axis) for p in plans] == [
        (f"{SERIES}-1", 3, None), (f"{SERIES}-2", 2, None)]
    assert "does not cover the same slice positions" in plans[1].warnings[0]


def test_repeats_with_nothing_to_tell_them_apart_split_by_instance_order() -> None:
    stack = [image((0, 0, z), number=r * 2 + z + 1, AcquisitionNumber="1")
             for r in range(2) for z in range(2)]
    plan = plan_one(document(stack))
    assert (plan.fourth_axis, plan.fourth_key) == ("repeat", "InstanceNumber")
    assert "told apart by InstanceNumber order" in plan.warnings[0]


def test_enhanced_multiframe_reads_per_frame_and_shared_groups() -> None:
    positions = [(0, 0, 4), (0, 0, 0), (0, 0, 2)]  # frames out of spatial order
    per_frame = [{"PlanePositionSequence": [{"ImagePositionPatient": [ds(v) for v in p]}],
                  "PixelValueTransformationSequence": [{"RescaleSlope": "1", "RescaleIntercept":
                                                        str(-10 * n)}]}
                 for n, p in enumerate(positions)]
    shared = {"PlaneOrientationSequence": [{"ImageOrientationPatient": AXIAL}],
              "PixelMeasuresSequence": [{"PixelSpacing": ["0.7", "0.9"], "SliceThickness": "2"}],
              "PixelValueTransformationSequence": [{"RescaleSlope": "3",
                                                    "RescaleIntercept": "0"}],
              "FrameVOILUTSequence": [{"WindowCenter": ["50", "60"], "WindowWidth": "300"}]}
    inst = image(None, orientation=None, spacing=None, frames=3,
                 SharedFunctionalGroupsSequence=[shared],
                 PerFrameFunctionalGroupsSequence=per_frame)
    doc = document([inst])
    plan = plan_one(doc)
    ids = frame_ids(doc)
    assert plan.frame_ids == (ids[1], ids[2], ids[0])
    assert plan.frame_numbers == (2, 3, 1)
    assert plan.spacing == (0.9, 0.7, 2.0)
    assert plan.intercepts == (-10.0, -20.0, 0.0)  # per frame wins over shared
    assert plan.window == (50.0, 300.0)  # the first of several values
    assert scaling_for(plan).dtype == np.float32
    assert any("differ between slices" in w for w in plan.warnings)


def test_one_exact_rescale_keeps_the_stored_integers() -> None:
    plan = plan_one(document(axial_stack([0, 1], RescaleSlope="0.5 ",
                                         RescaleIntercept="-1024")))
    scaling = scaling_for(plan)
    assert (scaling.dtype, scaling.slope, scaling.intercept) == (np.dtype("<i2"), 0.5, -1024.0)


def test_a_slope_float32_cannot_hold_means_float32_values() -> None:
    plan = plan_one(document(axial_stack([0, 1], RescaleSlope="0.1", RescaleIntercept="0")))
    assert scaling_for(plan).rescaled


def test_stored_dtype_follows_bits_stored_and_pixel_representation() -> None:
    assert plan_one(document(axial_stack([0, 1]))).dtype == "<i2"  # 12 bits, signed
    unsigned8 = plan_one(document(axial_stack([0, 1], BitsAllocated=8, BitsStored=8,
                                              PixelRepresentation=0)))
    assert unsigned8.dtype == "|u1"


def test_colour_series_plan_keeps_the_samples_axis() -> None:
    plan = plan_one(document(axial_stack([0, 1], SamplesPerPixel=3, BitsAllocated=8,
                                         BitsStored=8, PixelRepresentation=0,
                                         PhotometricInterpretation="RGB")))
    assert plan.shape == (2, 4, 3, 3)
    assert plan.slice_shape == (4, 3, 3)


def test_a_series_uid_that_is_no_uid_gets_a_note() -> None:
    plans, notes = plans_and_notes(document(axial_stack([0, 1]), series="../../etc"))
    assert plans == []
    assert "not a valid DICOM UID" in notes[0].message


def test_an_orientation_that_is_no_plane_gets_a_note() -> None:
    plans, notes = plans_and_notes(document(axial_stack([0, 1], orientation=["0"] * 6)))
    assert plans == []
    assert "has a zero vector; no volume for them" in notes[0].message


def test_a_malformed_document_raises_metadata_error() -> None:
    with pytest.raises(MetadataError, match="lacks the 'Series' object"):
        plans_and_notes({"ImageSetID": IMAGE_SET_ID, "Study": {"DICOM": {}}})


def test_series_description_and_image_set_travel_with_the_plan() -> None:
    plan = plan_one(document(axial_stack([0, 1]), SeriesDescription="Chest  "))
    assert (plan.series_description, plan.image_set_id, plan.modality) == (
        "Chest", IMAGE_SET_ID, "CT")


def test_a_pixel_spacing_that_is_not_positive_gets_a_note() -> None:
    plans, notes = plans_and_notes(document(axial_stack([0, 1], spacing=["0", "0.5"])))
    assert plans == []
    assert "PixelSpacing [0.0, 0.5] is not positive" in notes[0].message


def test_the_time_step_falls_back_to_acquisition_times_when_trigger_times_are_equal() -> None:
    stack = [image((0, 0, 2 * z), number=t * 2 + z + 1, TemporalPositionIdentifier=str(t + 1),
                   TriggerTime="0", AcquisitionTime=f"0930{5 * t + z:02d}")
             for t in range(3) for z in range(2)]
    assert plan_one(document(stack)).time_step == pytest.approx(5.0)


def test_trigger_times_that_differ_per_slice_still_form_one_4d_volume() -> None:
    stack = [image((0, 0, 2 * z), number=t * 3 + z + 1, TriggerTime=ds(100 * t + 7 * z))
             for t in range(2) for z in range(3)]
    plan = plan_one(document(stack))
    assert (plan.fourth_axis, plan.fourth_key, plan.shape[:2]) == ("time", "TriggerTime", (2, 3))
    assert plan.fourth_values == (7.0, 107.0)
    assert "TriggerTime differs between the slices of one time point" in plan.warnings[0]
