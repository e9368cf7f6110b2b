"""``--dry-run`` prints the plan and makes no call, on the local stack and on AWS."""

from __future__ import annotations

from pathlib import Path

import pytest

from hi_async.cli import main


@pytest.mark.parametrize("target", [[], ["--aws", "--region", "eu-west-1"]])
def test_dry_run_prints_the_calls_and_creates_nothing(
        target: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # No credentials and an unreachable endpoint: any real call would fail the run.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "out"
    code = main(["run", "--dry-run", "--study", "ct-chest", "--study", "mri-head",
                 "--out", str(out), *target])
    printed = capsys.readouterr().out
    assert code == 0
    assert "[ct-chest] medical-imaging StartDICOMImportJob" in printed
    assert "[mri-head] s3 CopyObject x192" in printed
    assert not out.exists()


def test_dry_run_with_an_unknown_study_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--dry-run", "--study", "ct-knee"]) == 2
    assert "unknown study 'ct-knee'" in capsys.readouterr().err
