"""The study menu of ``python -m hi_async``, driven through a real pseudo-terminal.

Each test starts the main job in a child process whose terminal is a pty (it is the
child's controlling terminal, so Ctrl-C and Ctrl-D act as they do for a user), types
into the pty and reads what the child writes. ``--dry-run`` keeps every run short and
free of network calls: the chosen study shows up in the printed plan. Every read has a
deadline, so a child that waits for input it will never get fails the test instead of
hanging it.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import hi_async

PROMPT = "choice [2]: "
SEED_NAMES = ("ct-chest", "ct-pelvis", "mri-head", "mri-breast")
#: Long enough for a loaded machine to start Python and import hi_async; a test that
#: waits this long has already failed.
DEADLINE_S = 15.0

# Runs in the child's new session: make the pty on stdout its controlling terminal,
# then become the main job. Without a controlling terminal, Ctrl-C typed into the pty
# would signal nobody.
_LAUNCHER = (
    "import fcntl, os, sys, termios; "
    "fcntl.ioctl(1, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, '-m', 'hi_async', *sys.argv[1:]])"
)


class TerminalRun:
    """``python -m hi_async ARGS`` with stdout and stderr (and stdin, if asked) on a pty."""

    def __init__(self, args: list[str], cwd: Path, *, stdin_is_tty: bool = True) -> None:
        self._master, slave = pty.openpty()
        env = _offline_env(cwd)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, *args],
                stdin=slave if stdin_is_tty else subprocess.DEVNULL,
                stdout=slave, stderr=slave, cwd=cwd, env=env, start_new_session=True,
            )
        finally:
            os.close(slave)  # the child holds the only copy: its exit ends our reads
        self._seen = ""
        self._eof = False

    @property
    def output(self) -> str:
        """Everything the child wrote so far (with the terminal's echo of what we typed)."""
        return self._seen

    def type(self, text: str) -> None:
        os.write(self._master, text.encode())

    def wait_until_blocked_reading(self) -> None:
        """Wait until the child sleeps in its read of the terminal.

        A SIGINT that lands after the prompt is written but before the read starts only
        sets Python's flag, and the read then blocks until a line comes: a user never
        types that fast, a test does. On Linux the child's state says when it sleeps
        (after the prompt, a single-threaded child sleeps only in that read).
        """
        stat = Path(f"/proc/{self.proc.pid}/stat")
        if not stat.exists():
            time.sleep(0.5)
            return
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            # The state follows the ")" that closes the command name.
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "S":
                return
            time.sleep(0.01)
        pytest.fail(f"the child never waited for input; the terminal showed:\n{self._seen}")

    def read_until(self, text: str, *, occurrence: int = 1) -> str:
        """Read until ``text`` has appeared ``occurrence`` times; fail at the deadline."""
        deadline = time.monotonic() + DEADLINE_S
        while self._seen.count(text) < occurrence:
            if self._eof or not self._read_some(deadline):
                pytest.fail(f"{text!r} did not appear (x{occurrence}); the terminal showed:\n"
                            f"{self._seen}")
        return self._seen

    def finish(self) -> tuple[int, str]:
        """Read until the child closes the terminal, then its exit code and all it wrote."""
        deadline = time.monotonic() + DEADLINE_S
        while not self._eof:
            if not self._read_some(deadline):
                pytest.fail(f"the child did not finish within {DEADLINE_S} s (waiting for "
                            f"input?); the terminal showed:\n{self._seen}")
        try:
            code = self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"the child closed its terminal but did not exit:\n{self._seen}")
        return code, self._seen

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=DEADLINE_S)
        os.close(self._master)

    def _read_some(self, deadline: float) -> bool:
        """One read from the pty; False when the deadline passed with nothing to read."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([self._master], [], [], remaining)
        if not ready:
            return False
        try:
            data = os.read(self._master, 4096)
        except OSError:  # EIO: every copy of the pty's other end is closed
            data = b""
        if not data:
            self._eof = True
        # The terminal turns "\n" into "\r\n" on output.
        self._seen += data.decode("utf-8", errors="replace").replace("\r\n", "\n")
        return True


#: Starts ``python -m hi_async --dry-run --out OUT *args`` on a terminal.
Start = Callable[..., TerminalRun]


def _offline_env(home: Path) -> dict[str, str]:
    """This interpreter's environment, minus every way to AWS credentials.

    A dry run needs none; if it made a real call, that call would fail the run.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in ("PYTHONSTARTUP", "PYTHONINSPECT")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(home / "no-credentials"),
               AWS_CONFIG_FILE=str(home / "no-config"), HOME=str(home), TERM="dumb")
    # The child imports the same hi_async as these tests, wherever it is installed from.
    source_root = str(Path(hi_async.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, env.get("PYTHONPATH")]))
    return env


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
