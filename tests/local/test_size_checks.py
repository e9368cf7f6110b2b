"""The size checks as pure functions: frame headers read as the decoders read them, and
deflated data sets bounded by what they declare."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom
import pydicom.data
import pytest

from hi_async.local.config import byte_size
from hi_async.local.dicom_import.convert import ConvertFailure, convert_p10
from hi_async.local.dicom_import.frame_headers import encoded_geometry
from hi_async.local.dicom_import.limits import ImportLimits
from hi_async.local.dicom_import.size_checks import OverLimit, check_deflated
from tests.local.import_support.size_files import deflate_bomb, jpeg_claiming

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"

ENCODERS = {
    "jpeg": lambda a: imagecodecs.jpeg8_encode(a),
    "jpeg lossless": lambda a: imagecodecs.ljpeg_encode(a),
    "jpeg-ls": lambda a: imagecodecs.jpegls_encode(a),
    "jpeg 2000": lambda a: imagecodecs.jpeg2k_encode(a, level=0, codecformat="J2K"),
    "jp2 file": lambda a: imagecodecs.jpeg2k_encode(a, level=0, codecformat="JP2"),
    "htj2k": lambda a: imagecodecs.htj2k_encode(a, reversible=True),
    "jpeg xl": lambda a: imagecodecs.jpegxl_encode(a, lossless=True),
}
SHAPES = [((37, 53), np.uint8), ((64, 48, 3), np.uint8), ((300, 301), np.uint16)]


@pytest.mark.parametrize("codec", sorted(ENCODERS))
@pytest.mark.parametrize(("shape", "dtype"), SHAPES, ids=["grey8", "rgb8", "grey16"])
def test_a_frame_header_declares_what_the_decoder_makes(
        codec: str, shape: tuple[int, ...], dtype: type) -> None:
    pixels = np.zeros(shape, dtype)
    if (codec, dtype) == ("jpeg", np.uint16) or (codec, pixels.ndim) == ("jpeg lossless", 3):
        pytest.skip("not a combination this encoder writes")
    data = bytes(ENCODERS[codec](pixels))
    decoded = imagecodecs.imread(data)
    geometry = encoded_geometry(data, samples=1 if pixels.ndim == 2 else shape[2],
                                bits=pixels.dtype.itemsize * 8)
    assert geometry is not None
    assert (geometry.rows, geometry.columns) == decoded.shape[:2]
    assert geometry.decoded_bytes == decoded.nbytes


@pytest.mark.parametrize(("rows", "columns"), [(8, 8), (9, 17), (1080, 1920), (300, 400),
                                               (1000, 1250), (40000, 30), (270000, 5)])
def test_a_jpeg_xl_size_header_is_read_in_every_form(rows: int, columns: int) -> None:
    # Small sizes (multiples of 8), 9 to 30-bit sizes and the fixed aspect ratios.
    data = bytes(imagecodecs.jpegxl_encode(np.zeros((rows, columns), np.uint8)))
    geometry = encoded_geometry(data)
    assert geometry is not None and (geometry.rows, geometry.columns) == (rows, columns)
    if data[:2] != b"\xff\x0a":
        return  # the encoder chose the container already (for sizes past its level 5)

    # The same codestream in the ISO BMFF container: signature box, ftyp, jxlc.
    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + kind + payload
    contained = (b"\x00\x00\x00\x0cJXL \r\n\x87\n" + box(b"ftyp", b"jxl \0\0\0\0jxl ")
                 + box(b"jxlc", data))
    assert encoded_geometry(contained) == geometry


def test_a_patched_jpeg_header_is_believed_and_a_cut_one_declares_nothing() -> None:
    claim = jpeg_claiming(65500, 65500, samples=3)
    geometry = encoded_geometry(claim)
    assert geometry is not None and geometry.decoded_bytes == 65500 * 65500 * 3
    assert encoded_geometry(claim[:12]) is None
    assert encoded_geometry(b"not an image") is None


def test_a_legitimate_deflated_file_passes_and_imports() -> None:
    data = (TEST_FILES / "image_dfl.dcm").read_bytes()
    check_deflated(data, ImportLimits())
    assert not isinstance(convert_p10("s3://b/image_dfl.dcm", data), ConvertFailure)


def test_a_deflated_file_is_bounded_by_the_pixel_data_it_declares() -> None:
    # The same file with 60 MiB of zeros appended to its data set: more than its 4 KB of
    # pixel data plus the 50 MiB its other attributes may take.
    data = (TEST_FILES / "image_dfl.dcm").read_bytes()
    ds = pydicom.dcmread(TEST_FILES / "image_dfl.dcm")
    meta_end = len(data) - len(_deflated_part(data, ds))
    inflated = zlib.decompress(data[meta_end:], -zlib.MAX_WBITS) + bytes(60 * 1024**2)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    padded = data[:meta_end] + deflater.compress(inflated) + deflater.flush()
    with pytest.raises(OverLimit, match="its pixel data needs"):
        check_deflated(padded, ImportLimits())


def _deflated_part(data: bytes, ds: pydicom.Dataset) -> bytes:
    """The deflate stream of a deflated P10 file: what follows its file meta."""
    meta_length = int(ds.file_meta.FileMetaInformationGroupLength)
    return data[132 + 12 + meta_length:]


def test_a_deflate_bomb_is_refused_by_what_it_declares_or_by_the_instance_limit() -> None:
    bomb = deflate_bomb(80 * 1024**2)
    with pytest.raises(OverLimit, match="declare no pixel data"):
        check_deflated(bomb, ImportLimits())


@pytest.mark.parametrize(("text", "count"), [("1073741824", 1024**3), ("1GiB", 1024**3),
                                             ("512 MiB", 512 * 1024**2), ("10GB", 10**10),
                                             ("0", 0), ("1.5kib", 1536)])
def test_sizes_are_given_in_bytes_or_with_a_unit(text: str, count: int) -> None:
    assert byte_size("--x", text) == count


@pytest.mark.parametrize("text", ["", "lots", "-1", "1 GiBs", "1e9"])
def test_a_size_that_is_no_size_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="--x must be a number of bytes"):
        byte_size("--x", text)
