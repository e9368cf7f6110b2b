"""Volumes across interrupted and repeated downloads: a rerun completes them, reads the
frames it already has back from their files (fetching only what is missing or damaged),
and keeps volumes that are already whole on disk."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import hi_async
from hi_async.volumes import buffer_path, volume_path
from tests.faults.conftest import frames_served
from tests.faults.test_crash import _settled_count

from .standins import StandIns, check_nifti
from .test_download_volumes import ENV, settings

STUDY = "ct-pelvis"  # 57 frames of 512 x 512


def download(url: str, standins: StandIns, out: Path, name: str = STUDY,
             **kw: Any) -> hi_async.Summary:
    async def main() -> hi_async.Summary:
        async with hi_async.Downloader(settings(url, **{"workers": 1, **kw})) as dl:
            return await dl.download(standins.datastore_id,
                                     image_set_ids=standins.image_set_ids(name), out_dir=out)

    return anyio.run(main)


def test_ctrl_c_then_a_rerun_completes_the_volume(
        standins: StandIns, local_stack: Any, endpoint_url: str, tmp_path: Path,
        faults: Any) -> None:
    study = standins.studies[STUDY]
    faults(latency_ms=150)
    args = [sys.executable, "-m", "hi_async", "download", "--endpoint-url", endpoint_url,
            "--datastore-id", standins.datastore_id, "--image-set-id", study.image_set_id,
            "--out", str(tmp_path), "--volume", "nifti", "--workers", "2", "--fetchers", "2",
            "--quiet"]
    proc = subprocess.Popen(args, env={**os.environ, **ENV}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    index = tmp_path / "index.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (index.exists() and index.read_text()):
        time.sleep(0.02)
    assert buffer_path(tmp_path, study.plan).exists()  # the volume was being assembled
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    assert not list(tmp_path.rglob("*.tmp"))  # the half-filled buffer went with it
    assert not list((tmp_path / study.image_set_id).glob("volumes/*.nii.gz"))
    kept = len(index.read_text().splitlines())
    assert 1 <= kept < 57
    faults(latency_ms=0)
    before = _settled_count(local_stack)  # the killed run's requests answered
    done = subprocess.run(args, env={**os.environ, **ENV}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "volumes: 1 written" in done.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["resumed"] == kept and summary["verified"] == 57
    assert frames_served(local_stack) - before == 57 - kept  # what it had was read back
    check_nifti(volume_path(tmp_path, study.plan, "nifti"), study)


@pytest.mark.parametrize("fmt", ["jph", "npy", "raw"])
def test_resumed_frames_are_read_back_and_damaged_ones_fetched_again(
        standins: StandIns, local_stack: Any, endpoint_url: str, tmp_path: Path,
        fmt: str) -> None:
    study = standins.studies[STUDY]
    first = download(endpoint_url, standins, tmp_path, output_format=fmt, volume="nifti")
    assert first.volumes is not None and first.volumes[0]["status"] == "written"
    nifti = volume_path(tmp_path, study.plan, "nifti")
    original = tmp_path / "first.nii.gz"
    shutil.copy(nifti, original)
    # A crash after the frames, before the volume: its files never made it, its buffer
    # file was left behind, the journal lost its last five lines, and one frame file
    # was damaged on disk since it was verified.
    nifti.unlink()
    nifti.with_name(f"{study.plan.name}.json").unlink()
    buffer_path(tmp_path, study.plan).write_bytes(b"left by a crash")
    lines = (tmp_path / "index.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "index.jsonl").write_text("".join(lines[:-5]))
    damaged = tmp_path / json.loads(lines[0])["path"]
    damaged.write_bytes(damaged.read_bytes()[:-64] + bytes(64))

    before = frames_served(local_stack)
    second = download(endpoint_url, standins, tmp_path, output_format=fmt, volume="nifti")
    assert second.ok and frames_served(local_stack) - before == 5 + 1
    assert second.resumed == 57 - 5 - 1
    assert second.volumes is not None and second.volumes[0]["status"] == "written"
    assert nifti.read_bytes() == original.read_bytes()
    assert not list(tmp_path.rglob("*.tmp"))

    # Everything in place: nothing fetched, nothing read, the volume kept as it is.
    mtime = nifti.stat().st_mtime_ns
    before = frames_served(local_stack)
    third = download(endpoint_url, standins, tmp_path, output_format=fmt, volume="nifti")
    assert frames_served(local_stack) == before and third.resumed == 57
    assert third.volumes is not None and third.volumes[0]["status"] == "kept"
    assert nifti.stat().st_mtime_ns == mtime


def test_without_frame_files_a_rerun_fetches_what_the_volume_needs(
        standins: StandIns, local_stack: Any, endpoint_url: str, tmp_path: Path) -> None:
    study = standins.studies["mri-head"]
    download(endpoint_url, standins, tmp_path, "mri-head", output_format="none", volume="npy")
    npy = volume_path(tmp_path, study.plan, "npy")
    npy.unlink()
    before = frames_served(local_stack)
    again = download(endpoint_url, standins, tmp_path, "mri-head", output_format="none",
                     volume="npy")
    assert frames_served(local_stack) - before == 192 and again.resumed == 0
    assert again.volumes is not None and again.volumes[0]["status"] == "written"
    assert npy.is_file()


def test_failed_frames_leave_no_volume_and_a_rerun_completes_it(
        standins: StandIns, endpoint_url: str, tmp_path: Path, faults: Any) -> None:
    study = standins.studies["ct-chest"]
    faults(corrupt_rate=1.0)
    failed = download(endpoint_url, standins, tmp_path, "ct-chest", volume="nifti",
                      preview=True, mismatch_refetches=0)
    assert failed.failed == 2 and failed.volumes is not None
    (entry,) = failed.volumes
    assert entry["status"] == "incomplete" and entry["path"] is None
    assert "2 of 2 frames did not arrive" in entry["note"] and "rerun" in entry["note"]
    assert not list((tmp_path / study.image_set_id).rglob("*.nii.gz"))
    assert not list(tmp_path.rglob("*.png")) and not list(tmp_path.rglob("*.tmp"))
    faults(corrupt_rate=0.0)
    done = download(endpoint_url, standins, tmp_path, "ct-chest", volume="nifti",
                    preview=True)
    assert done.ok and done.volumes is not None and done.volumes[0]["status"] == "written"
    check_nifti(volume_path(tmp_path, study.plan, "nifti"), study)
