"""The state file: what a run created, written atomically, read back by cleanup."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hi_async.errors import UsageError
from hi_async.workflow.state import STATE_FILE, RunState, StateFile


def _state() -> RunState:
    return RunState(run_id="abcd1234", mode="endpoint", region="us-east-1",
                    endpoint_url="http://127.0.0.1:4566")


def test_state_round_trips_through_the_file(tmp_path: Path) -> None:
    sf = StateFile(tmp_path, _state())
    sf.update(stack_name="hi-async-abcd1234",
              outputs={"DatastoreId": "d" * 32, "InputBucketName": "in",
                       "OutputBucketName": "out"})
    sf.state.studies["ct-chest"] = {"jobId": "j1", "imageSetIds": ["a" * 32, "b" * 32]}
    sf.state.studies["ct-pelvis"] = {"jobId": "j2", "imageSetIds": ["b" * 32]}
    sf.save()
    loaded = StateFile.load(tmp_path).state
    assert loaded == sf.state
    assert loaded.buckets == ["in", "out"]
    assert loaded.image_set_ids() == ["a" * 32, "b" * 32]
    assert any("data store " + "d" * 32 in line for line in loaded.describe())


def test_save_leaves_no_temp_file_and_replaces_atomically(tmp_path: Path) -> None:
    sf = StateFile(tmp_path, _state())
    sf.save()
    first_inode = os.stat(tmp_path / STATE_FILE).st_ino
    sf.update(phase="running")
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_FILE]
    assert os.stat(tmp_path / STATE_FILE).st_ino != first_inode  # renamed, not rewritten
    assert json.loads((tmp_path / STATE_FILE).read_text())["phase"] == "running"


def test_missing_state_file_says_which_folder_to_pass(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no state file") as info:
        StateFile.load(tmp_path)
    assert "--out" in str(info.value)


def test_torn_state_file_is_reported_not_guessed(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text('{"version": 1, "run_id": "x"')
    with pytest.raises(UsageError, match="cannot read the state file"):
        StateFile.load(tmp_path)
