"""The command line's shape: help, subcommands and exit codes for usage errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hi_async.cli import main
from hi_async.errors import UsageError
from hi_async.settings import Settings


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in ("run", "download", "cleanup", "local", "bench"):
        assert name in out


def test_module_entry_point_answers_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hi_async", "local", "serve", "--help"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0
    assert "--data-dir" in proc.stdout


def test_download_without_required_flags_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["download", "--out", "x"])
    assert exc.value.code == 2
    assert "--datastore-id" in capsys.readouterr().err


def test_settings_reject_nonsense() -> None:
    with pytest.raises(UsageError, match="fetchers"):
        Settings(fetchers=0)
    with pytest.raises(UsageError, match="output format"):
        Settings(output_format="png")  # type: ignore[arg-type]


def test_a_malformed_numeric_environment_variable_is_a_usage_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HI_ASYNC_FETCHERS", "lots")
    with pytest.raises(UsageError, match="HI_ASYNC_FETCHERS"):
        Settings.from_env()


@pytest.mark.parametrize("env, expected", [
    ({}, None),
    ({"AWS_ENDPOINT_URL": "http://all:1"}, "http://all:1"),
    ({"AWS_ENDPOINT_URL": "http://all:1", "AWS_ENDPOINT_URL_MEDICAL_IMAGING": "http://mi:2"},
     "http://mi:2"),
    ({"AWS_ENDPOINT_URL_S3": "http://s3:3"}, None),
    ({"AWS_ENDPOINT_URL": "http://all:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, None),
    ({"AWS_ENDPOINT_URL": "http://all:1", "HI_ASYNC_ENDPOINT_URL": "http://own:4"},
     "http://own:4"),
])
def test_botocores_endpoint_variables_make_a_custom_endpoint_as_botocore_reads_them(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str | None) -> None:
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_MEDICAL_IMAGING", "AWS_ENDPOINT_URL_S3",
                "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "HI_ASYNC_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert Settings.from_env().endpoint_url == expected


def test_an_unknown_profile_is_a_clear_configuration_error(tmp_path) -> None:
    import os

    env = {**os.environ, "AWS_CONFIG_FILE": str(tmp_path / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")}
    env.pop("AWS_PROFILE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "hi_async", "download", "--datastore-id", "0" * 32,
         "--image-set-id", "1" * 32, "--out", str(tmp_path / "out"), "--profile", "nosuch",
         "--region", "us-east-1"],
        capture_output=True, text=True, check=False, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "nosuch" in proc.stderr and "--profile" in proc.stderr
    assert "Traceback" not in proc.stderr
