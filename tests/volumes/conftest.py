"""The volume tests' study: every case written as DICOM, imported through the local stack
in one real import job, its metadata and decoded frames fetched with the library, and
the same files converted by dcm2niix. Built once per session (about ten seconds).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hi_async.local.stack import LocalStack

from .cases import CASES, Case
from .importing import clients, import_into_new_datastore, metadata, verified_pixels

BUCKET = "hi-async-volume-tests"


@dataclass
class Imported:
    """One case after the round trip: its metadata, frames and dcm2niix's conversion."""

    case: Case
    folder: Path  # the DICOM files
    image_set_id: str
    doc: dict[str, Any]
    pixels: dict[str, np.ndarray]  # frame ID → decoded frame
    dcm2niix: list[Path] = field(default_factory=list)  # every .nii it wrote


@dataclass
class Study:
    datastore_id: str
    cases: dict[str, Imported]


def dcm2niix_binary() -> str:
    """The binary the PyPI package ships (the test extra installs it)."""
    import dcm2niix

    return str(dcm2niix.bin)


def _import(url: str, root: Path) -> tuple[str, list[str]]:
    """Upload ``root`` to S3 and import it with StartDICOMImportJob; (data store, image sets)."""
    s3, mi = clients(url)
    s3.create_bucket(Bucket=BUCKET)
    for path in sorted(root.rglob("*.dcm")):
        s3.put_object(Bucket=BUCKET, Key=f"in/{path.parent.name}/{path.name}",
                      Body=path.read_bytes())
    datastore, manifest = import_into_new_datastore(mi, s3, BUCKET, "volume-tests")
    files = len(list(root.rglob("*.dcm")))
    assert manifest["numberOfImportedFiles"] == files, manifest
    return datastore, [s["imageSetId"] for s in manifest["imageSetsSummary"]]


@pytest.fixture(scope="session")
def volume_study(local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Study:
    root = tmp_path_factory.mktemp("volume-dicom")
    converted = tmp_path_factory.mktemp("volume-dcm2niix")
    for case in CASES:
        case.write(root / case.name, case.series_uid)
    datastore, image_sets = _import(local_stack.url, root)
    docs = {}
    for image_set_id in image_sets:
        doc = metadata(local_stack.url, datastore, image_set_id)
        (series_uid,) = doc["Study"]["Series"]
        docs[series_uid] = (image_set_id, doc)
    pixels = verified_pixels(local_stack.url, datastore, image_sets)
    binary = dcm2niix_binary()
    cases = {}
    for case in CASES:
        image_set_id, doc = docs[case.series_uid]
        frame_ids = {f["ID"] for i in doc["Study"]["Series"][case.series_uid]["Instances"]
                     .values() for f in i["ImageFrames"]}
        out = converted / case.name
        out.mkdir()
        subprocess.run([binary, "-z", "n", "-b", "n", "-f", case.name, "-o", str(out),
                        str(root / case.name)], check=True, capture_output=True, timeout=60)
        cases[case.name] = Imported(case, root / case.name, image_set_id, doc,
                                    {fid: pixels[fid] for fid in frame_ids},
                                    sorted(out.glob("*.nii")))
    return Study(datastore, cases)


@pytest.fixture
def faults(local_stack: LocalStack) -> Iterator[Any]:
    """Set fault knobs for one test; they are switched off again afterwards."""
    yield local_stack.set_faults
    local_stack.set_faults(error_rate=0.0, drop_rate=0.0, truncate_rate=0.0,
                           corrupt_rate=0.0, throttle_rps=0.0, latency_ms=0.0)


from .standins import standins  # noqa: E402, F401  (the stand-in studies' fixture)
