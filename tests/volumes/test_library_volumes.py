"""``Downloader.volumes()``: each series as a Volume as it completes, equal to the files a
download writes, with or without an output folder."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import anyio
import numpy as np
import pytest

import hi_async
from hi_async.volumes import volume_path

from .standins import StandIns, check_nifti
from .test_download_volumes import settings


def collect(url: str, standins: StandIns, out: Path | None, *names: str,
            **kw: object) -> list[hi_async.Volume]:
    async def main() -> list[hi_async.Volume]:
        async with hi_async.Downloader(settings(url, **kw)) as dl:
            return [v async for v in dl.volumes(
                standins.datastore_id, image_set_ids=standins.image_set_ids(*names),
                out_dir=out)]

    return anyio.run(main)


def test_volumes_equal_the_files_written_with_worker_processes(
        standins: StandIns, endpoint_url: str, tmp_path: Path) -> None:
    volumes = collect(endpoint_url, standins, tmp_path / "out", workers=2,
                      output_format="none", volume="npy")
    assert sorted(v.image_set_id for v in volumes) == sorted(standins.image_set_ids())
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(summary["workers"]) == 2 and len(summary["volumes"]) == 4
    for volume in volumes:
        (study,) = [s for s in standins.studies.values()
                    if s.image_set_id == volume.image_set_id]
        npy = volume_path(tmp_path / "out", study.plan, "npy")
        assert np.array_equal(volume.array, np.load(npy))
        assert volume.array.dtype == np.load(npy).dtype and not volume.memory_mapped
        side = json.loads(npy.with_suffix(".json").read_text())
        assert volume.sidecar == side
        np.testing.assert_allclose(volume.affine, side["affine"])
        assert volume.spacing == tuple(side["spacing"])
        assert (volume.slope, volume.intercept) == (side["rescale"]["slope"],
                                                    side["rescale"]["intercept"])
        assert volume.name == volume.series_instance_uid == study.plan.series_instance_uid
        assert volume.warnings == () and volume.series_description == side["seriesDescription"]
        check_nifti(volume.to_nifti(tmp_path / f"{volume.name}.nii.gz"), study)


def test_volumes_without_an_output_folder_leave_nothing_behind(
        standins: StandIns, endpoint_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (volume,) = collect(endpoint_url, standins, None, "mri-head", workers=1)
    study = standins.studies["mri-head"]
    assert volume.shape == (256, 256, 192)
    assert np.array_equal(volume.array, study.values)
    assert list(tmp_path.iterdir()) == []  # the assembly folder went with the run


def test_breaking_out_of_volumes_stops_the_download(
        standins: StandIns, endpoint_url: str) -> None:
    async def main() -> list[str]:
        names = []
        async with hi_async.Downloader(settings(endpoint_url, workers=1)) as dl:
            async for volume in dl.volumes(standins.datastore_id,
                                           image_set_ids=standins.image_set_ids()):
                names.append(volume.name)
                break
            # The Downloader goes on serving after a consumer left early.
            async for volume in dl.volumes(standins.datastore_id,
                                           image_set_ids=standins.image_set_ids("ct-chest")):
                names.append(volume.name)
        return names

    first, chest = anyio.run(main)
    assert first in {s.plan.name for s in standins.studies.values()}
    assert chest == standins.studies["ct-chest"].plan.name


def test_volume_files_without_an_output_folder_are_a_usage_error(
        standins: StandIns, endpoint_url: str) -> None:
    async def main() -> None:
        async with hi_async.Downloader(settings(endpoint_url, workers=1,
                                                volume="nifti")) as dl:
            await dl.download(standins.datastore_id, image_set_ids=standins.image_set_ids())

    with pytest.raises(hi_async.UsageError, match="need an output folder") as caught:
        anyio.run(main)
    assert "Downloader.volumes()" in str(caught.value)


def test_an_unknown_volume_format_is_a_usage_error() -> None:
    with pytest.raises(hi_async.UsageError, match="unknown volume format 'dicom'") as caught:
        hi_async.Settings(volume="dicom")  # type: ignore[arg-type]
    assert "nifti or npy" in str(caught.value)


def test_volumes_into_dicom_output_are_a_usage_error(
        standins: StandIns, endpoint_url: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with hi_async.Downloader(settings(endpoint_url, workers=1,
                                                output_format="dcm")) as dl:
            async for _ in dl.volumes(standins.datastore_id,
                                      image_set_ids=standins.image_set_ids(), out_dir=tmp_path):
                raise AssertionError("nothing is assembled")

    with pytest.raises(hi_async.UsageError, match="writes frames, not DICOM files") as caught:
        anyio.run(main)
    assert "instances()" in str(caught.value)
    assert list(tmp_path.iterdir()) == []
