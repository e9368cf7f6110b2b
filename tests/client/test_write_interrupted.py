"""A Ctrl-C that lands while a frame is being written leaves neither a temp nor a final file.

The end-to-end Ctrl-C tests can only hope a signal arrives mid-write (a write takes well
under a millisecond); here SIGINT is raised for real at the two places a write can be
interrupted (half the bytes written, and the rename), inside the worker's own write
step, so the cleanup path is proven to run.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hi_async.model import Check, EncodedFrame, Outcome
from hi_async.output import frames as frame_files
from hi_async.verify import verify_frame

from .helpers import crc, ct_pixels, encode, encoded_frame


def _job(tmp_path: Path, fmt: str) -> tuple[EncodedFrame, Path]:
    pixels = ct_pixels(64, 48)
    target = tmp_path / "series" / f"frame.{fmt}"
    frame = encoded_frame(encode(pixels, "image/jph"), "image/jph", 64, 48, 1,
                          pixels.dtype.str, crc(pixels))
    return frame, target


def _verify(frame: EncodedFrame, target: Path, fmt: str) -> Outcome:
    return verify_frame(frame, path=str(target), fmt=fmt)


def _half_then_sigint(seen: list[bool], tmp: Path) -> Any:
    """An ``os.write`` whose first call puts half the bytes on disk, then takes a real
    SIGINT."""
    real_write = os.write

    def write(fd: int, data: Any) -> int:
        view = memoryview(data).cast("B")
        real_write(fd, view[:len(view) // 2])
        seen.append(tmp.stat().st_size > 0)
        signal.raise_signal(signal.SIGINT)
        raise AssertionError("not reached: the handler raised KeyboardInterrupt")

    return write


@pytest.mark.parametrize("fmt", ["jph", "npy", "raw"])
@pytest.mark.parametrize("moment", ["write", "replace"])
def test_sigint_during_a_write_removes_the_temp_file_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, moment: str) -> None:
    frame, target = _job(tmp_path, fmt)
    tmp = Path(str(target) + ".tmp")
    seen: list[bool] = []
    if moment == "write":
        monkeypatch.setattr(frame_files.os, "write", _half_then_sigint(seen, tmp))
    else:
        real_replace = os.replace

        def interrupted(*args: Any) -> None:
            # The temp file is there, holding the frame, when the signal arrives.
            seen.append(tmp.stat().st_size > 0)
            signal.raise_signal(signal.SIGINT)
            real_replace(*args)  # not reached: the handler raised KeyboardInterrupt

        monkeypatch.setattr(frame_files.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _verify(frame, target, fmt)
    assert seen == [True]
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


@pytest.mark.parametrize("fmt", ["jph", "npy", "raw"])
def test_an_uninterrupted_write_leaves_only_the_final_file(tmp_path: Path, fmt: str) -> None:
    frame, target = _job(tmp_path, fmt)
    outcome = _verify(frame, target, fmt)
    assert outcome.check is Check.VERIFIED and outcome.path == str(target)
    assert [p.name for p in target.parent.iterdir()] == [target.name]
    if fmt == "npy":
        assert np.load(target).shape == (64, 48)


def test_short_writes_are_continued_until_the_frame_is_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``os.write`` may take fewer bytes than it was given (a signal, a pipe, some file
    systems): the writer goes on from where it stopped."""
    frame, target = _job(tmp_path, "raw")
    real_write = os.write
    calls: list[int] = []

    def at_most_1000(fd: int, data: Any) -> int:
        calls.append(1)
        return real_write(fd, memoryview(data).cast("B")[:1000])

    monkeypatch.setattr(frame_files.os, "write", at_most_1000)
    outcome = _verify(frame, target, "raw")
    monkeypatch.undo()
    assert outcome.check is Check.VERIFIED
    assert target.read_bytes() == ct_pixels(64, 48).tobytes()
    assert len(calls) == -(-64 * 48 * 2 // 1000)
