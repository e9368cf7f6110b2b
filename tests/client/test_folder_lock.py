"""One writer per output folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hi_async.errors import OutputError
from hi_async.folder_lock import LOCK_NAME, FolderLock


def test_a_held_folder_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    held = rf"another hi_async run \(PID {os.getpid()}\) is writing to"
    with FolderLock(tmp_path):
        with pytest.raises(OutputError, match=held) as err, FolderLock(tmp_path):
            pass  # pragma: no cover
        assert err.value.exit_code == 2 and "--out" in (err.value.hint or "")
    assert not (tmp_path / LOCK_NAME).exists()
    with FolderLock(tmp_path):  # free again once released
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"


def test_a_stale_lock_file_from_a_killed_run_does_not_block(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text("999999\n")  # left by a run that was SIGKILLed
    with FolderLock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"


def test_two_folders_are_independent(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with FolderLock(tmp_path / "a"), FolderLock(tmp_path / "b"):
        pass
