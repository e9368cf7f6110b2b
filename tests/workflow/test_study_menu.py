"""The study menu of ``python -m hi_async``, driven through a real pseudo-terminal.

Each test starts the main job in a child process whose terminal is a pty (it is the
child's controlling terminal, so Ctrl-C and Ctrl-D act as they do for a user; see
``tests/terminal.py``), types into the pty and reads what the child writes.
``--dry-run`` keeps every run short and free of network calls (the child has no
credentials, so a call would fail the run): the chosen study shows up in the printed
plan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.terminal import TerminalRun

PROMPT = "choice [2]: "
SEED_NAMES = ("ct-chest", "ct-pelvis", "mri-head", "mri-breast")


#: Starts ``python -m hi_async --dry-run --out OUT *args`` on a terminal.
Start = Callable[..., TerminalRun]


def _planned_studies(output: str) -> list[str]:
    """The study names of a dry run's plan ("  study NAME: ..." lines), in order."""
    return [line.split()[1].rstrip(":") for line in output.splitlines()
            if line.startswith("  study ")]


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def start(tmp_path: Path, out_dir: Path) -> Iterator[Start]:
    """Start a run on a terminal; every run started is killed at the end of the test."""
    runs: list[TerminalRun] = []

    def _start(*args: str, stdin_is_tty: bool = True) -> TerminalRun:
        run = TerminalRun(["--dry-run", "--out", str(out_dir), *args], tmp_path,
                          stdin_is_tty=stdin_is_tty)
        runs.append(run)
        return run

    try:
        yield _start
    finally:
        for run in runs:
            run.close()


def test_on_a_terminal_without_study_or_yes_the_menu_offers_the_four_studies(
        start: Start) -> None:
    run = start()
    shown = run.read_until(PROMPT)
    menu = shown[:shown.index(PROMPT)]
    assert "Which study should the workflow import and download?" in menu
    for number, name in enumerate(SEED_NAMES, 1):
        assert f"  {number}. {name} " in menu
    assert "  5. all" in menu
    assert "Plan for run" not in shown  # nothing is planned before the answer


@pytest.mark.parametrize(("answer", "expected"), [
    ("1", ["ct-chest"]),
    ("3", ["mri-head"]),
    ("4", ["mri-breast"]),
    ("ct-pelvis", ["ct-pelvis"]),
    ("  MRI-Head ", ["mri-head"]),
    ("5", list(SEED_NAMES)),
    ("all", list(SEED_NAMES)),
    ("", ["ct-pelvis"]),  # Enter alone takes the default the prompt shows
])
def test_the_answer_picks_the_study_the_plan_uses(
        start: Start, out_dir: Path, answer: str, expected: list[str]) -> None:
    run = start()
    run.read_until(PROMPT)
    run.type(answer + "\n")
    code, shown = run.finish()
    assert code == 0, shown
    assert _planned_studies(shown) == expected
    assert "Traceback" not in shown
    assert not out_dir.exists()


@pytest.mark.parametrize("bad", ["9", "0", "ct-knee", "²"])
def test_an_answer_that_is_not_a_choice_is_explained_and_asked_again(
        start: Start, bad: str) -> None:
    run = start()
    run.read_until(PROMPT)
    run.type(bad + "\n")
    shown = run.read_until(PROMPT, occurrence=2)
    complaint = shown[shown.index(PROMPT) + len(PROMPT):].split(PROMPT)[0]
    assert f"{bad!r} is not one of the choices: answer 1 to 5, or a name (ct-chest, " \
        "ct-pelvis, mri-head, mri-breast, all)" in complaint
    assert "Plan for run" not in shown
    run.type("2\n")
    code, shown = run.finish()
    assert code == 0, shown
    assert _planned_studies(shown) == ["ct-pelvis"]
    assert "Traceback" not in shown


def test_end_of_input_at_the_prompt_is_a_usage_error_without_a_traceback(
        start: Start, out_dir: Path) -> None:
    run = start()
    run.read_until(PROMPT)
    run.type("\x04")  # Ctrl-D on an empty line: the child reads end of file
    code, shown = run.finish()
    assert code == 2, shown
    after = shown[shown.index(PROMPT) + len(PROMPT):]
    assert after.lstrip("\n").startswith("error: no study was chosen at the prompt\n")
    assert "pass --study NAME, or --yes for the default (ct-pelvis)" in after
    assert "Traceback" not in shown
    assert "Plan for run" not in shown
    assert not out_dir.exists()


def test_ctrl_c_at_the_prompt_exits_130_without_a_traceback(start: Start) -> None:
    run = start()
    run.read_until(PROMPT)
    run.wait_until_blocked_reading()
    run.type("\x03")  # the terminal sends SIGINT to the child
    code, shown = run.finish()
    assert code == 130, shown
    assert "interrupted" in shown.split(PROMPT, 1)[1]
    assert "Traceback" not in shown
    assert "Plan for run" not in shown


@pytest.mark.parametrize(("args", "stdin_is_tty", "expected"), [
    (["--yes"], True, ["ct-pelvis"]),
    (["--study", "mri-head"], True, ["mri-head"]),
    ([], False, ["ct-pelvis"]),  # stdin from elsewhere, output still on the terminal
])
def test_no_prompt_with_yes_a_study_or_stdin_that_is_not_a_terminal(
        start: Start, args: list[str], stdin_is_tty: bool, expected: list[str]) -> None:
    run = start(*args, stdin_is_tty=stdin_is_tty)
    code, shown = run.finish()
    assert code == 0, shown
    assert "Which study" not in shown
    assert "choice [" not in shown
    assert _planned_studies(shown) == expected
