"""The four stand-in studies (the public bucket's synthetic CT and MR series), imported
once per session through a real import job, with what their volumes must hold.

The reference volume of each study is planned by the core from the served metadata and
filled with the frames ``Downloader.frames`` decoded and verified, in memory (the core
tests' path); the pipeline's files must hold exactly those voxels and that geometry.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from hi_async.local.data.public_data import PUBLIC_BUCKET
from hi_async.local.data.synthetic import PUBLIC_SERIES, generate_series, uid
from hi_async.local.stack import LocalStack
from hi_async.volumes import VolumeBuffer, VolumePlan, plan_volumes
from hi_async.volumes.scaling import scaling_for
from hi_async.volumes.volume import voxel_order

from .importing import clients, import_into_new_datastore, metadata, verified_pixels

BUCKET = "hi-async-standin-volumes"
NAMES = ("ct-chest", "ct-pelvis", "mri-head", "mri-breast")


@dataclass
class StandIn:
    """One stand-in study after its import: its image set and its reference volume."""

    name: str
    image_set_id: str
    doc: dict[str, Any]
    plan: VolumePlan
    stored: np.ndarray  # the plan's buffer layout, stored values
    dicom: Path | None = None  # its DICOM files, written on first use (dcm2niix)

    @property
    def values(self) -> np.ndarray:
        """What the volume's .npy holds: NIfTI voxel order, the scaling rule applied."""
        scaling = scaling_for(self.plan)
        assert not scaling.rescaled  # the stand-ins have one exact rescale per series
        return voxel_order(self.stored, self.plan)


@dataclass
class StandIns:
    datastore_id: str
    studies: dict[str, StandIn] = field(default_factory=dict)

    def image_set_ids(self, *names: str) -> list[str]:
        return [self.studies[n].image_set_id for n in names or NAMES]


def _import(url: str) -> tuple[str, dict[str, str]]:
    """Copy the four folders of the public bucket and import them in one job; returns
    (data store, study name → image set ID)."""
    s3, mi = clients(url)
    s3.create_bucket(Bucket=BUCKET)
    for name in NAMES:
        folder = PUBLIC_SERIES[name].folder
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=PUBLIC_BUCKET,
                                                                  Prefix=f"{folder}/"):
            for obj in page.get("Contents", []):
                s3.copy_object(CopySource={"Bucket": PUBLIC_BUCKET, "Key": obj["Key"]},
                               Bucket=BUCKET, Key=f"in/{obj['Key']}")
    datastore, manifest = import_into_new_datastore(mi, s3, BUCKET, "standin-volumes")
    by_series = {uid(PUBLIC_SERIES[n].folder, "series"): n for n in NAMES}
    image_sets: dict[str, str] = {}
    for found in manifest["imageSetsSummary"]:
        doc = metadata(url, datastore, found["imageSetId"])
        (series,) = doc["Study"]["Series"]
        image_sets[by_series[series]] = found["imageSetId"]
    assert sorted(image_sets) == sorted(NAMES)
    return datastore, image_sets


@pytest.fixture(scope="session")
def standins(local_stack: LocalStack) -> StandIns:
    datastore, image_sets = _import(local_stack.url)
    pixels = verified_pixels(local_stack.url, datastore, list(image_sets.values()))
    found = StandIns(datastore)
    for name, image_set_id in image_sets.items():
        doc = metadata(local_stack.url, datastore, image_set_id)
        plans, notes = plan_volumes(doc)
        assert notes == []
        (plan,) = plans
        buffer = VolumeBuffer(plan)
        for frame_id in plan.frame_ids:
            buffer.put(frame_id, pixels.pop(frame_id))
        assert buffer.complete
        found.studies[name] = StandIn(name, image_set_id, doc, plan, buffer.array)
    return found


def dicom_files(study: StandIn, root: Path) -> Path:
    """The study's DICOM files (the generator is deterministic: the imported bytes)."""
    if study.dicom is None:
        folder = root / study.name
        folder.mkdir(parents=True)
        for name, data in generate_series(PUBLIC_SERIES[study.name]):
            (folder / name).write_bytes(data)
        study.dicom = folder
    return study.dicom


def dcm2niix(folder: Path, out: Path) -> nib.Nifti1Image:
    """dcm2niix's volume of a folder of one series."""
    from .conftest import dcm2niix_binary

    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([dcm2niix_binary(), "-z", "n", "-b", "n", "-f", "ref", "-o", str(out),
                    str(folder)], check=True, capture_output=True, timeout=120)
    return nib.load(out / "ref.nii")


def check_nifti(path: Path, study: StandIn) -> None:
    """The file holds the reference voxels, geometry and rescale."""
    image = nib.load(path)
    plan = study.plan
    assert image.shape == tuple(study.values.shape)
    np.testing.assert_allclose(image.affine, plan.affine_array(), atol=1e-4)
    assert int(image.header["sform_code"]) == int(image.header["qform_code"]) == 1
    assert (image.dataobj.slope, image.dataobj.inter) == (plan.slopes[0], plan.intercepts[0])
    assert np.array_equal(np.asarray(image.dataobj.get_unscaled()), study.values)


def check_npy(path: Path, study: StandIn) -> None:
    """The .npy holds the reference voxels; its sidecar the plan's geometry and UIDs."""
    loaded = np.load(path)
    assert loaded.dtype == study.values.dtype and np.array_equal(loaded, study.values)
    side = json.loads(path.with_suffix(".json").read_text())
    np.testing.assert_allclose(side["affine"], study.plan.affine_array(), atol=1e-6)
    assert [s["sopInstanceUid"] for s in side["slices"]] == list(study.plan.sop_instance_uids)
    assert side["shape"] == list(loaded.shape)


def check_preview(path: Path) -> None:
    """A PNG of a sensible size that is not blank."""
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG" and image.mode == "RGB"
        width, height = image.size
        pixels = np.asarray(image, dtype=np.float64)
    assert 320 <= width <= 1200 and 100 <= height <= 1200
    assert pixels[30:].std() > 10
