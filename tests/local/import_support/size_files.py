"""Real DICOM P10 files that claim far more pixels than they carry, written with pydicom."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import generate_uid

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def _dataset(syntax: str, rows: int, columns: int, *, samples: int = 1, bits: int = 8,
             frames: int = 1) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SECONDARY_CAPTURE, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.Modality = "SIZE-CAPS", "OT"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, samples
    ds.PhotometricInterpretation = "MONOCHROME2" if samples == 1 else "RGB"
    if samples > 1:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = frames
    return ds


def _save(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def jpeg_claiming(rows: int, columns: int, *, samples: int = 1) -> bytes:
    """An 8x8 baseline JPEG whose frame header (SOF0) says ``rows`` x ``columns``."""
    shape = (8, 8) if samples == 1 else (8, 8, samples)
    stream = bytearray(imagecodecs.jpeg8_encode(np.zeros(shape, np.uint8)))
    sof = stream.find(b"\xff\xc0")
    stream[sof + 5:sof + 9] = rows.to_bytes(2, "big") + columns.to_bytes(2, "big")
    return bytes(stream)


def jpeg_file(rows: int, columns: int, *, samples: int = 1, frames: int = 1,
              header: tuple[int, int] | None = None) -> bytes:
    """JPEG baseline (stored as imported, decoded for its checksum) whose frames each claim
    ``rows`` x ``columns``; the DICOM attributes say ``header`` (default the same)."""
    header_rows, header_columns = header or (rows, columns)
    ds = _dataset(JPEG_BASELINE, header_rows, header_columns, samples=samples, frames=frames)
    ds.PixelData = encapsulate([jpeg_claiming(rows, columns, samples=samples)] * frames)
    ds["PixelData"].VR = "OB"
    return _save(ds)


def native_file(rows: int, columns: int) -> bytes:
    """An honest uncompressed 16-bit frame of ``rows`` x ``columns`` (a gradient)."""
    ds = _dataset(EXPLICIT_LITTLE, rows, columns, bits=16)
    ds.PixelData = (np.arange(rows * columns, dtype=np.uint16) % 4096).tobytes()
    return _save(ds)


def deflate_bomb(inflated: int) -> bytes:
    """A P10 file whose deflated data set is ``inflated`` bytes of zeros (about 1000:1).

    Written in 1 MiB pieces, so making a bomb of a gigabyte takes no gigabyte here.
    """
    ds = _dataset(DEFLATED, 8, 8)
    out = io.BytesIO()
    out.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(out, ds.file_meta, enforce_standard=True)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    piece = bytes(1024**2)
    for _ in range(-(-inflated // len(piece))):
        out.write(deflater.compress(piece))
    out.write(deflater.flush())
    return out.getvalue()


def peak_rss_of_tree(pid: int) -> dict[int, int]:
    """Peak resident memory (VmHWM, bytes) of ``pid`` and every process below it."""
    peaks: dict[int, int] = {}
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue  # ended meanwhile
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks[current] = int(line.split()[1]) * 1024
        for task in tasks:
            try:
                pending += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return peaks
