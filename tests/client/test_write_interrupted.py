"""A Ctrl-C that lands while a frame is being written leaves neither a temp nor a final file.

The end-to-end Ctrl-C tests can only hope a signal arrives mid-write (a write takes well
under a millisecond); here SIGINT is raised for real at the two places a write can be
interrupted, inside the worker's own write step, so the cleanup path is proven to run.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from hi_async.stages import work
from hi_async.stages.work import Job, run_job

from .helpers import crc, ct_pixels, encode


def _job(tmp_path: Path, fmt: str) -> tuple[Job, Path]:
    pixels = ct_pixels(64, 48)
    target = tmp_path / "series" / f"frame.{fmt}"
    job = Job(encode(pixels, "image/jph"), "image/jph", 64, 48, 1, pixels.dtype.str,
              crc(pixels), fmt, str(target))
    return job, target


@pytest.mark.parametrize("fmt", ["jph", "npy", "raw"])
@pytest.mark.parametrize("moment", ["fsync", "replace"])
def test_sigint_during_a_write_removes_the_temp_file_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, moment: str) -> None:
    job, target = _job(tmp_path, fmt)
    real = {"fsync": os.fsync, "replace": os.replace}[moment]
    seen: list[bool] = []

    def interrupted(*args: object) -> None:
        # The temp file is there, holding the frame, when the signal arrives.
        seen.append(Path(job.path + ".tmp").stat().st_size > 0)
        signal.raise_signal(signal.SIGINT)
        real(*args)  # not reached: the handler raised KeyboardInterrupt

    monkeypatch.setattr(work.os, moment, interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_job(job)
    assert seen == [True]
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


@pytest.mark.parametrize("fmt", ["jph", "npy", "raw"])
def test_an_uninterrupted_write_leaves_only_the_final_file(tmp_path: Path, fmt: str) -> None:
    job, target = _job(tmp_path, fmt)
    outcome = run_job(job)
    assert outcome.status == "verified" and outcome.path == str(target)
    assert [p.name for p in target.parent.iterdir()] == [target.name]
    if fmt == "npy":
        assert np.load(target).shape == (64, 48)
