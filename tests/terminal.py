"""``python -m hi_async`` driven through a real pseudo-terminal.

The child runs in a new session whose controlling terminal is the pty (so Ctrl-C and
Ctrl-D act as they do for a user); a test types into the pty and reads what the child
writes. Every read has a deadline, so a child that waits for input it will never get,
or that never ends, fails the test instead of hanging it.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import pytest

import hi_async

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
    """``python -m hi_async ARGS`` with stdout, stderr and stdin on a pty.

    ``stdin_is_tty=False`` gives the child an empty stdin instead;
    ``stderr_is_tty=False`` a pipe, read as the terminal is (:attr:`stderr_output`).
    ``env`` is laid over the offline environment (:func:`offline_env`), e.g. test
    credentials or another ``TERM``. ``size`` is the terminal's (rows, columns); a new
    pty is 0x0, which programs read as "size unknown".
    """

    def __init__(self, args: list[str], cwd: Path, *, stdin_is_tty: bool = True,
                 stderr_is_tty: bool = True, env: Mapping[str, str] | None = None,
                 size: tuple[int, int] | None = None) -> None:
        self._master, slave = pty.openpty()
        if size is not None:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, *args],
                stdin=slave if stdin_is_tty else subprocess.DEVNULL,
                stdout=slave, stderr=slave if stderr_is_tty else subprocess.PIPE, cwd=cwd,
                env={**offline_env(cwd), **(env or {})}, start_new_session=True,
            )
        finally:
            os.close(slave)  # the child holds the only copy: its exit ends our reads
        self._seen = ""
        self._eof = False
        self._errors = b""

    @property
    def output(self) -> str:
        """Everything the child wrote so far (with the terminal's echo of what we typed)."""
        return self._seen

    @property
    def stderr_output(self) -> bytes:
        """What the child wrote to its stderr pipe so far (``stderr_is_tty=False``), as is."""
        return self._errors

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
        while not self._eof or self._open_pipe() is not None:
            if not self._read_some(deadline):
                pytest.fail(f"the child did not finish within {DEADLINE_S} s (waiting "
                            f"for input?); the terminal showed:\n{self._seen}")
        try:
            code = self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"the child closed its terminal but did not exit:\n{self._seen}")
        return code, self._seen

    def close(self) -> None:
        """Kill the child if it still runs; close the pty and any pipe."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=DEADLINE_S)
        if self._open_pipe() is not None:
            self.proc.stderr.close()  # type: ignore[union-attr]
        os.close(self._master)

    def _open_pipe(self) -> IO[bytes] | None:
        pipe = self.proc.stderr
        return pipe if pipe is not None and not pipe.closed else None

    def _read_some(self, deadline: float) -> bool:
        """One read from the pty or the stderr pipe, whichever has something first.

        False when the deadline passed with nothing to read. Both are read as data
        comes, so a child never blocks on a full pipe while the test waits for the pty.
        """
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        pipe = self._open_pipe()
        sources = ([] if self._eof else [self._master]) + ([pipe] if pipe else [])
        ready, _, _ = select.select(sources, [], [], remaining)
        if not ready:
            return False
        if pipe is not None and pipe in ready:
            data = os.read(pipe.fileno(), 4096)
            self._errors += data
            if not data:
                pipe.close()
        if self._master in ready:
            self._read_terminal()
        return True

    def _read_terminal(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except OSError:  # EIO: every copy of the pty's other end is closed
            data = b""
        if not data:
            self._eof = True
        # The terminal turns "\n" into "\r\n" on output.
        self._seen += data.decode("utf-8", errors="replace").replace("\r\n", "\n")


def offline_env(home: Path) -> dict[str, str]:
    """This interpreter's environment, minus every way to AWS credentials.

    A run that needs none must not find any; one that does gets them explicitly (the
    ``env`` of :class:`TerminalRun`). ``TERM=dumb`` keeps the output plain text;
    ``COLUMNS`` and ``LINES`` are dropped so that the pty's own size counts.
    """
    dropped = ("PYTHONSTARTUP", "PYTHONINSPECT", "COLUMNS", "LINES")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in dropped}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(home / "no-credentials"),
               AWS_CONFIG_FILE=str(home / "no-config"), HOME=str(home), TERM="dumb")
    # The child imports the same hi_async as these tests, wherever it is installed from.
    source_root = str(Path(hi_async.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, env.get("PYTHONPATH")]))
    return env


# The escape sequences a line-oriented live display uses: CSI with parameters and a
# final letter (SGR colours, cursor up, erase in line, show/hide cursor).
_TOKENS = re.compile(r"\x1b\[([?0-9;]*)([A-Za-z])|\r|\n|[^\x1b\r\n]+|\x1b")


def screen_lines(output: str) -> list[str]:
    """The lines a terminal shows after receiving ``output``, trailing blanks dropped.

    Interprets what a progress display writes to redraw its line: carriage return,
    newline (``\\n``, as :class:`TerminalRun` reports the terminal's ``\\r\\n``), cursor
    up (``ESC[nA``), erase line (``ESC[2K``); colours and cursor visibility change
    nothing on the text. Any other escape sequence fails the test, so that this small
    screen never silently disagrees with a real one.
    """
    screen: list[list[str]] = [[]]
    row = col = 0
    for match in _TOKENS.finditer(output):
        token, params, final = match.group(0), match.group(1), match.group(2)
        if token == "\r":
            col = 0
        elif token == "\n":
            row, col = row + 1, 0
        elif final == "A":
            row = max(0, row - int(params or 1))
        elif final == "K" and params == "2":
            screen[row] = []
        elif final == "m" or (final in ("h", "l") and params == "?25"):
            pass
        elif token.startswith("\x1b"):
            pytest.fail(f"unexpected escape sequence {token!r} in:\n{output!r}")
        else:
            while len(screen) <= row:
                screen.append([])
            line = screen[row]
            line.extend(" " * (col - len(line)))
            line[col:col + len(token)] = token
            col += len(token)
        while len(screen) <= row:
            screen.append([])
    lines = ["".join(line).rstrip() for line in screen]
    while lines and not lines[-1]:
        lines.pop()
    return lines
