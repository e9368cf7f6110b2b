"""``cleanup``'s confirmation on a terminal: only a yes removes anything; Ctrl-D is a no."""

from __future__ import annotations

from pathlib import Path

import pytest

from hi_async.workflow.state import RunState, StateFile
from tests.terminal import TerminalRun

PROMPT = "proceed? [y/N] "


@pytest.fixture
def kept_run(tmp_path: Path) -> Path:
    """The state of a kept run at a stack that no longer answers (nothing can be reached)."""
    out = tmp_path / "out"
    out.mkdir()
    StateFile(out, RunState(run_id="0badc0de", mode="endpoint", region="us-east-1",
                            endpoint_url="http://127.0.0.1:9", stack_name="hi-async-0badc0de",
                            phase="done")).save()
    return out


@pytest.mark.parametrize("answer", ["n\n", "\n", "whatever\n", "\x04"])
def test_anything_but_yes_removes_nothing_and_says_so(
        kept_run: Path, tmp_path: Path, answer: str) -> None:
    run = TerminalRun(["cleanup", "--out", str(kept_run)], tmp_path)
    try:
        shown = run.read_until(PROMPT)
        assert "This removes:" in shown and "hi-async-0badc0de" in shown
        run.type(answer)
        code, shown = run.finish()
    finally:
        run.close()
    assert code == 1, shown
    assert "not confirmed: nothing was removed (--yes skips the question)" in shown
    assert "Traceback" not in shown
    assert StateFile.load(kept_run).state.phase == "done"


def test_yes_goes_on_to_the_cleanup(kept_run: Path, tmp_path: Path) -> None:
    run = TerminalRun(["cleanup", "--out", str(kept_run)], tmp_path)
    try:
        run.read_until(PROMPT)
        run.type("y\n")
        code, shown = run.finish()
    finally:
        run.close()
    # It went on: the stack it must reach does not answer, which cleanup says clearly.
    assert code == 2, shown
    assert "does not answer" in shown and "not confirmed" not in shown
    assert "Traceback" not in shown
