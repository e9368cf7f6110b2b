"""Real test data for the emulator's read operations: DICOM-shaped instances, HTJ2K frames."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import imagecodecs
import numpy as np

from hi_async.local.healthimaging.backend import Backend
from hi_async.local.healthimaging.records import EncodedFrame, ParsedInstance


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def jph(pixels: np.ndarray) -> bytes:
    """``pixels`` as lossless HTJ2K in a JPH file wrapper (signature, ftyp, jp2h, jp2c)."""
    codestream = imagecodecs.htj2k_encode(pixels, level=0, reversible=True)
    rows, cols = pixels.shape[:2]
    comps = 1 if pixels.ndim == 2 else pixels.shape[2]
    bpc = pixels.dtype.itemsize * 8 - 1 | (0x80 if pixels.dtype.kind == "i" else 0)
    ihdr = _box(b"ihdr", struct.pack(">IIHBBBB", rows, cols, comps, bpc, 7, 0, 0))
    colr = _box(b"colr", struct.pack(">BBBI", 1, 0, 0, 17 if comps == 1 else 16))
    return (_box(b"jP  ", b"\r\n\x87\n") + _box(b"ftyp", b"jph \x00\x00\x00\x00jph ")
            + _box(b"jp2h", ihdr + colr) + _box(b"jp2c", codestream))


def frame_of(pixels: np.ndarray) -> EncodedFrame:
    le = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False)
    crc = zlib.crc32(le.tobytes()) & 0xFFFFFFFF
    rows, cols = pixels.shape[:2]
    return EncodedFrame(jph(pixels), "image/jph", int(pixels.min()), int(pixels.max()),
                        ({"Width": cols, "Height": rows, "Checksum": crc},))


def phantom(seed: int, rows: int = 64, cols: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    disc = ((y - rows / 2) ** 2 + (x - cols / 2) ** 2 < (rows / 3) ** 2) * 800
    return (disc + rng.integers(-50, 50, size=(rows, cols)) - 1000).astype(np.int16)


def instance(series: str, sop: str, *, study: str = "1.2.3.4", patient: str = "P1",
             frames: int = 1, seed: int = 0, accession: str = "ACC1",
             study_date: str = "20240102") -> ParsedInstance:
    arrays = [phantom(seed * 100 + i) for i in range(frames)]
    return ParsedInstance(
        input_file=f"s3://in/{sop}.dcm", study_instance_uid=study, series_instance_uid=series,
        sop_instance_uid=sop,
        patient_dicom={"PatientID": patient, "PatientName": f"Doe^{patient}", "PatientSex": "O"},
        study_dicom={"StudyInstanceUID": study, "StudyID": "S1", "AccessionNumber": accession,
                     "StudyDate": study_date, "StudyTime": "101500"},
        series_dicom={"SeriesInstanceUID": series, "Modality": "CT", "SeriesNumber": "3 "},
        instance_dicom={"SOPInstanceUID": sop, "Rows": 64, "Columns": 64, "BitsAllocated": 16,
                        "BitsStored": 16, "PixelRepresentation": 1, "SamplesPerPixel": 1,
                        "NumberOfFrames": str(frames), "PixelData": None},
        instance_vrs={}, stored_transfer_syntax_uid="1.2.840.10008.1.2.4.202",
        frames=tuple(frame_of(a) for a in arrays))


@dataclass
class Seeded:
    datastore_id: str
    image_set_id: str
    frame_ids: list[str]
    frames: list[EncodedFrame]


_counter = [0]


def seed_image_set(backend: Backend, datastore_id: str | None = None, *, instances: int = 2,
                   frames: int = 1, patient: str = "P1", accession: str = "ACC1",
                   study_date: str = "20240102") -> Seeded:
    """A fresh series imported straight through the backend (no HTTP, no S3)."""
    if datastore_id is None:
        datastore_id = backend.create_datastore("seeded", ready=True).datastore_id
    _counter[0] += 1
    series = f"1.2.3.4.{_counter[0]}"
    items = [instance(series, f"{series}.{i}", patient=patient, frames=frames, seed=i,
                      accession=accession, study_date=study_date) for i in range(instances)]
    results = backend.add_instances(datastore_id, items, job_id=None)
    image_set_id = results[0].image_set_id
    doc = backend.metadata_doc(datastore_id, image_set_id)
    ids, encoded = [], []
    for inst in items:
        entry = doc["Study"]["Series"][series]["Instances"][inst.sop_instance_uid]
        ids += [f["ID"] for f in entry["ImageFrames"]]
        encoded += list(inst.frames)
    return Seeded(datastore_id, image_set_id, ids, encoded)
