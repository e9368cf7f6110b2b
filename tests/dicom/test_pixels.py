"""Verified frames → Pixel Data: encapsulation, native pixels, 1-bit packing. Real frames,
encoded here with the codecs the service's frames come from (OpenJPH, OpenJPEG)."""

from __future__ import annotations

import re
import struct

import imagecodecs
import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames, parse_basic_offsets
from pydicom.uid import UID

from hi_async.dicom import encapsulation
from hi_async.dicom.encapsulation import (
    bare_codestream,
    colour_transform,
    encapsulate_frames,
)
from hi_async.dicom.errors import UnsupportedPixelData
from hi_async.dicom.pixels import InstanceFrame, with_pixel_data

HTJ2K_RPCL = "1.2.840.10008.1.2.4.202"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


def _box(kind: bytes, payload: bytes, *, extended: bool = False) -> bytes:
    if extended:  # length 1: a 64-bit length follows the type
        return struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def jph(codestream: bytes, *, extended: bool = False) -> bytes:
    """A JPH file the way the service serves image/jph: signature, ftyp, jp2h, jp2c."""
    return (_box(b"jP  ", b"\r\n\x87\n") + _box(b"ftyp", b"jph \x00\x00\x00\x00jph ")
            + _box(b"jp2h", _box(b"ihdr", bytes(14))) + _box(b"jp2c", codestream,
                                                            extended=extended))


def htj2k(pixels: np.ndarray) -> bytes:
    return bytes(imagecodecs.htj2k_encode(pixels, level=0, reversible=True))


def image(rows: int = 16, columns: int = 12, frames: int = 1, *, samples: int = 1,
          bits: int = 16, signed: bool = False, photometric: str = "MONOCHROME2",
          stored: str = HTJ2K_RPCL) -> Dataset:
    ds = Dataset()
    ds.SOPInstanceUID, ds.SOPClassUID = "1.2.3", "1.2.840.10008.5.1.4.1.1.7"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, samples
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation, ds.PhotometricInterpretation = int(signed), photometric
    if frames > 1:
        ds.NumberOfFrames = str(frames)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(stored)
    return ds


def pixels(rows: int, columns: int, seed: int, dtype: str = "uint16",
           samples: int = 1) -> np.ndarray:
    shape = (rows, columns) if samples == 1 else (rows, columns, samples)
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(max(info.min, -2000), min(info.max, 4000),
                                                size=shape).astype(dtype)


def test_a_jph_file_gives_up_its_bare_codestream() -> None:
    stream = htj2k(pixels(16, 12, 0))
    assert bare_codestream(jph(stream)) == stream
    assert bare_codestream(jph(stream, extended=True)) == stream
    assert bare_codestream(stream) == stream


@pytest.mark.parametrize("data", [b"\xff\xd8\xff\xe0 a JPEG", b"",
                                  jph(b"not a codestream")[:-4]])
def test_what_is_not_a_jpeg_2000_family_frame_is_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedPixelData, match="JPEG 2000"):
        bare_codestream(data)


def test_the_colour_transform_is_read_from_the_cod_marker() -> None:
    rgb = pixels(16, 16, 1, "uint8", samples=3)
    assert colour_transform(htj2k(rgb)).multi_component
    assert colour_transform(htj2k(rgb)).reversible
    assert not colour_transform(htj2k(pixels(16, 16, 1))).multi_component
    lossy = bytes(imagecodecs.jpeg2k_encode(rgb, level=30, codecformat="J2K",
                                            reversible=False, mct=True))
    assert colour_transform(lossy) == encapsulation.ColourTransform(True, False)


def test_frames_are_encapsulated_one_per_fragment_behind_a_basic_offset_table() -> None:
    frames = [b"\xff\x4f" + bytes(9), b"\xff\x4f" + bytes(20), b"\xff\x4f" + bytes(3)]
    packed = encapsulate_frames(frames)
    assert packed.extended_offsets is None
    assert parse_basic_offsets(packed.pixel_data) == [0, 20, 50]  # odd frames padded
    assert [f.rstrip(b"\x00") for f in generate_frames(packed.pixel_data,
                                                        number_of_frames=3)] == \
        [f.rstrip(b"\x00") for f in frames]


def test_past_four_gib_the_extended_offset_table_is_used(monkeypatch: pytest.MonkeyPatch,
                                                         ) -> None:
    # The limit lowered so that a few bytes exercise the path 4 GiB would.
    monkeypatch.setattr(encapsulation, "_BOT_LIMIT", 16)
    packed = encapsulate_frames([bytes(10), bytes(12)])
    assert packed.extended_offsets == struct.pack("<2Q", 0, 18)
    assert packed.extended_lengths == struct.pack("<2Q", 10, 12)
    assert parse_basic_offsets(packed.pixel_data) == []


def test_stored_frames_go_in_as_bare_codestreams_under_the_stored_syntax() -> None:
    arrays = [pixels(16, 12, n) for n in range(3)]
    streams = [htj2k(a) for a in arrays]
    ds = image(frames=3)
    out = with_pixel_data(ds, [InstanceFrame(jph(s), "image/jph") for s in streams], "stored")
    assert out.file_meta.TransferSyntaxUID == HTJ2K_RPCL
    assert out["PixelData"].is_undefined_length and out["PixelData"].VR == "OB"
    got = [f.rstrip(b"\x00") for f in generate_frames(out.PixelData, number_of_frames=3)]
    assert got == [s.rstrip(b"\x00") for s in streams]
    assert "PixelData" not in ds and ds.file_meta.TransferSyntaxUID == HTJ2K_RPCL


def test_rgb_under_the_colour_transform_is_ybr_rct_when_stored_and_rgb_when_native() -> None:
    rgb = pixels(8, 8, 2, "uint8", samples=3)
    frame = InstanceFrame(jph(htj2k(rgb)), "image/jph", rgb)
    ds = image(8, 8, samples=3, bits=8, photometric="RGB")
    ds.PlanarConfiguration = 1
    stored = with_pixel_data(ds, [frame], "stored")
    native = with_pixel_data(ds, [frame], "native")
    assert (stored.PhotometricInterpretation, stored.PlanarConfiguration) == ("YBR_RCT", 0)
    assert (native.PhotometricInterpretation, native.PlanarConfiguration) == ("RGB", 0)
    assert native.PixelData == rgb.tobytes()
    assert (ds.PhotometricInterpretation, ds.PlanarConfiguration) == ("RGB", 1)  # unchanged
    assert ds.file_meta.TransferSyntaxUID == HTJ2K_RPCL and "PixelData" not in ds


def test_ycbcr_samples_stay_ybr_full_whatever_the_codestream_does() -> None:
    ybr = pixels(8, 8, 3, "uint8", samples=3)
    frame = InstanceFrame(jph(htj2k(ybr)), "image/jph", ybr)
    ds = image(8, 8, samples=3, bits=8, photometric="YBR_FULL_422")
    assert with_pixel_data(ds, [frame], "stored").PhotometricInterpretation == "YBR_FULL"
    assert with_pixel_data(ds, [frame], "native").PhotometricInterpretation == "YBR_FULL"


def test_native_pixels_are_little_endian_in_the_allocated_width() -> None:
    arrays = [pixels(4, 5, n, "int16") for n in range(2)]
    ds = image(4, 5, frames=2, signed=True)
    frames = [InstanceFrame(jph(htj2k(a)), "image/jph", a) for a in arrays]
    out = with_pixel_data(ds, frames, "native")
    assert out.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert out["PixelData"].VR == "OW" and not out["PixelData"].is_undefined_length
    assert out.PixelData == b"".join(a.astype("<i2").tobytes() for a in arrays)


def test_eight_bit_pixels_decoded_narrower_are_widened_to_bits_allocated() -> None:
    narrow = pixels(4, 4, 5, "uint8")
    ds = image(4, 4, bits=16)
    ds.BitsStored, ds.HighBit = 8, 7
    out = with_pixel_data(ds, [InstanceFrame(jph(htj2k(narrow)), "image/jph", narrow)],
                          "native")
    assert out.PixelData == narrow.astype("<u2").tobytes()


def test_one_bit_frames_are_packed_back_to_back_across_byte_boundaries() -> None:
    masks = [(np.random.default_rng(n).random((5, 7)) > 0.5).astype(np.uint8)
             for n in range(3)]
    ds = image(5, 7, frames=3, bits=1, stored=EXPLICIT_LE)
    # As the service stores each frame: its own bytes, the last one padded.
    served = [np.packbits(m.ravel(), bitorder="little").tobytes() for m in masks]
    want = np.packbits(np.concatenate([m.ravel() for m in masks]), bitorder="little")
    for syntax in ("stored", "native"):
        from_bytes = with_pixel_data(ds, [InstanceFrame(s, "application/octet-stream")
                                          for s in served], syntax)
        from_pixels = with_pixel_data(ds, [InstanceFrame(s, "application/octet-stream", m)
                                           for s, m in zip(served, masks, strict=True)],
                                      syntax)
        assert from_bytes.PixelData == from_pixels.PixelData == want.tobytes()
        assert from_bytes.file_meta.TransferSyntaxUID == EXPLICIT_LE


def test_native_output_needs_the_decoded_pixels() -> None:
    stream = htj2k(pixels(16, 12, 0))
    with pytest.raises(UnsupportedPixelData, match="frame 1 has none"):
        with_pixel_data(image(), [InstanceFrame(jph(stream), "image/jph")], "native")


def test_a_frame_count_that_contradicts_number_of_frames_is_refused() -> None:
    stream = jph(htj2k(pixels(16, 12, 0)))
    with pytest.raises(UnsupportedPixelData, match="NumberOfFrames says 2 but 1 frames"):
        with_pixel_data(image(frames=2), [InstanceFrame(stream, "image/jph")], "stored")


def test_a_frame_served_as_another_kind_is_refused() -> None:
    with pytest.raises(UnsupportedPixelData, match="frame 1 was served as image/jpeg"):
        with_pixel_data(image(), [InstanceFrame(b"\xff\xd8", "image/jpeg")], "stored")


def test_video_is_refused_with_a_clear_reason() -> None:
    ds = image(stored="1.2.840.10008.1.2.4.102")
    with pytest.raises(UnsupportedPixelData, match=re.escape(
            "stored as video in transfer syntax 1.2.840.10008.1.2.4.102")):
        with_pixel_data(ds, [InstanceFrame(b"\x00\x00\x01", "video/mp4")], "stored")


def test_an_unknown_syntax_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="choose 'stored' or 'native'"):
        with_pixel_data(image(), [], "jph")  # type: ignore[arg-type]
