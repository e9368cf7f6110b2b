"""Real DICOM files imported through the local stack and exported again, in both syntaxes.

Each export must read back with pydicom (no ``force``), hold the same pixels as the
original for lossless sources (for frames kept as imported: the very same encoded bytes),
and carry every data element of the original except what ``hi_async/dicom/losses.py``
documents as not preserved (``compare.py`` applies those rules).
"""

from __future__ import annotations

import imagecodecs
import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames, parse_basic_offsets
from pydicom.pixels import pixel_array

from hi_async.dicom import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

from .compare import compare
from .conftest import RoundTrip, all_sources

NAMES = [s.name for s in all_sources(ct_instances=3)]
#: Sources whose frames HealthImaging keeps as imported (lossy or not transcoded).
AS_IMPORTED = {"SC_rgb_jpeg_dcmtk.dcm", "examples_ybr_color.dcm", "693_J2KI.dcm",
               "SC_rgb_gdcm_KY.dcm", "htj2k.dcm", "jpegxl.dcm"}
SEGMENTATIONS = {"liver_1frame.dcm", "liver_expb_1frame.dcm"}
#: Lossy sources the import transcodes: it decoded them with libjpeg-turbo (imagecodecs).
LOSSY_TRANSCODED = {"JPEG-lossy.dcm"}
#: 32-bit samples stored as 32-bit HTJ2K, which OpenJPEG (pydicom's decoder) refuses: it
#: reads components of at most 31 bits. OpenJPH (imagecodecs) decodes them.
OPENJPEG_CANNOT_READ = {"rtdose.dcm"}
EXPLICIT_LE = "1.2.840.10008.1.2.1"
HTJ2K_RPCL = "1.2.840.10008.1.2.4.202"
SYNTAXES = ("stored", "native")


#: (source, syntax) → Photometric Interpretation written: the rules of pixels.py.
PHOTOMETRIC = {
    ("examples_jpeg2k.dcm", "stored"): "YBR_RCT",  # RGB samples under OpenJPH's RCT
    ("examples_jpeg2k.dcm", "native"): "RGB",
    ("SC_rgb_rle_2frame.dcm", "stored"): "YBR_RCT",
    ("SC_rgb_rle_2frame.dcm", "native"): "RGB",
    ("SC_rgb_rle_16bit_2frame.dcm", "stored"): "YBR_RCT",
    ("SC_rgb_rle_16bit_2frame.dcm", "native"): "RGB",
    ("SC_ybr_full_422_uncompressed.dcm", "stored"): "YBR_FULL",  # upsampled YCbCr samples
    ("SC_ybr_full_422_uncompressed.dcm", "native"): "YBR_FULL",
    ("SC_rgb_jpeg_dcmtk.dcm", "stored"): "YBR_FULL",  # the file's own: these are its bytes
    ("SC_rgb_jpeg_dcmtk.dcm", "native"): "RGB",  # libjpeg-turbo converts to RGB
    ("examples_ybr_color.dcm", "stored"): "YBR_FULL_422",
    ("examples_ybr_color.dcm", "native"): "RGB",
    ("SC_rgb_gdcm_KY.dcm", "stored"): "RGB",
    ("SC_rgb_gdcm_KY.dcm", "native"): "RGB",
    ("examples_palette.dcm", "stored"): "PALETTE COLOR",
    ("examples_palette.dcm", "native"): "PALETTE COLOR",
    ("CT_small.dcm", "native"): "MONOCHROME2",
}


def _frames(ds: pydicom.Dataset) -> list[bytes]:
    count = int(ds.get("NumberOfFrames") or 1)
    return list(generate_frames(ds.PixelData, number_of_frames=count))


def _expected_syntax(name: str, original: pydicom.Dataset, syntax: str) -> str:
    if syntax == "native" or name in SEGMENTATIONS:
        return EXPLICIT_LE
    if name in AS_IMPORTED:
        return str(original.file_meta.TransferSyntaxUID)
    return HTJ2K_RPCL


def test_every_instance_is_written_in_both_syntaxes(round_trip: RoundTrip) -> None:
    for syntax in SYNTAXES:
        summaries = round_trip.summaries[syntax]
        assert [f for s in summaries for f in s.failed] == []
        assert sum(len(s.written) for s in summaries) == len(round_trip.sources)
        assert not list(round_trip.out[syntax].rglob("*.tmp"))


@pytest.mark.parametrize("syntax", SYNTAXES)
@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith("ct-")] + ["ct-001.dcm"])
def test_export_reads_back_with_the_original_elements(round_trip: RoundTrip, name: str,
                                                      syntax: str) -> None:
    original = round_trip.source(name).dataset()
    exported = pydicom.dcmread(round_trip.exported(syntax, name), force=False)
    assert str(exported.file_meta.TransferSyntaxUID) == _expected_syntax(name, original,
                                                                         syntax)
    result = compare(original, exported)
    assert result.differences == []
    # The attributes compare() leaves to this test: changed only where listed above.
    assert exported.PhotometricInterpretation == PHOTOMETRIC.get(
        (name, syntax), original.PhotometricInterpretation)
    for keyword in ("PlanarConfiguration", "LossyImageCompression"):
        if keyword in original:
            assert exported.get(keyword) == original.get(keyword), keyword


def _decoded(exported: pydicom.Dataset, name: str) -> np.ndarray:
    if name in OPENJPEG_CANNOT_READ and exported.file_meta.TransferSyntaxUID != EXPLICIT_LE:
        return np.stack([imagecodecs.htj2k_decode(f) for f in _frames(exported)])
    return pixel_array(exported, raw=True)


@pytest.mark.parametrize("syntax", SYNTAXES)
@pytest.mark.parametrize("name", [n for n in NAMES if n not in AS_IMPORTED | LOSSY_TRANSCODED
                                  and not n.startswith("ct-")] + ["ct-002.dcm"])
def test_lossless_sources_decode_to_the_same_pixels(round_trip: RoundTrip, name: str,
                                                    syntax: str) -> None:
    original = round_trip.source(name).dataset()
    exported = pydicom.dcmread(round_trip.exported(syntax, name))
    want = pixel_array(original, raw=True)
    got = _decoded(exported, name).reshape(want.shape)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_a_transcoded_lossy_source_keeps_the_pixels_the_import_decoded(
        round_trip: RoundTrip, syntax: str) -> None:
    original = round_trip.source("JPEG-lossy.dcm").dataset()
    exported = pydicom.dcmread(round_trip.exported(syntax, "JPEG-lossy.dcm"))
    want = imagecodecs.jpeg8_decode(_frames(original)[0])
    assert np.array_equal(pixel_array(exported, raw=True), want)
    assert exported.LossyImageCompression == "01"


@pytest.mark.parametrize("name", sorted(AS_IMPORTED))
def test_frames_kept_as_imported_are_exported_byte_for_byte(round_trip: RoundTrip,
                                                            name: str) -> None:
    original = round_trip.source(name).dataset()
    exported = pydicom.dcmread(round_trip.exported("stored", name))
    assert [f.rstrip(b"\x00") for f in _frames(exported)] == \
        [f.rstrip(b"\x00") for f in _frames(original)]


@pytest.mark.parametrize("name", sorted(AS_IMPORTED))
def test_native_exports_of_lossy_frames_hold_their_decoded_pixels(round_trip: RoundTrip,
                                                                  name: str) -> None:
    original = round_trip.source(name).dataset()
    exported = pydicom.dcmread(round_trip.exported("native", name))
    decode = {"1.2.840.10008.1.2.4.50": imagecodecs.jpeg8_decode,
              "1.2.840.10008.1.2.4.91": imagecodecs.jpeg2k_decode,
              "1.2.840.10008.1.2.4.203": imagecodecs.htj2k_decode,
              "1.2.840.10008.1.2.4.112": imagecodecs.jpegxl_decode}[
        str(original.file_meta.TransferSyntaxUID)]
    want = np.stack([decode(f) for f in _frames(original)])
    got = pixel_array(exported, raw=True).reshape(want.shape)
    assert np.array_equal(got, want)


def test_file_meta_is_the_writers_own(round_trip: RoundTrip) -> None:
    exported = pydicom.dcmread(round_trip.exported("stored", "CT_small.dcm"))
    meta = exported.file_meta
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.ImplementationClassUID.startswith("2.25.")
    assert meta.ImplementationVersionName == IMPLEMENTATION_VERSION_NAME
    assert meta.MediaStorageSOPClassUID == exported.SOPClassUID
    assert meta.MediaStorageSOPInstanceUID == exported.SOPInstanceUID
    assert "SourceApplicationEntityTitle" not in meta


def test_jph_frames_are_encapsulated_as_bare_codestreams_with_an_offset_table(
        round_trip: RoundTrip) -> None:
    exported = pydicom.dcmread(round_trip.exported("stored", "rtdose.dcm"))
    frames = _frames(exported)
    assert len(frames) == 15
    assert all(f.startswith(b"\xff\x4f\xff\x51") for f in frames)  # SOC, SIZ: no JP2 box
    offsets = parse_basic_offsets(exported.PixelData)
    sizes = [len(f) + len(f) % 2 + 8 for f in frames]
    assert offsets == [sum(sizes[:i]) for i in range(len(frames))]


@pytest.mark.parametrize(("name", "syntax"), sorted(PHOTOMETRIC))
def test_photometric_interpretation_describes_the_pixels_written(
        round_trip: RoundTrip, name: str, syntax: str) -> None:
    exported = pydicom.dcmread(round_trip.exported(syntax, name))
    assert exported.PhotometricInterpretation == PHOTOMETRIC[name, syntax]
    if exported.SamplesPerPixel > 1 and (syntax == "native" or name not in AS_IMPORTED):
        assert exported.PlanarConfiguration == 0


@pytest.mark.parametrize("syntax", SYNTAXES)
@pytest.mark.parametrize("name", sorted(SEGMENTATIONS))
def test_binary_segmentations_stay_one_bit_packed(round_trip: RoundTrip, name: str,
                                                  syntax: str) -> None:
    original = round_trip.source(name).dataset()
    exported = pydicom.dcmread(round_trip.exported(syntax, name))
    assert exported.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert exported.BitsAllocated == 1
    pixels = exported.Rows * exported.Columns * int(exported.get("NumberOfFrames") or 1)
    assert len(exported.PixelData) == (pixels + 7) // 8 + ((pixels + 7) // 8) % 2
    assert np.array_equal(exported.pixel_array, original.pixel_array)


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_the_synthetic_ct_series_comes_back_whole(round_trip: RoundTrip, syntax: str) -> None:
    names = sorted(n for n in round_trip.sources if n.startswith("ct-"))
    assert len(names) == 12
    for name in names:
        original = round_trip.source(name).dataset()
        exported = pydicom.dcmread(round_trip.exported(syntax, name))
        assert compare(original, exported).differences == [], name
        assert np.array_equal(pixel_array(exported), pixel_array(original)), name


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_what_the_service_could_not_give_back_is_noted_in_the_file(
        round_trip: RoundTrip, syntax: str) -> None:
    exported = pydicom.dcmread(round_trip.exported(syntax, "examples_overlay.dcm"))
    note = exported.ContributingEquipmentSequence[-1]
    assert note.PurposeOfReferenceCodeSequence[0].CodeValue == "109103"
    assert note.Manufacturer == "hi_async"
    assert "overlay plane 6000 (OverlayData" in note.ContributionDescription
    assert "IconImageSequence pixel data" in note.ContributionDescription
    assert not [e for e in exported if e.tag.group == 0x6000]
    assert "IconImageSequence" not in exported


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_the_summary_counts_the_noted_instances(round_trip: RoundTrip, syntax: str) -> None:
    noted = [w.path for s in round_trip.summaries[syntax] for w in s.written if w.noted]
    assert noted == [round_trip.exported(syntax, "examples_overlay.dcm")]
    assert sum(s.noted for s in round_trip.summaries[syntax]) == 1


def test_a_large_private_value_in_a_kept_block_is_lost_without_a_trace(
        round_trip: RoundTrip) -> None:
    # CT_small's (0043,1029) is 2068 bytes of OB: left out on import, and its block's
    # other elements are kept, so nothing in the metadata tells that it existed.
    original = round_trip.source("CT_small.dcm").dataset()
    exported = pydicom.dcmread(round_trip.exported("stored", "CT_small.dcm"))
    assert len(original[0x00431029].value) > 1024
    assert 0x00431029 not in exported and 0x00431028 in exported
    assert "ContributingEquipmentSequence" not in exported


def test_private_elements_and_private_sequences_come_back(round_trip: RoundTrip) -> None:
    exported = pydicom.dcmread(round_trip.exported("stored", "private-sequences.dcm"))
    assert exported[0x00090010].value == "HI_ASYNC TEST"
    top = [(exported[0x00091000 + n].VR, exported[0x00091000 + n].value) for n in range(1, 5)]
    assert top == [("LO", "top level text"), ("US", 7), ("FD", [1.5, -2.25]),
                   ("OB", b"\x01\x02\x03\x04")]
    items = exported[0x00091005].value
    assert len(items) == 2 and len(items[1]) == 0
    nested = items[0]
    assert nested.CodeValue == "1" and nested[0x00090010].value == "HI_ASYNC TEST"
    assert [(nested[0x00091000 + n].VR, nested[0x00091000 + n].value)
            for n in range(1, 5)] == [("LO", "nested text"), ("UL", 42), ("SL", -5),
                                      ("FD", 2.5)]
    assert nested[0x00091005].value[0].CodeMeaning == "two"
    reference = exported.ReferencedImageSequence[0]
    assert reference[0x00111001].value == "in a public sequence"
