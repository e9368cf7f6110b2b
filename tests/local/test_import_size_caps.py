"""Import size caps: a file claiming more pixels than the limits is refused before anything
is decoded or inflated, and an import worker's memory is bounded.

Real stacks in child processes (so that their memory and their workers' can be read from
/proc), real DICOM files written with pydicom, uploaded and imported over HTTP.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hi_async.local.stack import LocalStack
from tests.local.import_support.jobs import (
    manifest,
    new_bucket,
    read_s3,
    run_job,
    upload,
    wait_active,
)
from tests.local.import_support.size_files import (
    deflate_bomb,
    jpeg_file,
    native_file,
    peak_rss_of_tree,
)

GIB = 1024**3
MIB = 1024**2
#: What any process of the stack may peak at here: the bombs below asked for 4 to 13 GB.
MODEST_RSS = 600 * MIB
#: Far longer than refusing takes; far shorter than decoding or parsing what was claimed.
QUICK_SECONDS = 30.0


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """A stack with the default limits, in a process of its own."""
    with LocalStack(mode="process", datastore_delay=0.0) as s:
        yield s


@pytest.fixture(scope="module")
def clients(stack: LocalStack, make_client: Callable[..., Any]) -> tuple[Any, Any, str]:
    s3 = make_client("s3", url=stack.url)
    mi = make_client("medical-imaging", url=stack.url)
    datastore_id = str(mi.create_datastore(datastoreName="size-caps")["datastoreId"])
    wait_active(mi, datastore_id)
    return s3, mi, datastore_id


def _import(clients: tuple[Any, Any, str], files: dict[str, bytes],
            ) -> tuple[dict[str, Any], dict[str, dict[str, Any]], float]:
    """Import ``files``; the manifest's summary, FAILURE records by file name, seconds."""
    s3, mi, datastore_id = clients
    bucket = new_bucket(s3, "caps")
    upload(s3, bucket, "in/", files.items())
    started = time.monotonic()
    job = run_job(mi, datastore_id, f"s3://{bucket}/in/", f"s3://{bucket}/out/")
    seconds = time.monotonic() - started
    assert job["jobStatus"] == "COMPLETED", job.get("message")
    failures = [json.loads(line) for line in read_s3(
        s3, job["outputS3Uri"] + "FAILURE/failure.ndjson").splitlines()]
    by_name = {r["inputFile"].rsplit("/", 1)[1]: r["exception"] for r in failures}
    return manifest(s3, job), by_name, seconds


def _refused_at_once(stack: LocalStack, clients: tuple[Any, Any, str], name: str,
                     data: bytes) -> str:
    """Import one file that must be refused for its size; the FAILURE record's message.

    Refused as a customer error, within seconds rather than the minutes decoding what it
    claims would take, and with no process of the stack (the server, its import workers)
    having grown past a few hundred MB: their peaks are read from /proc.
    """
    summary, failures, seconds = _import(clients, {name: data})
    assert summary["numberOfImportedFiles"] == 0
    assert summary["numberOfFilesWithCustomerError"] == 1
    assert failures[name]["exceptionType"] == "ValidationException"
    assert seconds < QUICK_SECONDS
    assert stack.pid is not None
    peaks = peak_rss_of_tree(stack.pid)
    assert len(peaks) >= 2, peaks  # the stack and at least one import worker
    assert max(peaks.values()) < MODEST_RSS, {pid: f"{p / MIB:.0f} MiB"
                                              for pid, p in peaks.items()}
    return str(failures[name]["message"])


def test_a_1kb_jpeg_claiming_65500x65500_is_refused_before_it_is_decoded(
        stack: LocalStack, clients: tuple[Any, Any, str]) -> None:
    bomb = jpeg_file(65500, 65500)
    assert len(bomb) < 1200
    message = _refused_at_once(stack, clients, "claims-4gb.dcm", bomb)
    assert "65500x65500" in message
    assert "limit of 1.0 GiB (1073741824 bytes) per frame" in message
    assert "--import-max-frame-bytes" in message


def test_a_jpeg_whose_own_header_claims_more_than_its_attributes_is_refused_too(
        stack: LocalStack, clients: tuple[Any, Any, str]) -> None:
    # The attributes say 8x8; only the JPEG frame header says 65500x65500 (in colour,
    # 12 GB). The decoder would go by the JPEG header.
    bomb = jpeg_file(65500, 65500, samples=3, header=(8, 8))
    message = _refused_at_once(stack, clients, "lies.dcm", bomb)
    assert "compressed header declares 65500x65500 pixels, 3 samples" in message
    assert "--import-max-frame-bytes" in message


def test_a_deflated_file_inflating_to_1_gib_is_refused_quickly(
        stack: LocalStack, clients: tuple[Any, Any, str]) -> None:
    bomb = deflate_bomb(GIB)
    assert len(bomb) < 2 * MIB
    message = _refused_at_once(stack, clients, "inflates-1gib.dcm", bomb)
    assert message.startswith("the deflated data set inflates to more than")
    assert "limit on an image set's metadata" in message


def test_an_instance_over_the_instance_limit_is_refused(
        stack: LocalStack, clients: tuple[Any, Any, str]) -> None:
    # Six frames of 16384x16384 RGB: each 768 MiB, under the frame limit; together
    # 4.5 GiB, over the 4 GiB an instance may decode to.
    big = jpeg_file(16384, 16384, samples=3, frames=6)
    message = _refused_at_once(stack, clients, "six-frames.dcm", big)
    assert "6 frames of 16384x16384 pixels, 3 samples of 8 bits" in message
    assert "limit of 4.0 GiB (4294967296 bytes) per instance" in message
    assert "--import-max-instance-bytes" in message


def test_files_within_the_limits_import_beside_refused_ones(
        stack: LocalStack, clients: tuple[Any, Any, str]) -> None:
    files = {f"ok-{i}.dcm": native_file(64, 64) for i in range(3)}
    files["bomb.dcm"] = jpeg_file(65500, 65500)
    files["ok-jpeg.dcm"] = jpeg_file(8, 8)
    summary, failures, _ = _import(clients, files)
    assert summary["numberOfImportedFiles"] == 4
    assert set(failures) == {"bomb.dcm"}


def test_a_worker_out_of_memory_fails_its_file_and_the_job_goes_on(
        make_client: Callable[..., Any]) -> None:
    # Each import worker may take 32 MiB beyond its start-up size. An 8192x8192 RGB JPEG
    # (192 MiB decoded, within the frame limit) runs out of it in numpy; a 40 MB
    # uncompressed file cannot even be handed to a worker, which dies of it, twice. The
    # ordinary files, some of them in the pool the dying worker broke, all import.
    with LocalStack(mode="process", datastore_delay=0.0,
                    import_worker_memory=32 * MIB) as stack:
        s3 = make_client("s3", url=stack.url)
        mi = make_client("medical-imaging", url=stack.url)
        datastore_id = str(mi.create_datastore(datastoreName="oom")["datastoreId"])
        wait_active(mi, datastore_id)
        files = {"a-too-big-to-receive.dcm": native_file(4500, 4500),
                 "b-decodes-past-the-cap.dcm": jpeg_file(8192, 8192, samples=3)}
        files.update({f"c-ordinary-{i}.dcm": native_file(64, 64) for i in range(6)})
        summary, failures, _ = _import((s3, mi, datastore_id), files)
    assert summary["numberOfImportedFiles"] == 6
    assert summary["numberOfFilesWithServerError"] == 2
    assert set(failures) == {"a-too-big-to-receive.dcm", "b-decodes-past-the-cap.dcm"}
    decoded = failures["b-decodes-past-the-cap.dcm"]
    assert decoded["exceptionType"] == "InternalServerException"
    assert "needed more memory than the 32.0 MiB (33554432 bytes) an import worker may " \
        "use (--import-worker-memory)" in decoded["message"]
    died = failures["a-too-big-to-receive.dcm"]
    assert died["exceptionType"] == "InternalServerException"
    assert "died twice" in died["message"] and "--import-worker-memory" in died["message"]
