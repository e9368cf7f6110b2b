"""``download --format dcm``: the DICOM export inside the download pipeline, end to end.

The image sets are those of the round trip's first data store (``conftest.py``: pydicom's
files and the stand-in CT series, imported through the local stack): 27 instances, 72
frames, multi-frame ones (RT Dose, 15 frames; JPEG baseline, 30; HTJ2K, 2), a binary
segmentation, private sequences and a file whose export notes a loss. They are exported
through the command line with worker processes and in this process (``--workers 1``), in
both syntaxes, and must come back as the files the export core writes, byte for byte, with
the originals' elements and pixels.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.pixels import pixel_array

from hi_async.api import Downloader
from hi_async.cli import main
from hi_async.codecs import crc32
from hi_async.dicom import InstanceFailed, write_dataset_file
from hi_async.dicom.readback import frame_pixels
from hi_async.errors import UsageError
from hi_async.settings import Settings
from tests.faults.test_workers import _KillAWorkerAfter

from .compare import compare
from .conftest import RoundTrip, stack_settings
from .test_roundtrip import AS_IMPORTED, LOSSY_TRANSCODED, _decoded

ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
#: (syntax, --workers): both syntaxes, with worker processes and in this process.
RUNS = [("stored", 2), ("native", 1), ("native", 2), ("stored", 1)]
INSTANCES, FRAMES = 27, 72
DECODE_OR_CRC = r"CRC32 mismatch|does not decode|JPEG 2000 header"


def _cli(endpoint: str, store: str, image_sets: list[str], out: Path, *extra: str,
         ) -> subprocess.CompletedProcess[str]:
    args = ["download", "--endpoint-url", endpoint, "--datastore-id", store, "--out",
            str(out), "--format", "dcm", "--progress-every", "0", *extra]
    for image_set in image_sets:
        args += ["--image-set-id", image_set]
    return subprocess.run([sys.executable, "-m", "hi_async", *args], env={**os.environ, **ENV},
                          capture_output=True, text=True, timeout=120)


def _index(out: Path) -> list[dict[str, Any]]:
    raw = (out / "index.jsonl").read_bytes()
    return [json.loads(line) for line in raw[:raw.rfind(b"\n") + 1].splitlines()]


def _files(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*.dcm")}


def _frames_served(local_stack: Any) -> int:
    return sum(local_stack.stats()["requests"].get("GetImageFrame", {}).values())


@pytest.fixture(scope="module")
def store(round_trip: RoundTrip) -> tuple[str, list[str]]:
    """The first data store of the round trip and its image sets."""
    store = round_trip.store_of["CT_small.dcm"]
    return store, [i for s, i in round_trip.image_sets if s == store]


@pytest.fixture(scope="module")
def exports(endpoint_url: str, store: tuple[str, list[str]],
            tmp_path_factory: pytest.TempPathFactory,
            ) -> dict[tuple[str, int], tuple[Path, subprocess.CompletedProcess[str]]]:
    """Each run of RUNS: its output folder and its process."""
    done = {}
    for syntax, workers in RUNS:
        out = tmp_path_factory.mktemp(f"dcm-{syntax}-{workers}")
        done[syntax, workers] = out, _cli(endpoint_url, store[0], store[1], out, "--dcm-syntax",
                                          syntax, "--workers", str(workers))
    return done


def _image_set_of(round_trip: RoundTrip, name: str) -> str:
    return round_trip.exported("stored", name).parents[1].name


def _exported(round_trip: RoundTrip, out: Path, name: str) -> Path:
    core = round_trip.exported("stored", name)
    return out / core.relative_to(round_trip.out["stored"])


@pytest.mark.parametrize(("syntax", "workers"), RUNS)
def test_every_instance_is_written_at_its_path_and_journaled_per_frame(
        exports: dict[tuple[str, int], tuple[Path, Any]], round_trip: RoundTrip,
        store: tuple[str, list[str]], syntax: str, workers: int) -> None:
    out, proc = exports[syntax, workers]
    assert proc.returncode == 0, proc.stderr
    # The contract's layout: DIR/<imageSetId>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm.
    assert _files(out) == _all_paths(round_trip, store[1])
    assert len(_files(out)) == INSTANCES
    index = _index(out)
    assert len(index) == FRAMES and {e["status"] for e in index} == {"verified"}
    for entry in index:
        assert entry["path"] == (f"{entry['imageSetId']}/{entry['seriesInstanceUid']}/"
                                 f"{entry['sopInstanceUid']}.dcm")
        # What a resume checks the file against: the whole instance file's size and CRC32.
        data = (out / entry["path"]).read_bytes()
        assert (entry["fileBytes"], entry["fileCrc32"]) == (len(data), zlib.crc32(data))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dicom"] | {"instancesPerSecond": 0} == {
        "instances": INSTANCES, "written": INSTANCES, "failed": 0, "noted": 1, "resumed": 0,
        "instancesPerSecond": 0}
    assert summary["dicom"]["instancesPerSecond"] > 0
    assert bool(summary.get("workers")) == (workers > 1)
    assert f"DICOM instances {INSTANCES}: written {INSTANCES}, failed 0, resumed 0, noted 1" \
        in proc.stdout
    assert not list(out.rglob("*.tmp"))


@pytest.mark.parametrize(("syntax", "workers"), RUNS)
def test_the_files_are_the_export_cores_byte_for_byte(
        exports: dict[tuple[str, int], tuple[Path, Any]], round_trip: RoundTrip, syntax: str,
        workers: int) -> None:
    out, _ = exports[syntax, workers]
    for rel in _files(out):
        assert (out / rel).read_bytes() == (round_trip.out[syntax] / rel).read_bytes(), rel


@pytest.mark.parametrize(("syntax", "workers"), [("stored", 2), ("native", 1)])
def test_the_files_read_back_with_the_originals_elements_and_pixels(
        exports: dict[tuple[str, int], tuple[Path, Any]], round_trip: RoundTrip,
        store: tuple[str, list[str]], syntax: str, workers: int) -> None:
    out, _ = exports[syntax, workers]
    names = [n for n, s in round_trip.store_of.items() if s == store[0]]
    assert len(names) == INSTANCES
    for name in names:
        original = round_trip.source(name).dataset()
        exported = pydicom.dcmread(_exported(round_trip, out, name))
        assert compare(original, exported).differences == [], name
        if name in AS_IMPORTED | LOSSY_TRANSCODED:
            continue
        want = pixel_array(original, raw=True)
        assert np.array_equal(_decoded(exported, name).reshape(want.shape), want), name


@pytest.mark.parametrize(("syntax", "workers"), [("stored", 2), ("native", 1)])
def test_every_frame_read_back_from_its_file_has_the_metadatas_checksum(
        exports: dict[tuple[str, int], tuple[Path, Any]], syntax: str, workers: int) -> None:
    # What --verify-existing checks on resume, for every kind of frame written here.
    out, _ = exports[syntax, workers]
    for entry in _index(out):
        pixels = frame_pixels(str(out / entry["path"]), entry)
        assert crc32(pixels) == entry["expectedCrc32"], entry


def test_multi_frame_instances_and_a_segmentation_keep_their_frames(
        exports: dict[tuple[str, int], tuple[Path, Any]], round_trip: RoundTrip) -> None:
    for key in exports:
        out, _ = exports[key]
        dose = pydicom.dcmread(_exported(round_trip, out, "rtdose.dcm"))
        assert int(dose.NumberOfFrames) == 15
        ybr = pydicom.dcmread(_exported(round_trip, out, "examples_ybr_color.dcm"))
        assert int(ybr.NumberOfFrames) == 30
        segmentation = pydicom.dcmread(_exported(round_trip, out, "liver_1frame.dcm"))
        original = round_trip.source("liver_1frame.dcm").dataset()
        assert segmentation.BitsAllocated == 1
        assert np.array_equal(segmentation.pixel_array, original.pixel_array)


@pytest.fixture
def corrupt(local_stack: Any) -> Iterator[None]:
    """Every frame the stack serves has bits flipped, so none can verify."""
    local_stack.set_faults(corrupt_rate=1.0)
    try:
        yield
    finally:
        local_stack.set_faults(corrupt_rate=0.0)


@pytest.mark.parametrize("workers", [2, 1])
def test_an_instance_whose_frame_fails_its_crc_is_not_written_and_is_named(
        endpoint_url: str, round_trip: RoundTrip, store: tuple[str, list[str]], local_stack: Any,
        tmp_path: Path, workers: int) -> None:
    dose = round_trip.source("rtdose.dcm").dataset()
    image_set = _image_set_of(round_trip, "rtdose.dcm")
    local_stack.set_faults(corrupt_rate=1.0)
    try:
        failed = _cli(endpoint_url, store[0], [image_set], tmp_path, "--workers", str(workers))
    finally:
        local_stack.set_faults(corrupt_rate=0.0)
    assert failed.returncode == 1, failed.stderr
    named = [line for line in failed.stderr.splitlines() if line.startswith("failed:")]
    assert len(named) == 1, failed.stderr
    assert named[0].startswith(f"failed: instance {dose.SOPInstanceUID} of series "
                               f"{dose.SeriesInstanceUID} in image set {image_set} was not "
                               "written: frame ")
    assert re.search(DECODE_OR_CRC, named[0])
    assert _files(tmp_path) == set()
    index = _index(tmp_path)
    assert len(index) == 15 and {e["status"] for e in index} == {"failed"}
    assert all(e["path"] is None and e["error"].startswith("instance not written: ")
               for e in index)
    assert json.loads((tmp_path / "summary.json").read_text())["dicom"]["failed"] == 1
    # The frames are fine again: a rerun writes the instance.
    again = _cli(endpoint_url, store[0], [image_set], tmp_path, "--workers", str(workers))
    assert again.returncode == 0, again.stderr
    assert _files(tmp_path) == {f"{image_set}/{dose.SeriesInstanceUID}/{dose.SOPInstanceUID}.dcm"}


def test_an_export_killed_mid_run_resumes_and_writes_only_the_missing_instances(
        endpoint_url: str, round_trip: RoundTrip, store: tuple[str, list[str]], local_stack: Any,
        tmp_path: Path) -> None:
    assert round_trip.ct_image_set is not None
    image_sets = [round_trip.ct_image_set[1], _image_set_of(round_trip, "rtdose.dcm")]
    args = ["download", "--endpoint-url", endpoint_url, "--datastore-id", store[0], "--out",
            str(tmp_path), "--format", "dcm", "--quiet", "--fetchers", "2"]
    for image_set in image_sets:
        args += ["--image-set-id", image_set]
    local_stack.set_faults(latency_ms=200)
    proc = subprocess.Popen([sys.executable, "-m", "hi_async", *args, "--workers", "2"],
                            env={**os.environ, **ENV},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "index.jsonl").exists() or not _index(tmp_path):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        local_stack.set_faults(latency_ms=0)
    journaled = {e["path"] for e in _index(tmp_path)}
    expected = _all_paths(round_trip, image_sets)
    assert len(expected) == 13
    assert 1 <= len(journaled) < len(expected), "the run was not killed mid-run"
    # One file written then changed (a bit flipped, same size): it is not the one
    # journaled, so its instance is fetched and written again.
    changed = sorted(journaled)[0]
    data = bytearray((tmp_path / changed).read_bytes())
    data[-3] ^= 0x01
    (tmp_path / changed).write_bytes(bytes(data))
    kept = {path: (tmp_path / path).stat() for path in journaled - {changed}}
    frames_of = {p: 15 if _dose_path(round_trip, p) else 1 for p in expected}
    to_fetch = sum(frames_of[p] for p in expected - set(kept))
    before = _settled(local_stack)

    # --verify-existing: each frame of the files kept is also decoded from its file.
    done = subprocess.run([sys.executable, "-m", "hi_async", *args, "--workers", "1",
                           "--verify-existing"],
                          env={**os.environ, **ENV}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert _frames_served(local_stack) - before == to_fetch
    assert _files(tmp_path) == expected
    for path, stat in kept.items():  # written once, by the killed run
        now = (tmp_path / path).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns), path
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["dicom"]["resumed"] == len(kept)
    assert summary["dicom"]["written"] == len(expected) == 13
    assert summary["warnings"] == [f"{frames_of[changed]} frame(s) journaled as verified "
                                   "had a missing, changed or unchecked file and are fetched "
                                   "again"]
    assert (tmp_path / changed).read_bytes() == (round_trip.out["stored"] / changed).read_bytes()
    assert not list(tmp_path.rglob("*.tmp"))


def _all_paths(round_trip: RoundTrip, image_sets: list[str]) -> set[str]:
    return {p for p in _files(round_trip.out["stored"]) if p.split("/")[0] in image_sets}


def _dose_path(round_trip: RoundTrip, path: str) -> bool:
    dose = round_trip.source("rtdose.dcm").dataset()
    return path.endswith(f"/{dose.SOPInstanceUID}.dcm")


def _settled(local_stack: Any) -> int:
    """GetImageFrame count once the killed run's requests still in the server are answered."""
    count = _frames_served(local_stack)
    while True:
        time.sleep(0.3)
        again = _frames_served(local_stack)
        if again == count:
            return count
        count = again


async def test_a_worker_killed_mid_export_is_replaced_and_its_instances_run_again_whole(
        endpoint_url: str, round_trip: RoundTrip, store: tuple[str, list[str]],
        local_stack: Any, tmp_path: Path) -> None:
    assert round_trip.ct_image_set is not None
    image_sets = [round_trip.ct_image_set[1], _image_set_of(round_trip, "rtdose.dcm")]
    progress = _KillAWorkerAfter(1)
    settings = stack_settings(endpoint_url).replace(workers=2, output_format="dcm")
    local_stack.set_faults(latency_ms=100)
    try:
        async with Downloader(settings) as dl:
            summary = await dl.download(store[0], image_set_ids=image_sets, out_dir=tmp_path,
                                        progress=progress)
            restarts = dl._workers.restarts if dl._workers is not None else 0
    finally:
        local_stack.set_faults(latency_ms=0)
    assert progress.killed and restarts == 1
    assert summary.dicom is not None and (summary.dicom.written, summary.dicom.failed) == (13, 0)
    index = _index(tmp_path)
    assert len(index) == 27 and len({e["imageFrameId"] for e in index}) == 27
    expected = _all_paths(round_trip, image_sets)
    assert _files(tmp_path) == expected
    for rel in expected:
        assert (tmp_path / rel).read_bytes() == (round_trip.out["stored"] / rel).read_bytes()


async def test_instances_yields_datasets_equal_to_the_files(
        endpoint_url: str, exports: dict[tuple[str, int], tuple[Path, Any]],
        store: tuple[str, list[str]], tmp_path: Path) -> None:
    for syntax, out_dir in (("native", tmp_path / "written"), ("stored", None)):
        async with Downloader(stack_settings(endpoint_url)) as dl:
            got = [ds async for ds in dl.instances(store[0], image_set_ids=store[1],
                                                   syntax=syntax, out_dir=out_dir)]
        assert len(got) == INSTANCES
        cli_out, _ = exports[syntax, 2]
        for ds in got:
            [path] = cli_out.rglob(f"{ds.SOPInstanceUID}.dcm")
            rel = path.relative_to(cli_out)
            mine = write_dataset_file(tmp_path / "mine" / rel, ds)
            assert mine.read_bytes() == path.read_bytes(), rel
            if out_dir is not None:
                assert (out_dir / rel).read_bytes() == path.read_bytes(), rel


async def test_instances_raises_instance_failed_naming_the_instance(
        endpoint_url: str, round_trip: RoundTrip, store: tuple[str, list[str]],
        corrupt: None) -> None:
    dose = round_trip.source("rtdose.dcm").dataset()
    async with Downloader(stack_settings(endpoint_url)) as dl:
        with pytest.raises(InstanceFailed) as caught:
            async for _ in dl.instances(store[0],
                                        image_set_ids=[_image_set_of(round_trip, "rtdose.dcm")]):
                raise AssertionError("no instance can verify")
    assert caught.value.sop_uid == dose.SOPInstanceUID
    assert re.search(DECODE_OR_CRC, caught.value.reason) and caught.value.frame_id


def test_dcm_syntax_without_dcm_files_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["download", "--datastore-id", "a" * 32, "--image-set-id", "b" * 32, "--out",
                 str(tmp_path), "--format", "jph", "--dcm-syntax", "native"])
    assert code == 2
    assert "--dcm-syntax applies to DICOM files only" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


async def test_frames_with_pixels_refuses_dicom_output_and_points_to_instances(
        endpoint_url: str, store: tuple[str, list[str]], tmp_path: Path) -> None:
    settings = stack_settings(endpoint_url).replace(output_format="dcm")
    async with Downloader(settings) as dl:
        with pytest.raises(UsageError, match="cannot write DICOM files") as caught:
            async for _ in dl.frames(store[0], image_set_ids=store[1], out_dir=tmp_path):
                raise AssertionError("nothing is downloaded")
    assert caught.value.hint is not None and "instances(" in caught.value.hint


def test_an_unknown_dicom_syntax_is_refused() -> None:
    with pytest.raises(UsageError, match="unknown DICOM syntax 'jpeg'"):
        Settings(dcm_syntax="jpeg")  # type: ignore[arg-type]


@pytest.mark.parametrize("flags", [["--volume", "nifti"], ["--preview"]])
def test_volumes_with_dicom_files_are_a_usage_error(
        flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["download", "--datastore-id", "a" * 32, "--image-set-id", "b" * 32, "--out",
                 str(tmp_path), "--format", "dcm", *flags])
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot be combined with --format dcm" in err
    assert "two output folders" in err
    assert list(tmp_path.iterdir()) == []
