"""``python -m hi_async download`` in a subprocess: exit codes, messages, no secrets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hi_async.local.data.synthetic import custom_spec, generate_series
from tests.local.helpers import Seeded

from .conftest import SECRET


def _cli(args: list[str], env: dict[str, str], endpoint: str | None = None
         ) -> subprocess.CompletedProcess[str]:
    full = [sys.executable, "-m", "hi_async", "download", *args]
    if endpoint:
        full += ["--endpoint-url", endpoint]
    return subprocess.run(full, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120)


def _base(seeded: Seeded, out: Path) -> list[str]:
    return ["--datastore-id", seeded.datastore_id, "--image-set-id", seeded.image_set_id,
            "--out", str(out), "--fetchers", "4", "--decoders", "1"]


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text and "Signature=" not in text


def test_exit_0_and_summary_when_every_frame_is_verified(
        endpoint_url: str, aws_env: dict[str, str], seeded_sets: list[Seeded],
        tmp_path: Path) -> None:
    done = _cli([*_base(seeded_sets[0], tmp_path), "--quiet"], aws_env, endpoint_url)
    assert done.returncode == 0, done.stderr
    assert "verified 5" in done.stdout and "Traceback" not in done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["verified"] == 5 and summary["framesPerSecond"] > 0
    files = [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file()]
    _no_secret(done.stdout, done.stderr, *files)


def test_exit_1_names_each_failed_frame(endpoint_url: str, aws_env: dict[str, str],
                                        seeded_sets: list[Seeded], tmp_path: Path,
                                        faults: Any) -> None:
    faults(corrupt_rate=1.0)
    done = _cli(_base(seeded_sets[1], tmp_path), aws_env, endpoint_url)
    assert done.returncode == 1
    index = {e["imageFrameId"]: e for e in map(json.loads,
                                               (tmp_path / "index.jsonl").read_text().splitlines())}
    for fid in seeded_sets[1].frame_ids:
        # Every fetch of it was corrupted; rarely a flipped bit leaves the pixels whole (a
        # stuffing bit), and then its CRC32 rightly verifies it.
        if index[fid]["status"] == "failed":
            assert f"frame {fid}: " in done.stderr
        else:
            assert index[fid]["actualCrc32"] == index[fid]["expectedCrc32"]
    assert sum(e["status"] == "failed" for e in index.values()) >= 1
    _no_secret(done.stdout, done.stderr)


@pytest.mark.parametrize("args, message", [
    (["--datastore-id", "../etc", "--all"], "data store ID"),
    (["--datastore-id", "a" * 32, "--image-set-id", "a/../b" + "0" * 26], "image set ID"),
    (["--datastore-id", "a" * 32, "--import-job-id", "JOB!"], "job ID"),
    (["--datastore-id", "a" * 32, "--all", "--image-set-id", "b" * 32], "not allowed with"),
    (["--datastore-id", "a" * 32, "--all", "--fetchers", "0"], "fetchers"),
])
def test_exit_2_for_bad_input(tmp_path: Path, aws_env: dict[str, str], args: list[str],
                              message: str) -> None:
    done = _cli([*args, "--out", str(tmp_path / "o")], aws_env, "http://127.0.0.1:9")
    assert done.returncode == 2 and message in done.stderr
    assert "Traceback" not in done.stderr


def test_output_path_that_is_a_file(tmp_path: Path, aws_env: dict[str, str]) -> None:
    (tmp_path / "f").write_text("x")
    done = _cli(["--datastore-id", "a" * 32, "--all", "--out", str(tmp_path / "f")], aws_env)
    assert done.returncode == 2 and "not a folder" in done.stderr


def test_an_endpoint_that_does_not_answer(tmp_path: Path, aws_env: dict[str, str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = _cli(["--datastore-id", "a" * 32, "--all", "--out", str(tmp_path)], aws_env,
                f"http://127.0.0.1:{port}")
    assert done.returncode == 2 and "does not answer" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_credentials(tmp_path: Path, endpoint_url: str, seeded_sets: list[Seeded]
                             ) -> None:
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": "",
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_DEFAULT_REGION": "us-east-1"}
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    full_env.update({k: v for k, v in env.items() if v})
    done = subprocess.run([sys.executable, "-m", "hi_async", "download", "--endpoint-url",
                           endpoint_url, *_base(seeded_sets[0], tmp_path)],
                          env=full_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "credentials" in done.stderr


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("place", ["before", "after"])
def test_debug_adds_the_traceback_and_keeps_the_exit_code(
        tmp_path: Path, aws_env: dict[str, str], place: str) -> None:
    args = ["download", "--datastore-id", "0" * 32, "--all", "--out", str(tmp_path),
            "--endpoint-url", f"http://127.0.0.1:{_closed_port()}"]
    debug = ["--debug", *args] if place == "before" else [*args, "--debug"]
    runs = [subprocess.run([sys.executable, "-m", "hi_async", *argv],
                           env={**os.environ, **aws_env}, capture_output=True, text=True,
                           timeout=60) for argv in (args, debug)]
    plain, traced = runs
    assert plain.returncode == traced.returncode == 2, (plain.stderr, traced.stderr)
    assert "Traceback" not in plain.stderr and "Traceback" in traced.stderr
    assert "error:" in plain.stderr and "error:" in traced.stderr


@pytest.mark.parametrize("command", [["download", "--datastore-id", "0" * 32, "--all"],
                                     ["run", "--dry-run", "--yes"], ["cleanup"]])
def test_an_empty_out_is_refused_not_taken_as_the_current_folder(
        tmp_path: Path, command: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "hi_async", *command, "--out", ""],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--out: the folder name is empty" in done.stderr
    assert not list(tmp_path.iterdir())


def test_import_job_states(endpoint_url: str, aws_env: dict[str, str], backend: Any,
                           seeded_sets: list[Seeded], tmp_path: Path) -> None:
    ds = seeded_sets[0].datastore_id
    job, _ = backend.start_job(ds, data_access_role_arn="arn:aws:iam::123456789012:role/r",
                               input_s3_uri="s3://in-bucket/x/", output_s3_uri="s3://out-b/x/")
    args = ["--datastore-id", ds, "--import-job-id", job.job_id, "--out", str(tmp_path)]
    done = _cli(args, aws_env, endpoint_url)
    assert done.returncode == 1 and "SUBMITTED" in done.stderr and "wait" in done.stderr
    backend.finish_job(ds, job.job_id, "FAILED", "input was empty")
    done = _cli(args, aws_env, endpoint_url)
    assert done.returncode == 1 and "FAILED" in done.stderr and "input was empty" in done.stderr


def test_download_by_import_job(endpoint_url: str, aws_env: dict[str, str], mi: Any, s3: Any,
                                tmp_path: Path) -> None:
    spec = custom_spec("ct", 3, 64, 64, folder="client-job")
    s3.create_bucket(Bucket="client-job-in")
    for name, data in generate_series(spec):
        s3.put_object(Bucket="client-job-in", Key=f"series/{name}", Body=data)
    ds = mi.create_datastore(datastoreName="client-job")["datastoreId"]
    while mi.get_datastore(datastoreId=ds)["datastoreProperties"]["datastoreStatus"] != "ACTIVE":
        time.sleep(0.1)
    job = mi.start_dicom_import_job(
        datastoreId=ds, dataAccessRoleArn="arn:aws:iam::123456789012:role/r",
        inputS3Uri="s3://client-job-in/series/", outputS3Uri="s3://client-job-in/out/")["jobId"]
    for _ in range(600):
        status = mi.get_dicom_import_job(datastoreId=ds, jobId=job)["jobProperties"]["jobStatus"]
        if status in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.1)
    assert status == "COMPLETED"
    done = _cli(["--datastore-id", ds, "--import-job-id", job, "--out", str(tmp_path),
                 "--format", "npy"], aws_env, endpoint_url)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["verified"] == 3


def test_ctrl_c_exits_130_and_the_next_run_resumes(
        endpoint_url: str, aws_env: dict[str, str], seeded_sets: list[Seeded],
        tmp_path: Path, faults: Any) -> None:
    faults(latency_ms=150)
    seeded = seeded_sets[0]
    args = [sys.executable, "-m", "hi_async", "download", "--endpoint-url", endpoint_url,
            *_base(seeded, tmp_path), "--fetchers", "1", "--pool", "process", "--quiet"]
    proc = subprocess.Popen(args, env={**os.environ, **aws_env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    index = tmp_path / "index.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (index.exists() and index.read_text()):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    assert not list(tmp_path.glob("*/*.tmp"))
    kept = len(index.read_text().splitlines())
    assert 1 <= kept < 5
    faults(latency_ms=0)
    done = _cli(_base(seeded, tmp_path), aws_env, endpoint_url)
    assert done.returncode == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["resumed"] == kept and summary["verified"] == 5


def test_a_second_run_into_the_same_folder_is_refused_naming_the_first(
        endpoint_url: str, aws_env: dict[str, str], seeded_sets: list[Seeded],
        tmp_path: Path, faults: Any) -> None:
    faults(latency_ms=1500)  # the first run takes 10 s or more: it is still running
    seeded = seeded_sets[0]
    first = subprocess.Popen(
        [sys.executable, "-m", "hi_async", "download", "--endpoint-url", endpoint_url,
         *_base(seeded, tmp_path), "--fetchers", "1", "--workers", "1", "--quiet"],
        env={**os.environ, **aws_env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        lock = tmp_path / ".hi_async.lock"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (lock.exists() and lock.read_text()):
            time.sleep(0.02)
        second = _cli(_base(seeded, tmp_path), aws_env, endpoint_url)
        assert second.returncode == 2, second.stderr
        assert f"another hi_async run (PID {first.pid}) is writing to" in second.stderr
        assert first.poll() is None  # the first run goes on undisturbed
        first.kill()  # SIGKILL: the kernel releases the lock, the stale file stays
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    faults(latency_ms=0)
    rerun = _cli(_base(seeded, tmp_path), aws_env, endpoint_url)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["verified"] == 5
    lines = (tmp_path / "index.jsonl").read_text().splitlines()
    assert len({json.loads(line)["imageFrameId"] for line in lines}) == len(lines) == 5
    assert not lock.exists()
