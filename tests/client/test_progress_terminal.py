"""``download``'s live progress, seen through a real terminal (a pty).

On a terminal, ``download`` draws one progress row on stderr (label, bar, verified/total
count, frames/s and MB/s, time left, failures), redraws it in place and erases it before
the summary. ``--quiet``, a stderr that is not a terminal and a terminal that cannot move
the cursor get the summary alone. The stack answers every request late and two fetchers
share the frames, so a run lasts about a second and the row (redrawn eight times a
second) shows counts between the first and the last.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.local.helpers import Seeded, seed_image_set
from tests.terminal import TerminalRun, screen_lines

from .conftest import SECRET

FRAMES = 16
LATENCY_MS = 100
HIDE_CURSOR, SHOW_CURSOR, ERASE_LINE = "\x1b[?25l", "\x1b[?25h", "\x1b[2K"
_ESCAPES = re.compile(r"\x1b\[[?0-9;]*[A-Za-z]")

Download = Callable[..., TerminalRun]


@pytest.fixture
def seeded(backend: Any) -> Seeded:
    return seed_image_set(backend, instances=FRAMES)


@pytest.fixture
def download(tmp_path: Path, endpoint_url: str, seeded: Seeded, faults: Any
             ) -> Iterator[Download]:
    """Start ``download`` of ``seeded`` on a terminal at a slow stack; kill it at the end.

    ``download(*args, env=..., size=..., stderr_is_tty=...)``: extra arguments and the
    terminal's settings. ``faults`` switches the latency off again after the test.
    """
    faults(latency_ms=LATENCY_MS)
    runs: list[TerminalRun] = []

    def start(*args: str, env: dict[str, str] | None = None, **terminal: Any) -> TerminalRun:
        command = ["download", "--endpoint-url", endpoint_url,
                   "--datastore-id", seeded.datastore_id, "--image-set-id", seeded.image_set_id,
                   "--out", str(tmp_path / "out"), "--workers", "1", "--fetchers", "2",
                   "--decoders", "1", "--pool", "thread", *args]
        credentials = {"AWS_ACCESS_KEY_ID": "AKIAHIASYNCTEST", "AWS_SECRET_ACCESS_KEY": SECRET,
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
        run = TerminalRun(command, tmp_path, **terminal,
                          env={**credentials, "TERM": "xterm-256color", **(env or {})})
        runs.append(run)
        return run

    try:
        yield start
    finally:
        for run in runs:
            run.close()


def _summary_line(verified: int, failed: int = 0) -> str:
    return (f"frames {FRAMES}: verified {verified}, failed {failed}, unverifiable 0, "
            "resumed 0")


def _before_summary(output: str) -> str:
    """What the run wrote before its first line after the progress: the live part."""
    ends = [i for i in (output.find(f"frames {FRAMES}: "), output.find("failed: ")) if i >= 0]
    assert ends, f"no summary on the terminal:\n{output!r}"
    return output[:min(ends)]


def _drawn_rows(live: str) -> list[str]:
    """Each version of the progress row, as text, in the order drawn."""
    return [row for row in re.split(r"[\r\n]", _ESCAPES.sub("", live)) if row.strip()]


def _counts(rows: list[str]) -> list[int]:
    """The "M/FRAMES" counts the rows show, in order."""
    return [int(m.group(1)) for row in rows for m in re.finditer(rf"(\d+)/{FRAMES}\b", row)]


def _assert_only_the_summary(output: str) -> None:
    """Plain text, nothing drawn: the two summary lines and nothing else."""
    assert "\x1b" not in output, repr(output)
    lines = output.splitlines()
    assert len(lines) == 2, output
    assert lines[0] == _summary_line(FRAMES)
    assert " MB in " in lines[1] and "frames/s" in lines[1]


def test_on_a_terminal_the_row_is_redrawn_while_frames_arrive_then_erased(
        download: Download) -> None:
    code, output = download().finish()
    assert code == 0, output
    live = _before_summary(output)
    assert HIDE_CURSOR in live and ERASE_LINE in live, repr(live)
    rows = _drawn_rows(live)
    assert all(row.startswith("frames ") for row in rows), rows
    counts = _counts(rows)
    assert counts == sorted(counts) and counts[-1] == FRAMES, rows
    assert any(0 < count < FRAMES for count in counts), rows  # drawn while running
    assert any(re.search(r"[\d,]+ frames/s [\d,.]+ MB/s \d:\d\d:\d\d", row) for row in rows), rows
    assert "failed" not in live
    assert output.rindex(SHOW_CURSOR) > output.rindex(HIDE_CURSOR)
    screen = screen_lines(output)
    assert screen[0] == _summary_line(FRAMES) and len(screen) == 2, screen  # row erased


def test_the_row_counts_failed_frames_and_the_failures_are_named_after_it(
        download: Download, faults: Any, seeded: Seeded) -> None:
    faults(corrupt_rate=1.0)  # a flipped byte the decoder never reads can still verify
    code, output = download().finish()
    assert code == 1, output
    screen = screen_lines(output)
    summary = next((re.fullmatch(rf"frames {FRAMES}: verified (\d+), failed (\d+), "
                                 r"unverifiable 0, resumed 0", line) for line in screen
                    if line.startswith(f"frames {FRAMES}: ")), None)
    assert summary, screen
    verified, failed = int(summary.group(1)), int(summary.group(2))
    assert failed > 0 and verified + failed == FRAMES, screen
    rows = _drawn_rows(_before_summary(output))
    shown = [int(m.group(1)) for row in rows for m in re.finditer(r"(\d+) failed", row)]
    assert shown and shown == sorted(shown) and shown[-1] == failed, rows
    named = re.findall(rf"^failed: image set {seeded.image_set_id} frame (\w+): ",
                       "\n".join(screen), re.MULTILINE)
    assert len(named) == failed and set(named) <= set(seeded.frame_ids), screen
    assert not any(f"/{FRAMES}" in line for line in screen), screen  # row erased


def test_quiet_on_a_terminal_draws_nothing_but_the_summary(download: Download) -> None:
    code, output = download("--quiet").finish()
    assert code == 0, output
    _assert_only_the_summary(output)


def test_stderr_not_a_terminal_gets_no_control_sequences(download: Download) -> None:
    run = download(stderr_is_tty=False)
    code, output = run.finish()
    assert code == 0, output
    assert run.stderr_output == b"", run.stderr_output
    _assert_only_the_summary(output)


def test_a_terminal_that_cannot_move_the_cursor_gets_the_summary_alone(
        download: Download) -> None:
    code, output = download(env={"TERM": "dumb"}).finish()
    assert code == 0, output
    _assert_only_the_summary(output)  # not even the blank line rich leaves there


def test_on_a_40_column_terminal_every_row_fits_and_the_count_is_whole(
        download: Download) -> None:
    code, output = download(size=(24, 40)).finish()
    assert code == 0, output
    rows = _drawn_rows(_before_summary(output))
    assert all(len(row.rstrip()) <= 40 for row in rows), rows
    assert not any("…" in row for row in rows), rows  # nothing cut short
    counts = _counts(rows)
    assert counts[-1] == FRAMES and any(0 < count < FRAMES for count in counts), rows
    assert screen_lines(output)[0] == _summary_line(FRAMES)
