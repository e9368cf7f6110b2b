"""A study with a file that imports with a warning: the run reads WARNING/ and reports it.

A warning is not a failure: the file is imported and its frames verified, so the run is
still ok; the warning is printed, counted per study and kept in summary.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hi_async.settings import Settings
from hi_async.workflow.main import run_workflow
from hi_async.workflow.plan import Plan, resolve_studies
from tests.local.import_support.warning_files import dataset, native_file, pixels

BUCKET = "warned-study"


def _upload(make_client: Any) -> None:
    s3 = make_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    good = native_file(dataset(1, sop_uid="1.2.826.0.1.3680043.10.999.1"), pixels(1, 1)[0])
    # A leading zero in a UID component: INVALID_UID_FORMAT, and still imported.
    odd = native_file(dataset(1, sop_uid="1.2.826.0.1.3680043.10.999.02"), pixels(1, 2)[0])
    s3.put_object(Bucket=BUCKET, Key="case/good.dcm", Body=good)
    s3.put_object(Bucket=BUCKET, Key="case/odd.dcm", Body=odd)


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning")
async def test_a_warned_file_is_imported_verified_and_reported(
        endpoint_url: str, make_client: Any, tmp_path: Path) -> None:
    _upload(make_client)
    said: list[str] = []
    plan = Plan(tuple(resolve_studies([f"s3://{BUCKET}/case/"])), tmp_path, aws=False,
                region="us-east-1", keep=False, endpoint_url=endpoint_url)
    outcome = await run_workflow(plan, Settings(pool="thread", decoders=2), said.append)
    report = outcome.report
    assert report is not None and report.ok  # a warning is not a failure
    [study] = report.studies
    assert (study.frames, study.verified, study.failed) == (2, 2, 0)
    assert not study.import_failures
    [warned] = study.import_warnings
    assert warned["inputFile"].endswith("/case/odd.dcm")
    assert any(line.endswith("1 with warnings") for line in said), said
    [line] = report.warnings_text()
    assert "odd.dcm was imported with a warning: 0xB201 " in line
    assert "1.2.826.0.1.3680043.10.999.02" in line
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary["studies"][0]["import_warnings"]) == 1
    assert summary["total"]["import_warnings"] == summary["studies"][0]["import_warnings"]
