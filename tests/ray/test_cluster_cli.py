"""``python -m hi_async download --ray ADDRESS`` from the command line: Ctrl-C leaves no
task on the cluster, a rerun resumes, and without Ray it says how to install it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hi_async.cli import main
from tests.faults.conftest import faults, frames_served
from tests.faults.test_crash import (
    _act_mid_run,
    _args,
    _check_journaled_files,
    _journal,
    _settled_count,
    _start,
)
from tests.local.helpers import seed_image_set

from .conftest import LocalCluster, shard_workers

__all__ = ["faults"]


def test_ctrl_c_exits_130_leaves_no_task_on_the_cluster_and_a_rerun_resumes(
        cluster: LocalCluster, endpoint_url: str, aws_env: dict[str, str], backend: Any,
        local_stack: Any, faults: Any, tmp_path: Path) -> None:
    seeded = seed_image_set(backend, instances=40, frames=2)
    faults(latency_ms=30)
    args = _args(seeded, tmp_path, endpoint_url, "--ray", cluster.address,
                 "--shard-frames", "4", "--fetchers", "2")
    proc = _start(args, aws_env)
    busy: set[int] = set()

    def ctrl_c() -> None:
        busy.update(shard_workers())
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does

    err = _act_mid_run(proc, tmp_path / "index.jsonl", 2, ctrl_c, timeout=90)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert busy, "no shard was running on the cluster when Ctrl-C came"
    assert not shard_workers()  # every task cancelled before the driver exited
    served = _settled_count(local_stack)
    faults(latency_ms=0)
    kept = _journal(tmp_path)
    assert 1 <= len(kept) < 80
    _check_journaled_files(tmp_path)
    assert not list(tmp_path.rglob("*.tmp"))

    rerun = subprocess.run([sys.executable, "-m", "hi_async", *args],
                           env={**os.environ, **aws_env}, capture_output=True, text=True,
                           timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert frames_served(local_stack) - served == 80 - len(kept)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["resumed"], summary["verified"]) == (len(kept), 80)
    assert sum(summary["nodes"].values()) == 80 - len(kept)
    journal = _journal(tmp_path)
    assert set(journal) == set(seeded.frame_ids)
    assert len((tmp_path / "index.jsonl").read_text().splitlines()) == 80
    _check_journaled_files(tmp_path)


def test_without_ray_the_option_says_how_to_install_it(
        endpoint_url: str, aws_env: dict[str, str], tmp_path: Path) -> None:
    # None in sys.modules makes 'import ray' fail as it does where Ray is not installed.
    code = ("import sys; sys.modules['ray'] = None; from hi_async.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    done = subprocess.run(
        [sys.executable, "-c", code, "download", "--endpoint-url", endpoint_url,
         "--datastore-id", "0" * 32, "--all", "--out", str(tmp_path / "out"), "--ray", "auto"],
        env={**os.environ, **aws_env}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Ray is not installed" in done.stderr
    assert "pip install 'hi_async[ray]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_ray_cluster_at_the_address_is_a_clear_configuration_error(
        endpoint_url: str, aws_env: dict[str, str], backend: Any, tmp_path: Path) -> None:
    seeded = seed_image_set(backend, instances=1)
    done = subprocess.run(
        [sys.executable, "-m", "hi_async", *_args(seeded, tmp_path, endpoint_url, "--ray",
                                                  "127.0.0.1:1")],
        env={**os.environ, **aws_env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "cannot connect to the Ray cluster" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("flags", "said"), [
    (["--ray", "auto", "--volume", "nifti"], "not made on a cluster"),
    (["--ray", "auto", "--preview"], "not made on a cluster"),
    (["--ray", "auto", "--format", "dcm"], "not made on a cluster"),
    (["--shard-frames", "64"], "--shard-frames applies to a Ray cluster download only"),
])
def test_what_a_cluster_download_does_not_do_is_refused_before_anything_is_written(
        flags: list[str], said: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["download", "--datastore-id", "0" * 32, "--all", "--out", str(out), *flags])
    assert code == 2
    assert said in capsys.readouterr().err
    assert not out.exists()
