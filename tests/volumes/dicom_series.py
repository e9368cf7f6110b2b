"""Real DICOM P10 series for the volume tests, written with pydicom.

Each case is a folder of files the local stack imports and dcm2niix converts: the same
bytes go to both. Images are small and not square (rows != columns, unequal pixel
spacing) so that a swapped axis cannot pass unnoticed, and every voxel's value depends
on its row, column and slice so that a flipped or reordered axis shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    CTImageStorage,
    EnhancedMRImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)

STUDY_UID = generate_uid(entropy_srcs=["hi_async volume tests study"])
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


def oblique(degrees: float) -> tuple[float, ...]:
    """An axial plane turned ``degrees`` about the patient's left-right axis, then a bit
    about the head-foot axis: no direction cosine is 0 or 1."""
    a, b = np.radians(degrees), np.radians(degrees / 3)
    rot_x = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rot_z = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    rot = rot_z @ rot_x
    return tuple(float(v) for v in (*rot[:, 0], *rot[:, 1]))


def uid(name: str) -> str:
    return generate_uid(entropy_srcs=["hi_async volume tests", name])


def phantom(rows: int, cols: int, slice_number: int, *, dtype: str, seed: int,
            base: int = 0) -> np.ndarray:
    """Values that differ along every axis: a ramp over rows and columns, a step per slice
    and a little noise (fixed seed)."""
    rng = np.random.default_rng(seed * 1000 + slice_number)
    r, c = np.mgrid[0:rows, 0:cols]
    values = base + 3 * r + 7 * c + 41 * slice_number + rng.integers(0, 5, size=(rows, cols))
    return values.astype(dtype)


@dataclass
class Slice:
    """One frame of a series: where it is and what it holds."""

    position: Sequence[float]
    pixels: np.ndarray
    instance_number: int
    attrs: dict[str, Any] = field(default_factory=dict)


def _file_meta(sop_class: str, sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def _common(ds: Dataset, series_uid: str, sop_class: str, sop_uid: str, modality: str,
            description: str, series_number: int) -> None:
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = uid("frame of reference")
    ds.PatientName = "Volume^Test"
    ds.PatientID = "VOL001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = "20240102"
    ds.StudyTime = ds.SeriesTime = "101500"
    ds.StudyID = "1"
    ds.AccessionNumber = "VOLACC"
    ds.Modality = modality
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.Manufacturer = "Synthetic"
    ds.PositionReferenceIndicator = ""
    ds.PatientPosition = "HFS"


def _pixels(ds: Dataset, pixels: np.ndarray) -> None:
    """Pixel module attributes and data for a (frames, rows, cols[, 3]) array."""
    samples = 3 if pixels.shape[-1] == 3 and pixels.ndim in (3, 4) and pixels.dtype == np.uint8 \
        else 1
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples == 3:
        ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = pixels.shape[-3:-1] if samples == 3 else pixels.shape[-2:]
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    ds.PixelData = np.ascontiguousarray(pixels.astype(pixels.dtype.newbyteorder("<"))).tobytes()


def write_classic(folder: Path, series_uid: str, slices: list[Slice], *,
                  orientation: Sequence[float], pixel_spacing: Sequence[float],
                  modality: str = "CT", description: str = "", series_number: int = 1,
                  slope: float | str | None = None, intercept: float | str | None = None,
                  thickness: float = 2.0, window: tuple[float, float] | None = None,
                  sop_class: str | None = None) -> list[Path]:
    """One file per slice (CT Image / MR Image / Secondary Capture storage)."""
    folder.mkdir(parents=True, exist_ok=True)
    sop_class = sop_class or (CTImageStorage if modality == "CT" else MRImageStorage)
    paths = []
    for s in slices:
        sop_uid = uid(f"{series_uid} {s.instance_number}")
        ds = Dataset()
        ds.file_meta = _file_meta(sop_class, sop_uid)
        _common(ds, series_uid, sop_class, sop_uid, modality, description, series_number)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = s.instance_number
        ds.AcquisitionNumber = 1
        ds.ImagePositionPatient = [f"{v:.6g}" for v in s.position]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in orientation]
        ds.PixelSpacing = [f"{v:g}" for v in pixel_spacing]
        ds.SliceThickness = thickness
        if modality == "MR":
            ds.EchoTime = 10
            ds.RepetitionTime = 500
            ds.MagneticFieldStrength = 3
            ds.ScanningSequence = "SE"
            ds.SequenceVariant = "NONE"
        if slope is not None:
            ds.RescaleSlope = slope
            ds.RescaleIntercept = intercept if intercept is not None else 0
            ds.RescaleType = "HU" if modality == "CT" else "US"
        if window is not None:
            ds.WindowCenter, ds.WindowWidth = window
        for key, value in s.attrs.items():
            setattr(ds, key, value)
        _pixels(ds, s.pixels[None])
        path = folder / f"{s.instance_number:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_enhanced_mr(folder: Path, series_uid: str, slices: list[Slice], *,
                      orientation: Sequence[float], pixel_spacing: Sequence[float],
                      description: str = "", series_number: int = 1,
                      thickness: float = 2.0) -> Path:
    """One Enhanced MR Image Storage instance holding every slice as a frame, geometry
    in the functional groups (orientation and spacing shared, position per frame)."""
    folder.mkdir(parents=True, exist_ok=True)
    sop_uid = uid(f"{series_uid} enhanced")
    ds = Dataset()
    ds.file_meta = _file_meta(EnhancedMRImageStorage, sop_uid)
    _common(ds, series_uid, EnhancedMRImageStorage, sop_uid, "MR", description, series_number)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.InstanceNumber = 1
    ds.ContentTime = "101500"
    ds.AcquisitionDateTime = "20240102101500"
    ds.NumberOfFrames = len(slices)
    ds.AcquisitionContrast = "T1"
    ds.VolumetricProperties = "VOLUME"
    ds.MagneticFieldStrength = 3

    dim_org = uid(f"{series_uid} dimension organization")
    ds.DimensionOrganizationSequence = DicomSequence([Dataset()])
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = dim_org
    index_items = []
    for pointer, group in ((0x00209056, 0x00209111), (0x00209057, 0x00209111)):
        entry = Dataset()
        entry.DimensionOrganizationUID = dim_org
        entry.DimensionIndexPointer = pointer  # StackID, then InStackPositionNumber
        entry.FunctionalGroupPointer = group  # FrameContentSequence
        index_items.append(entry)
    ds.DimensionIndexSequence = DicomSequence(index_items)

    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [f"{v:g}" for v in pixel_spacing]
    measures.SliceThickness = thickness
    shared.PixelMeasuresSequence = DicomSequence([measures])
    plane = Dataset()
    plane.ImageOrientationPatient = [f"{v:.8f}" for v in orientation]
    shared.PlaneOrientationSequence = DicomSequence([plane])
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = 1, 0, "US"
    shared.PixelValueTransformationSequence = DicomSequence([transform])
    echo = Dataset()
    echo.EffectiveEchoTime = 10
    shared.MREchoSequence = DicomSequence([echo])
    frame_type = Dataset()
    frame_type.FrameType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    shared.MRImageFrameTypeSequence = DicomSequence([frame_type])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])

    per_frame = []
    # Stack positions follow the slices' place along the normal, whatever their frame order.
    normal = np.cross(np.asarray(orientation[:3]), np.asarray(orientation[3:]))
    rank = {i: r for r, i in enumerate(sorted(range(len(slices)),
                                              key=lambda i: float(np.dot(slices[i].position,
                                                                         normal))))}
    for number, s in enumerate(slices):
        item = Dataset()
        content = Dataset()
        content.StackID = "1"
        content.InStackPositionNumber = rank[number] + 1
        content.DimensionIndexValues = [1, rank[number] + 1]
        content.FrameAcquisitionNumber = 1
        item.FrameContentSequence = DicomSequence([content])
        position = Dataset()
        position.ImagePositionPatient = [f"{v:.6g}" for v in s.position]
        item.PlanePositionSequence = DicomSequence([position])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    _pixels(ds, np.stack([s.pixels for s in slices]))
    path = folder / "enhanced.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def line_positions(start: Sequence[float], orientation: Sequence[float],
                   distances: Sequence[float]) -> list[tuple[float, ...]]:
    """Positions at ``distances`` (mm) along the normal of ``orientation`` from ``start``."""
    normal = np.cross(np.asarray(orientation[:3]), np.asarray(orientation[3:]))
    return [tuple(float(v) for v in np.asarray(start) + d * normal) for d in distances]


SECONDARY_CAPTURE = SecondaryCaptureImageStorage
