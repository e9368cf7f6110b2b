"""Real encoded frames and metadata documents for the client's unit tests."""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from typing import Any

import imagecodecs
import numpy as np

from hi_async.model import EncodedFrame, FrameRef


def crc(pixels: np.ndarray) -> int:
    """The service's rule, written independently of hi_async.codecs: zlib over LE bytes."""
    le = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False)
    return zlib.crc32(np.ascontiguousarray(le).tobytes()) & 0xFFFFFFFF


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def wrap_jph(codestream: bytes, pixels: np.ndarray) -> bytes:
    """A JPH file: signature, ftyp 'jph ', jp2h (ihdr + colr), jp2c."""
    rows, cols = pixels.shape[:2]
    comps = 1 if pixels.ndim == 2 else pixels.shape[2]
    bpc = pixels.dtype.itemsize * 8 - 1
    if pixels.dtype.kind == "i":
        bpc |= 0x80
    ihdr = _box(b"ihdr", struct.pack(">IIHBBBB", rows, cols, comps, bpc, 7, 0, 0))
    colr = _box(b"colr", struct.pack(">BBBI", 1, 0, 0, 17 if comps == 1 else 16))
    return (_box(b"jP  ", b"\r\n\x87\n") + _box(b"ftyp", b"jph " + b"\0\0\0\0" + b"jph ")
            + _box(b"jp2h", ihdr + colr) + _box(b"jp2c", codestream))


def encode(pixels: np.ndarray, content_type: str) -> bytes:
    if content_type == "image/jph":
        return wrap_jph(bytes(imagecodecs.htj2k_encode(pixels)), pixels)
    if content_type == "image/jphc":
        return bytes(imagecodecs.htj2k_encode(pixels))
    if content_type == "image/j2c":
        return bytes(imagecodecs.jpeg2k_encode(pixels, level=0, codecformat="J2K"))
    if content_type == "image/jpeg":
        return bytes(imagecodecs.jpeg8_encode(pixels, level=95))
    if content_type == "application/octet-stream":
        return pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    raise ValueError(content_type)


def ct_pixels(rows: int = 64, cols: int = 48, seed: int = 0, signed: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if signed:
        return rng.integers(-1024, 3071, (rows, cols)).astype(np.int16)
    return rng.integers(0, 4095, (rows, cols)).astype(np.uint16)


def rgb_pixels(rows: int = 32, cols: int = 40, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (rows, cols, 3)).astype(np.uint8)


def frame_id(n: int) -> str:
    return f"{n:032x}"


def instance(rows: int, cols: int, frames: list[dict[str, Any]], *, samples: Any = 1,
             bits: int = 16, signed: int = 1, tsuid: str | None = "1.2.840.10008.1.2.4.202",
             number_of_frames: str | None = None) -> dict[str, Any]:
    dicom: dict[str, Any] = {"Rows": rows, "Columns": cols, "SamplesPerPixel": samples,
                             "BitsAllocated": bits, "BitsStored": bits if bits == 8 else 12,
                             "HighBit": 11, "PixelRepresentation": signed,
                             "NumberOfFrames": number_of_frames, "PixelData": None}
    inst: dict[str, Any] = {"DICOM": dicom, "DICOMVRs": {}, "ImageFrames": frames,
                            "ChecksumType": "DECOMPRESSED"}
    if tsuid is not None:
        inst["StoredTransferSyntaxUID"] = tsuid
    return inst


def frame_entry(fid: str, checksum: int | None, width: int = 64) -> dict[str, Any]:
    entry: dict[str, Any] = {"ID": fid, "FrameSizeInBytes": 12345}
    if checksum is not None:
        entry["PixelDataChecksumFromBaseToFullResolution"] = [
            {"Width": width // 4, "Height": 8, "Checksum": 1},
            {"Width": width, "Height": 32, "Checksum": checksum},
        ]
    return entry


def document(series: dict[str, dict[str, Any]], image_set_id: str = frame_id(999)) -> dict:
    return {
        "SchemaVersion": "1.1", "DatastoreID": frame_id(1), "ImageSetID": image_set_id,
        "Patient": {"DICOM": {"PatientID": "P"}},
        "Study": {"DICOM": {"StudyInstanceUID": "1.2.3"},
                  "Series": {uid: {"DICOM": {"SeriesInstanceUID": uid}, "Instances": insts}
                             for uid, insts in series.items()}},
    }


def gz(doc: Any) -> bytes:
    return gzip.compress(json.dumps(doc).encode())


def encoded_frame(data: bytes, content_type: str | None, rows: int, columns: int,
                  samples: int, dtype: str, expected_crc32: int | None, *,
                  bits_allocated: int | None = None) -> EncodedFrame:
    """A fetched frame as the decode stage receives it, described by its stored dtype."""
    kind = np.dtype(dtype)
    bits = 8 * kind.itemsize if bits_allocated is None else bits_allocated
    ref = FrameRef(datastore_id="0" * 32, image_set_id="1" * 32, image_frame_id="2" * 32,
                   study_instance_uid="1.2", series_instance_uid="1.2.3",
                   sop_instance_uid="1.2.3.4", frame_number=1, rows=rows, columns=columns,
                   samples_per_pixel=samples, bits_allocated=bits, bits_stored=bits,
                   signed=kind.kind == "i", stored_transfer_syntax_uid="1.2.840.10008.1.2.1",
                   expected_crc32=expected_crc32)
    return EncodedFrame(ref, data, content_type)
