"""Deterministic synthetic CT and MR series as real DICOM P10 files.

They stand in for the public IDC series the workflow starts from, so every byte must
be the same on every run and every machine with the same library versions: UIDs come
from ``uuid5`` of the folder name (``2.25.<int>``), noise from a numpy Generator seeded
the same way, and no attribute holds the current time.

The pixels are phantoms that compress like anatomy (HTJ2K lossless ratio 2-4): ellipses
of tissue densities whose size changes smoothly along the series, a smooth bias field,
sharp edges at organ boundaries and mild Gaussian noise. CT is 512x512 int16 stored
values with rescale intercept -1024 (HU = stored - 1024); MR is uint16 with 12 bits
stored.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

_NAMESPACE = uuid.UUID("6f1c2a4e-8d0b-4c55-9a77-3e2b1d0c9f10")
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
_IMPLEMENTATION_UID = "2.25." + str(uuid.uuid5(_NAMESPACE, "implementation").int)


@dataclass(frozen=True, slots=True)
class SeriesSpec:
    """What one synthetic series is: where it lives, what it shows, how big it is."""

    folder: str
    anatomy: str  # chest | pelvis | head | breast
    instances: int
    rows: int
    columns: int

    @property
    def modality(self) -> str:
        return "CT" if self.anatomy in ("chest", "pelvis") else "MR"


#: The four series of AWS's example, under the IDC folder names and instance counts.
PUBLIC_SERIES: dict[str, SeriesSpec] = {
    "ct-chest": SeriesSpec("00029d25-fb18-4d42-aaa5-a0897d1ac8f7", "chest", 2, 512, 512),
    "ct-pelvis": SeriesSpec("00025d30-ef8f-4135-a35a-d83eff264fc1", "pelvis", 57, 512, 512),
    "mri-head": SeriesSpec("0002d261-8a5d-4e63-8e2e-0cbfac87b904", "head", 192, 256, 256),
    "mri-breast": SeriesSpec("0002dd07-0b7f-4a68-a655-44461ca34096", "breast", 92, 512, 512),
}


def uid(*parts: str) -> str:
    """A stable DICOM UID under the 2.25 (UUID) root."""
    return "2.25." + str(uuid.uuid5(_NAMESPACE, "/".join(parts)).int)


def instance_name(folder: str, index: int) -> str:
    """The file name of instance ``index`` (0-based): ``<instance-uuid>.dcm``."""
    return f"{uuid.uuid5(_NAMESPACE, f'{folder}/file/{index}')}.dcm"


def generate_series(spec: SeriesSpec) -> Iterator[tuple[str, bytes]]:
    """(file name, P10 bytes) for every instance of the series, in slice order."""
    grid = _Grid(spec.rows, spec.columns)
    for index in range(spec.instances):
        pixels = _phantom(spec, index, grid)
        yield instance_name(spec.folder, index), _p10(spec, index, pixels)


def custom_spec(modality: str, instances: int, rows: int | None, columns: int | None,
                folder: str | None = None) -> SeriesSpec:
    """A series for ``local seed --synthetic ct|mr``: a chest CT or a head MR."""
    anatomy = {"ct": "chest", "mr": "head"}[modality.lower()]
    default = 512 if anatomy == "chest" else 256
    name = folder or f"synthetic-{modality.lower()}-{instances}-{rows or default}"
    return SeriesSpec(name, anatomy, instances, rows or default, columns or rows or default)


class _Grid:
    """Normalised coordinates (-1..1) of a frame, computed once per series."""

    def __init__(self, rows: int, columns: int) -> None:
        self.y, self.x = np.mgrid[-1 : 1 : rows * 1j, -1 : 1 : columns * 1j].astype(np.float32)


def _ellipse(g: _Grid, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    return ((g.x - cx) / rx) ** 2 + ((g.y - cy) / ry) ** 2 <= 1.0


def _phantom(spec: SeriesSpec, index: int, g: _Grid) -> np.ndarray:
    rng = np.random.default_rng(uuid.uuid5(_NAMESPACE, f"{spec.folder}/noise/{index}").int)
    t = index / max(1, spec.instances - 1)  # 0..1 along the series
    swell = float(np.sin(np.pi * (0.15 + 0.7 * t)))  # anatomy grows, then shrinks
    if spec.modality == "CT":
        return _ct(spec.anatomy, g, t, swell, rng)
    return _mr(spec.anatomy, g, t, swell, rng)


def _ct(anatomy: str, g: _Grid, t: float, swell: float, rng: np.random.Generator) -> np.ndarray:
    hu = np.full(g.x.shape, -1000.0, dtype=np.float32)
    body = _ellipse(g, 0, 0.05, 0.78 + 0.05 * swell, 0.58 + 0.04 * swell)
    inner = _ellipse(g, 0, 0.05, 0.72 + 0.05 * swell, 0.52 + 0.04 * swell)
    hu[body] = -100.0  # subcutaneous fat
    hu[inner] = 40.0 + 25.0 * g.y[inner] + 15.0 * g.x[inner] ** 2  # soft tissue, smooth
    if anatomy == "chest":
        for side in (-1, 1):
            lung = _ellipse(g, side * 0.33, 0.0, 0.24 + 0.05 * swell, 0.36 + 0.04 * swell)
            hu[lung] = -850.0 + 60.0 * g.y[lung]
        hu[_ellipse(g, 0.05, -0.05, 0.14, 0.16)] = 45.0  # heart
    else:
        hu[_ellipse(g, 0.0, -0.1, 0.18, 0.12 + 0.03 * swell)] = 15.0  # bladder
        for side in (-1, 1):
            hu[_ellipse(g, side * (0.42 - 0.08 * t), 0.1, 0.11, 0.11)] = 900.0  # femoral head
            hu[_ellipse(g, side * (0.42 - 0.08 * t), 0.1, 0.07, 0.07)] = 300.0  # marrow
    hu[_ellipse(g, 0.0, 0.42, 0.09, 0.08)] = 1100.0  # vertebral body
    hu[_ellipse(g, 0.0, 0.42, 0.05, 0.045)] = 250.0
    noise = np.asarray(rng.normal(0.0, 1.0, hu.shape), dtype=np.float32)
    hu += np.where(hu > -950, 14.0, 4.0) * noise
    return np.clip(np.rint(hu + 1024.0), -1024, 3071).astype(np.int16)


def _mr(anatomy: str, g: _Grid, t: float, swell: float, rng: np.random.Generator) -> np.ndarray:
    img = np.zeros(g.x.shape, dtype=np.float32)
    if anatomy == "head":
        skull = _ellipse(g, 0, 0, 0.70 * swell + 0.1, 0.82 * swell + 0.1)
        brain = _ellipse(g, 0, 0, 0.62 * swell + 0.08, 0.74 * swell + 0.08)
        img[skull] = 900.0  # scalp fat is bright on T1
        img[brain] = 650.0  # grey matter
        img[_ellipse(g, 0, 0, 0.45 * swell + 0.05, 0.55 * swell + 0.05)] = 820.0  # white
        for side in (-1, 1):
            img[_ellipse(g, side * 0.08, -0.05, 0.05, 0.18 * swell + 0.01)] = 220.0  # CSF
    else:
        for side in (-1, 1):
            breast = _ellipse(g, side * 0.45, 0.25, 0.38 * swell + 0.05, 0.5 * swell + 0.05)
            img[breast] = 1100.0  # fat
            img[breast & _ellipse(g, side * 0.45, 0.3, 0.2 * swell + 0.02, 0.25)] = 500.0
        img[g.y < -0.35 + 0.05 * t] = 600.0  # chest wall
        img[_ellipse(g, 0.0, -0.7, 0.3, 0.25)] = 300.0  # heart
    bias = 0.8 + 0.3 * np.exp(-((g.x + 0.3) ** 2 + (g.y - 0.2) ** 2) * 1.5)  # coil field
    img *= bias
    img += (np.asarray(rng.normal(0.0, 1.0, img.shape), dtype=np.float32)
            * np.where(img > 0, 12.0, 3.0))
    return np.clip(np.rint(np.abs(img)), 0, 4095).astype(np.uint16)


def _p10(spec: SeriesSpec, index: int, pixels: np.ndarray) -> bytes:
    ct = spec.modality == "CT"
    folder = spec.folder
    spacing = 0.7 if ct else 0.9
    thickness = 5.0 if ct else 1.2
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(CT_IMAGE_STORAGE if ct else MR_IMAGE_STORAGE)
    meta.MediaStorageSOPInstanceUID = UID(uid(folder, "instance", str(index)))
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(_IMPLEMENTATION_UID)
    meta.ImplementationVersionName = "HI_ASYNC_SYNTH1"
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240102"
    ds.StudyTime = ds.SeriesTime = "101500"
    ds.ContentTime = f"1016{index // 60 % 60:02d}"
    ds.AccessionNumber = f"HIA{folder[:8].upper()}"
    ds.Modality = spec.modality
    ds.Manufacturer = "hi_async"
    ds.ManufacturerModelName = "Synthetic phantom"
    ds.SoftwareVersions = "1"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = f"Synthetic {spec.anatomy} {spec.modality}"
    ds.SeriesDescription = f"{spec.anatomy} phantom"
    ds.PatientName = f"Phantom^{spec.anatomy.capitalize()}"
    ds.PatientID = f"HIA-{folder[:8]}"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.PatientAge = "054Y"
    ds.BodyPartExamined = {"chest": "CHEST", "pelvis": "PELVIS", "head": "HEAD",
                           "breast": "BREAST"}[spec.anatomy]
    ds.SliceThickness = f"{thickness:g}"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = uid(folder, "study")
    ds.SeriesInstanceUID = uid(folder, "series")
    ds.StudyID = "1"
    ds.SeriesNumber = 2
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = index + 1
    z = -index * thickness
    ds.ImagePositionPatient = [f"{-spacing * spec.columns / 2:g}",
                               f"{-spacing * spec.rows / 2:g}", f"{z:g}"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = uid(folder, "frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = f"{z:g}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelSpacing = [f"{spacing:g}", f"{spacing:g}"]
    ds.BitsAllocated = 16
    ds.BitsStored = 16 if ct else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if ct else 0
    if ct:
        ds.KVP = "120"
        ds.XRayTubeCurrent = 200
        ds.ConvolutionKernel = "STANDARD"
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.WindowCenter = ["40", "-600"] if spec.anatomy == "chest" else "40"
        ds.WindowWidth = ["400", "1500"] if spec.anatomy == "chest" else "400"
    else:
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = "500"
        ds.EchoTime = "15"
        ds.EchoTrainLength = 1
        ds.MagneticFieldStrength = "1.5"
        ds.ImagedNucleus = "1H"
        ds.WindowCenter = "600"
        ds.WindowWidth = "1200"
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True, little_endian=True, implicit_vr=False)
    return buffer.getvalue()
