"""The seed workflow end to end on the local stack: every frame verified, the report right,
and nothing left behind, as the APIs see it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from hi_async.cli import main
from hi_async.settings import Settings
from hi_async.workflow.main import run_workflow
from hi_async.workflow.plan import Plan, resolve_studies
from hi_async.workflow.state import STATE_FILE, StateFile

KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _client(service: str, url: str) -> Any:
    from botocore.config import Config

    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        config=Config(inject_host_prefix=False), **KEYS)


def assert_nothing_left(url: str, out_dir: Path) -> None:
    """No data store, no bucket, the stack DELETE_COMPLETE: checked through the APIs."""
    state = StateFile.load(out_dir).state
    assert state.phase == "cleaned"
    mi, s3, cfn = (_client(s, url) for s in ("medical-imaging", "s3", "cloudformation"))
    ds = mi.get_datastore(datastoreId=state.datastore_id)["datastoreProperties"]
    assert ds["datastoreStatus"] in ("DELETING", "DELETED")
    live = [d["datastoreId"] for d in mi.list_datastores()["datastoreSummaries"]
            if d["datastoreStatus"] not in ("DELETING", "DELETED")]
    assert state.datastore_id not in live
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert not names & set(state.buckets)
    stack = cfn.describe_stacks(StackName=state.stack_id)["Stacks"][0]
    assert stack["StackStatus"] == "DELETE_COMPLETE"


@pytest.fixture(autouse=True)
def _local_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any key works on the local stack; the download pipeline takes it from the chain."""
    for var, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(var, value)


def _index(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "index.jsonl").read_text().splitlines()]


async def _run(url: str, out: Path, studies: list[str], keep: bool = False) -> Any:
    plan = Plan(tuple(resolve_studies(studies)), out, aws=False, region="us-east-1",
                keep=keep, endpoint_url=url)
    return await run_workflow(plan, Settings(pool="thread", decoders=2), lambda _m: None)


def _check_study(report: Any, out: Path, name: str, instances: int) -> None:
    [row] = [s for s in report.studies if s.name == name]
    index = _index(out / name)
    assert row.instances_copied == instances
    assert row.image_sets == 1  # each seed folder is one series: one primary image set
    assert row.frames == len(index) == row.verified and row.failed == 0
    assert {e["status"] for e in index} == {"verified"}
    assert len({e["sopInstanceUid"] for e in index}) == instances
    assert row.bytes > 0 and row.seconds > 0 and not row.import_failures
    for e in index:
        assert (out / name / e["path"]).is_file()


@pytest.mark.parametrize(("study", "instances"), [("ct-chest", 2), ("ct-pelvis", 57)])
async def test_workflow_verifies_every_frame_and_leaves_nothing(
        endpoint_url: str, tmp_path: Path, study: str, instances: int) -> None:
    outcome = await _run(endpoint_url, tmp_path, [study])
    report = outcome.report
    assert report is not None and not outcome.interrupted
    assert report.ok and report.cleaned_up
    _check_study(report, tmp_path, study, instances)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["ok"] is True
    assert summary["total"]["frames"] == summary["total"]["verified"] == report.total().frames
    assert [s["name"] for s in summary["studies"]] == [study]
    assert_nothing_left(endpoint_url, tmp_path)


@pytest.mark.slow
async def test_workflow_runs_all_four_studies_overlapped(endpoint_url: str,
                                                         tmp_path: Path) -> None:
    outcome = await _run(endpoint_url, tmp_path, ["all"])
    report = outcome.report
    assert report is not None and report.ok
    for name, instances in (("ct-chest", 2), ("ct-pelvis", 57), ("mri-head", 192),
                            ("mri-breast", 92)):
        _check_study(report, tmp_path, name, instances)
    assert report.total().instances_copied == 2 + 57 + 192 + 92
    assert_nothing_left(endpoint_url, tmp_path)


def test_run_refuses_an_output_folder_whose_run_was_not_cleaned_up(
        endpoint_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run", "--endpoint-url", endpoint_url, "--study", "ct-chest", "--yes",
            "--quiet", "--out", str(tmp_path)]
    assert main([*args, "--keep"]) == 0
    kept = StateFile.load(tmp_path).state
    assert kept.phase == "done"
    assert _client("s3", endpoint_url).head_bucket(Bucket=kept.buckets[0])

    assert main(args) == 2
    assert "cleanup --out" in capsys.readouterr().err

    assert main(["cleanup", "--out", str(tmp_path), "--yes"]) == 0
    assert_nothing_left(endpoint_url, tmp_path)


def test_ctrl_c_exits_130_and_cleanup_removes_what_was_created(
        endpoint_url: str, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hi_async", "run", "--endpoint-url", endpoint_url,
         "--study", "ct-pelvis", "--yes", "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "HI_ASYNC_DECODERS": "1"})
    state_path = tmp_path / STATE_FILE
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        # Interrupt once the import job exists: the stack, buckets and data store do too.
        if state_path.exists() and "jobId" in state_path.read_text():
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"cleanup --out {tmp_path}" in err
    state = StateFile.load(tmp_path).state
    assert state.phase == "running" and state.datastore_id
    assert "data store " + state.datastore_id in err

    assert main(["cleanup", "--out", str(tmp_path), "--yes"]) == 0
    assert_nothing_left(endpoint_url, tmp_path)


def test_cleanup_of_a_stack_that_no_longer_answers_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = {"version": 1, "run_id": "0badc0de", "mode": "endpoint", "region": "us-east-1",
             "endpoint_url": "http://127.0.0.1:9", "stack_name": "hi-async-0badc0de",
             "phase": "running"}
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    assert main(["cleanup", "--out", str(tmp_path), "--yes"]) == 2
    err = capsys.readouterr().err
    assert "http://127.0.0.1:9" in err and "does not answer" in err


@pytest.mark.slow
def test_embedded_stack_run_kept_then_cleaned_up_from_its_data_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The default mode: the CLI starts its own stack process with state under --out.
    assert main(["run", "--study", "ct-chest", "--yes", "--quiet", "--keep",
                 "--out", str(tmp_path)]) == 0
    state = StateFile.load(tmp_path).state
    assert state.mode == "embedded" and state.phase == "done"
    data_dir = Path(state.local_data_dir or "")
    assert data_dir.is_dir() and data_dir.is_relative_to(tmp_path)
    assert len(_index(tmp_path / "ct-chest")) == 2
    capsys.readouterr()

    # The stack process saved moto's state when it stopped: cleanup finds the buckets
    # (with the copied study and the import output in them) and the stack, and deletes them.
    assert main(["cleanup", "--out", str(tmp_path), "--yes"]) == 0
    said = capsys.readouterr().out
    assert f"deleted stack {state.stack_name}" in said, said
    for bucket in state.buckets:
        assert f"emptied s3://{bucket} (" in said and f"s3://{bucket} (0 object" not in said
    assert "were not saved" not in said
    assert StateFile.load(tmp_path).state.phase == "cleaned"
    assert not data_dir.exists()
    assert main(["cleanup", "--out", str(tmp_path), "--yes"]) == 0  # nothing left: a no-op


def test_run_with_format_dcm_writes_each_instance_as_a_dicom_file(
        endpoint_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pydicom

    assert main(["run", "--endpoint-url", endpoint_url, "--study", "ct-chest", "--yes",
                 "--out", str(tmp_path), "--format", "dcm", "--dcm-syntax", "native"]) == 0
    assert "[ct-chest] 2/2 DICOM instance(s) written, 0 failed" in capsys.readouterr().err
    study = tmp_path / "ct-chest"
    files = sorted(study.glob("*/*/*.dcm"))
    assert len(files) == 2
    for path in files:
        ds = pydicom.dcmread(path)
        assert path.name == f"{ds.SOPInstanceUID}.dcm"
        assert path.parent.name == ds.SeriesInstanceUID
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
    summary = json.loads((study / "summary.json").read_text())
    assert summary["dicom"]["written"] == summary["dicom"]["instances"] == 2
    assert {e["path"] for e in _index(study)} == {p.relative_to(study).as_posix()
                                                  for p in files}
    assert_nothing_left(endpoint_url, tmp_path)
