"""``--aws`` end to end: the AWS code path, pointed at the local stack the standard way.

``--aws`` takes no ``--endpoint-url``; it goes wherever botocore's own configuration says.
Setting ``AWS_ENDPOINT_URL`` (as for a VPC endpoint or a proxy) sends every client, the
downloader's included, to the local stack, so the whole AWS path runs here: the
credential chain, host-prefix handling for a configured endpoint, the state file's "aws"
mode, and ``cleanup`` of such a run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hi_async.workflow.state import StateFile

from .test_workflow import assert_nothing_left


def _hi_async(args: list[str], endpoint_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "HI_ASYNC_"))}
    env.update(AWS_ENDPOINT_URL=endpoint_url, AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=str(cwd / "no-config"),
               AWS_SHARED_CREDENTIALS_FILE=str(cwd / "no-credentials"))
    return subprocess.run([sys.executable, "-m", "hi_async", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=240)


def test_aws_mode_runs_the_whole_workflow_at_a_configured_endpoint_then_cleans_up(
        endpoint_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = _hi_async(["--aws", "--yes", "--keep", "--study", "ct-chest", "--out", str(out)],
                    endpoint_url, tmp_path)
    assert run.returncode == 0, run.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["total"]["frames"] == summary["total"]["verified"] == 2
    state = StateFile.load(out).state
    assert (state.mode, state.region, state.phase) == ("aws", "us-east-1", "done")
    assert "Traceback" not in run.stderr + run.stdout

    clean = _hi_async(["cleanup", "--out", str(out)], endpoint_url, tmp_path)
    assert clean.returncode == 0, clean.stderr
    assert_nothing_left(endpoint_url, out)
