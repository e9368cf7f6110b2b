"""``local seed`` uploads DICOM folders and synthetic series to the local stack's S3."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pydicom
import pytest

from hi_async.local.data.synthetic import custom_spec, instance_name
from hi_async.local.stack import LocalStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    local = LocalStack(data_dir=tmp_path_factory.mktemp("seed")).start()
    try:
        yield local
    finally:
        local.stop()


def _seed(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "PATH": "/usr/bin"}
    return subprocess.run([sys.executable, "-m", "hi_async", "local", "seed",
                           "--endpoint-url", stack.url, *args],
                          capture_output=True, text=True, env=env, timeout=120)


def _keys(stack: LocalStack, bucket: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=stack.url, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_synthetic_series_lands_in_a_new_bucket(stack: LocalStack) -> None:
    done = _seed(stack, "--bucket", "seeded-mr", "--prefix", "mr/head",
                 "--synthetic", "mr", "--instances", "3", "--rows", "64", "--columns", "48")
    assert done.returncode == 0, done.stderr
    spec = custom_spec("mr", 3, 64, 48)
    expected = sorted(f"mr/head/{instance_name(spec.folder, i)}" for i in range(3))
    assert _keys(stack, "seeded-mr") == expected
    assert "uploaded 3 files" in done.stdout


def test_dicom_folder_is_uploaded_recursively(stack: LocalStack, tmp_path: Path) -> None:
    source = Path(pydicom.data.__file__).parent / "test_files"
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name, sub in (("CT_small.dcm", "a"), ("MR_small.dcm", "a/b")):
        (tmp_path / sub / name).write_bytes((source / name).read_bytes())
    done = _seed(stack, "--bucket", "seeded-dir", "--dicom-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert _keys(stack, "seeded-dir") == ["a/CT_small.dcm", "a/b/MR_small.dcm"]


def test_missing_folder_is_a_usage_error(stack: LocalStack, tmp_path: Path) -> None:
    done = _seed(stack, "--bucket", "x-missing", "--dicom-dir", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert "is not a folder" in done.stderr


def test_seed_reports_a_bad_bucket_name_without_a_traceback(endpoint_url: str) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "hi_async", "local", "seed", "--endpoint-url", endpoint_url,
         "--bucket", "no", "--synthetic", "ct", "--instances", "1"],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert proc.returncode == 2
    assert "bucket name" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_seed_reports_an_endpoint_that_does_not_answer() -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run(
        [sys.executable, "-m", "hi_async", "local", "seed", "--endpoint-url",
         f"http://127.0.0.1:{port}", "--bucket", "seeded", "--synthetic", "ct",
         "--instances", "1"],
        capture_output=True, text=True, check=False, timeout=120,
        env={**__import__("os").environ, "AWS_MAX_ATTEMPTS": "1"},
    )
    assert proc.returncode == 2
    assert "does not answer" in proc.stderr
    assert "Traceback" not in proc.stderr
