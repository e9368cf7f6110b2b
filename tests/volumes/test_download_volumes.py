"""``download --volume`` / ``--preview`` end to end on the local stack: the four stand-in
studies through the command line with worker processes and through the library in this
process, and the core's geometry cases through the pipeline; every file checked against
the core's reference volume or dcm2niix."""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import nibabel as nib
import numpy as np
import pytest

import hi_async
from hi_async.settings import Settings
from hi_async.stages import volumes as volume_stage
from hi_async.volumes import plan_volumes, volume_path, write_nifti

from .conftest import Study
from .standins import (
    NAMES,
    StandIns,
    check_nifti,
    check_npy,
    check_preview,
    dcm2niix,
    dicom_files,
)
from .test_against_dcm2niix import AFFINE_MM, assemble, canonical

ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


def settings(url: str, **kw: Any) -> Settings:
    return Settings(endpoint_url=url, region="us-east-1", access_key_id="test",
                    secret_access_key="test", fetchers=16, decoders=2,
                    backoff_base=0.01, backoff_cap=0.05, **kw)


def cli(url: str, standins: StandIns, out: Path, *extra: str, names: tuple[str, ...] = NAMES,
        ) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "hi_async", "download", "--endpoint-url", url,
            "--datastore-id", standins.datastore_id, "--out", str(out), "--fetchers", "16",
            *extra]
    for image_set_id in standins.image_set_ids(*names):
        args += ["--image-set-id", image_set_id]
    return subprocess.run(args, env={**os.environ, **ENV}, capture_output=True, text=True,
                          timeout=180)


def summary_volumes(out: Path) -> dict[str, dict[str, Any]]:
    """summary.json's volume entries by image set ID (one volume per stand-in)."""
    entries = json.loads((out / "summary.json").read_text())["volumes"]
    by_set = {e["imageSetId"]: e for e in entries}
    assert len(by_set) == len(entries)
    return by_set


@pytest.fixture(scope="module")
def cli_run(standins: StandIns, endpoint_url: str, tmp_path_factory: pytest.TempPathFactory,
            ) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The four studies downloaded once by the command line, with two worker processes."""
    out = tmp_path_factory.mktemp("cli-volumes")
    done = cli(endpoint_url, standins, out, "--format", "npy", "--volume", "nifti",
               "--preview", "--workers", "2", "--quiet")
    return out, done


def test_cli_with_worker_processes_writes_each_studys_volume(
        cli_run: tuple[Path, subprocess.CompletedProcess[str]], standins: StandIns) -> None:
    out, done = cli_run
    assert done.returncode == 0, done.stderr
    assert "volumes: 4 written; 4 previews" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["workers"]) == 2 and summary["verified"] == 343
    by_set = summary_volumes(out)
    for study in standins.studies.values():
        entry = by_set[study.image_set_id]
        plan = study.plan
        assert entry["status"] == "written" and entry["warnings"] == [] and not entry["note"]
        assert entry["path"] == f"{study.image_set_id}/volumes/{plan.series_instance_uid}.nii.gz"
        assert entry["shape"] == list(study.values.shape)
        check_nifti(out / entry["path"], study)
        side = json.loads((out / entry["sidecar"]).read_text())
        assert side["seriesInstanceUid"] == plan.series_instance_uid
        assert len(side["slices"]) == plan.slice_count
    assert not list(out.rglob("*.tmp"))


def test_cli_previews_read_back_and_are_not_blank(
        cli_run: tuple[Path, subprocess.CompletedProcess[str]], standins: StandIns) -> None:
    out, _ = cli_run
    by_set = summary_volumes(out)
    for study in standins.studies.values():
        preview = out / by_set[study.image_set_id]["preview"]
        assert preview == (out / study.image_set_id / "previews"
                           / f"{study.plan.series_instance_uid}.png")
        check_preview(preview)


@pytest.mark.parametrize("name", ["ct-pelvis", "mri-head"])
def test_cli_volumes_match_dcm2niix_on_the_same_files(
        cli_run: tuple[Path, subprocess.CompletedProcess[str]], standins: StandIns,
        tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    out, _ = cli_run
    study = standins.studies[name]
    ours_affine, ours = canonical(nib.load(out / summary_volumes(out)[study.image_set_id]
                                           ["path"]))
    root = tmp_path_factory.getbasetemp() / "standin-dicom"
    theirs_affine, theirs = canonical(dcm2niix(dicom_files(study, root),
                                               tmp_path_factory.mktemp(f"dcm2niix-{name}")))
    assert ours.shape == theirs.shape
    assert np.array_equal(ours, theirs)  # integers and an exact rescale: the same values
    assert float(np.max(np.abs(ours_affine - theirs_affine))) <= AFFINE_MM


def test_in_process_format_none_writes_npy_volumes_only(
        standins: StandIns, endpoint_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # One volume in flight at a time: image sets wait their turn, none is starved.
    monkeypatch.setattr(volume_stage, "VOLUMES_IN_FLIGHT", 1)

    async def main() -> hi_async.Summary:
        async with hi_async.Downloader(settings(endpoint_url, workers=1, output_format="none",
                                                volume="npy")) as dl:
            return await dl.download(standins.datastore_id,
                                     image_set_ids=standins.image_set_ids(), out_dir=tmp_path)

    summary = anyio.run(main)
    assert summary.ok and summary.verified == 343 and not summary.workers
    assert summary.volumes is not None and {v["status"] for v in summary.volumes} == {"written"}
    for study in standins.studies.values():
        check_npy(volume_path(tmp_path, study.plan, "npy"), study)
        files = {p.name for p in (tmp_path / study.image_set_id).rglob("*") if p.is_file()}
        name = study.plan.series_instance_uid
        assert files == {f"{name}.npy", f"{name}.json"}  # no frame files, no preview
    index = [json.loads(line) for line in (tmp_path / "index.jsonl").read_text().splitlines()]
    assert len(index) == 343 and {e["path"] for e in index} == {None}


def test_pipeline_volumes_of_the_core_cases_equal_the_cores_own(
        volume_study: Study, endpoint_url: str, tmp_path: Path) -> None:
    """Axial, sagittal, coronal, negative steps, rescaled CT, enhanced multi-frame MR,
    4-D, RGB, uneven spacing, a missing slice: the pipeline's file is byte for byte the
    file the core writes from the same plan and frames."""
    cases = volume_study.cases.values()

    async def main() -> hi_async.Summary:
        async with hi_async.Downloader(settings(endpoint_url, workers=2, output_format="none",
                                                volume="nifti")) as dl:
            return await dl.download(volume_study.datastore_id,
                                     image_set_ids=[c.image_set_id for c in cases],
                                     out_dir=tmp_path / "pipeline")

    summary = anyio.run(main)
    assert summary.ok and summary.volumes is not None
    assert [v["status"] for v in summary.volumes] == ["written"] * len(volume_study.cases)
    for imported in cases:
        plan, array = assemble(imported)
        ours = volume_path(tmp_path / "pipeline", plan, "nifti")
        core = write_nifti(plan, array, volume_path(tmp_path / "core", plan, "nifti"))
        assert filecmp.cmp(ours, core, shallow=False), imported.case.name
        assert filecmp.cmp(ours.with_name(f"{plan.name}.json"),
                           core.with_name(f"{plan.name}.json"), shallow=False)
        (entry,) = [v for v in summary.volumes if v["imageSetId"] == plan.image_set_id]
        assert entry["warnings"] == list(plan.warnings)
        assert plan_volumes(imported.doc)[0][0].name == entry["name"]
