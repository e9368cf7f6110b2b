"""The DICOM files the round-trip tests import: pydicom's bundled ones and files made here.

pydicom's test files cover the syntaxes HealthImaging transcodes to HTJ2K (implicit and
explicit little endian, explicit big endian, RLE, JPEG-LS and JPEG 2000 lossless, JPEG
extended) and two it keeps as imported (JPEG baseline, JPEG 2000 lossy). The files made
here cover what pydicom does not ship: HTJ2K (``.4.203``) and JPEG XL (``.4.112``) stored
as imported, an instance with private elements and private sequences, and a synthetic CT
series.
"""

from __future__ import annotations

import io
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom
import pydicom.data
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomFileLike
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"

#: pydicom's files, with what each one brings to the round trip.
PYDICOM_FILES = {
    "CT_small.dcm": "CT, explicit VR little endian, GE private elements",
    "MR_small.dcm": "MR, explicit VR little endian",
    "MR_small_implicit.dcm": "implicit VR little endian",
    "MR_small_bigendian.dcm": "explicit VR big endian",
    "MR_small_RLE.dcm": "RLE lossless",
    "MR_small_jp2klossless.dcm": "JPEG 2000 lossless (.90), transcoded",
    "MR_small_jpeg_ls_lossless.dcm": "JPEG-LS lossless",
    "JPEG-lossy.dcm": "JPEG extended (.51, lossy), transcoded",
    "rtdose.dcm": "multi-frame (15), 32-bit, implicit VR",
    "SC_rgb_rle_2frame.dcm": "RGB, multi-frame, RLE",
    "SC_rgb_rle_16bit_2frame.dcm": "16-bit RGB, multi-frame",
    "examples_jpeg2k.dcm": "RGB as YBR_RCT JPEG 2000 lossless, transcoded",
    "SC_ybr_full_422_uncompressed.dcm": "YBR_FULL_422, uncompressed",
    "examples_palette.dcm": "PALETTE COLOR with its lookup tables",
    "examples_overlay.dcm": "overlay, icon image, large private value (all dropped)",
    "SC_rgb_jpeg_dcmtk.dcm": "JPEG baseline (.50) YBR_FULL, kept as imported",
    "examples_ybr_color.dcm": "JPEG baseline, 30 frames, YBR_FULL_422, kept as imported",
    "693_J2KI.dcm": "JPEG 2000 lossy (.91) CT, kept as imported",
    "SC_rgb_gdcm_KY.dcm": "JPEG 2000 lossy (.91) RGB, kept as imported",
    "liver_1frame.dcm": "binary segmentation (1-bit), kept as imported",
    "liver_expb_1frame.dcm": "binary segmentation, big endian, transcoded",
    "image_dfl.dcm": "deflated explicit VR little endian",
}

HTJ2K = "1.2.840.10008.1.2.4.203"
JPEG_XL = "1.2.840.10008.1.2.4.112"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
PRIVATE_CREATOR = "HI_ASYNC TEST"


def pydicom_file(name: str) -> bytes:
    return (TEST_FILES / name).read_bytes()


def _p10(ds: Dataset, transfer_syntax: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta = meta
    buf = io.BytesIO()
    # dcmwrite refuses transfer syntaxes pydicom does not know (JPEG XL): its two steps.
    fp = DicomFileLike(buf)
    fp.is_implicit_VR, fp.is_little_endian = False, True
    fp.write(bytes(128) + b"DICM")
    write_file_meta_info(fp, meta, enforce_standard=True)
    write_dataset(fp, ds)
    return buf.getvalue()


def _patient_and_study(ds: Dataset, study_uid: str) -> None:
    ds.PatientName, ds.PatientID, ds.PatientSex = "Synthetic^Round Trip", "HIA-0001", "O"
    ds.PatientBirthDate = "19700101"
    ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = study_uid, "20240102", "101500.250"
    ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "S1", "ACC-1", ""
    ds.StudyDescription = "hi_async DICOM round trip"


def ct_series(instances: int, rows: int = 64, columns: int = 64) -> list[tuple[str, bytes]]:
    """A synthetic axial CT series: a disc phantom in HU, one slice per instance."""
    study, series, frame_of_reference = (generate_uid(entropy_srcs=[f"ct-{n}"])
                                         for n in ("study", "series", "for"))
    y, x = np.mgrid[0:rows, 0:columns]
    out = []
    for index in range(instances):
        ds = Dataset()
        _patient_and_study(ds, study)
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[f"ct-instance-{index}"])
        ds.SeriesInstanceUID, ds.FrameOfReferenceUID = series, frame_of_reference
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", "2", str(index + 1)
        ds.Manufacturer, ds.BodyPartExamined, ds.PatientPosition = "hi_async", "CHEST", "HFS"
        ds.PositionReferenceIndicator = ""
        ds.KVP, ds.SliceThickness = "120", "2.5"
        ds.ImagePositionPatient = ["-160.0", "-160.0", f"{-100 + 2.5 * index:.1f}"]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.SliceLocation = f"{-100 + 2.5 * index:.1f}"
        ds.PixelSpacing = ["0.625", "0.625"]
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
        ds.WindowCenter, ds.WindowWidth = ["40", "-600"], ["400", "1500"]
        ds.AcquisitionNumber, ds.ContentDate, ds.ContentTime = "1", "20240102", "101501"
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "T-D3000", "SRT", "Chest"
        ds.AnatomicRegionSequence = Sequence([code])
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = rows, columns
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        radius = rows / 3 * (1 - abs(index - instances / 2) / instances)
        disc = ((y - rows / 2) ** 2 + (x - columns / 2) ** 2) < radius ** 2
        noise = np.random.default_rng(index).integers(0, 40, size=(rows, columns))
        pixels = (1024 - 1000 + disc * 1040 + noise).astype(np.uint16)
        ds.PixelData = pixels.tobytes()
        out.append((f"ct-{index:03d}.dcm", _p10(ds, ExplicitVRLittleEndian)))
    return out


def private_sequences() -> bytes:
    """MR_small with private elements at the top level and inside (private) sequences."""
    ds = pydicom.dcmread(TEST_FILES / "MR_small.dcm")
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["private-sequences"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["private-sequences-series"])
    block = ds.private_block(0x0009, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", "top level text")
    block.add_new(0x02, "US", 7)
    block.add_new(0x03, "FD", [1.5, -2.25])
    block.add_new(0x04, "OB", b"\x01\x02\x03\x04")
    inner = Dataset()
    inner.CodeValue, inner.CodingSchemeDesignator, inner.CodeMeaning = "1", "99HIA", "one"
    inner_block = inner.private_block(0x0009, PRIVATE_CREATOR, create=True)
    inner_block.add_new(0x01, "LO", "nested text")
    inner_block.add_new(0x02, "UL", 42)
    inner_block.add_new(0x03, "SL", -5)
    inner_block.add_new(0x04, "FD", 2.5)
    deepest = Dataset()
    deepest.CodeValue, deepest.CodingSchemeDesignator, deepest.CodeMeaning = "2", "99HIA", "two"
    inner_block.add_new(0x05, "SQ", Sequence([deepest]))
    block.add_new(0x05, "SQ", Sequence([inner, Dataset()]))
    reference = Dataset()
    reference.ReferencedSOPClassUID = ds.SOPClassUID
    reference.ReferencedSOPInstanceUID = generate_uid(entropy_srcs=["referenced"])
    reference.private_block(0x0011, PRIVATE_CREATOR, create=True).add_new(0x01, "LO", "in a "
                                                                          "public sequence")
    ds.ReferencedImageSequence = Sequence([reference])
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _secondary_capture(seed: str, rows: int, columns: int, frames: int, bits: int) -> Dataset:
    ds = Dataset()
    _patient_and_study(ds, generate_uid(entropy_srcs=[f"{seed}-study"]))
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[f"{seed}-instance"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[f"{seed}-series"])
    ds.Modality, ds.ConversionType, ds.SeriesNumber, ds.InstanceNumber = "OT", "WSD", "1", "1"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    if frames > 1:
        ds.NumberOfFrames = str(frames)
    return ds


def _gradient(rows: int, columns: int, frame: int, dtype: str) -> np.ndarray:
    y, x = np.mgrid[0:rows, 0:columns]
    top = np.iinfo(dtype).max
    return ((x * 7 + y * 3 + frame * 101) % (top + 1)).astype(dtype)


def htj2k_file(frames: int = 2) -> bytes:
    """Lossless HTJ2K codestreams (``.4.203``, bare): kept as imported, ``image/jphc``."""
    ds = _secondary_capture("htj2k", 48, 40, frames, 16)
    streams = [bytes(imagecodecs.htj2k_encode(_gradient(48, 40, f, "uint16"), level=0,
                                              reversible=True)) for f in range(frames)]
    ds.PixelData = encapsulate(streams, has_bot=True)
    ds["PixelData"].is_undefined_length = True
    ds["PixelData"].VR = "OB"
    return _p10(ds, HTJ2K)


def jpeg_xl_file() -> bytes:
    """A lossy JPEG XL frame (``.4.112``): kept as imported, ``image/jxl``."""
    ds = _secondary_capture("jpegxl", 40, 48, 1, 8)
    ds.LossyImageCompression = "01"
    stream = bytes(imagecodecs.jpegxl_encode(_gradient(40, 48, 0, "uint8"), level=80))
    ds.PixelData = encapsulate([stream], has_bot=True)
    ds["PixelData"].is_undefined_length = True
    ds["PixelData"].VR = "OB"
    return _p10(ds, JPEG_XL)
