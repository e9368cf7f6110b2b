"""Live progress (a redrawn row on a terminal, plain lines elsewhere) and the summary.

On a terminal that can move the cursor, rich redraws one row as frames arrive. Where it
cannot (stderr is a file or a pipe: a batch job, a log; or ``TERM=dumb``), a plain line
is printed every ``every`` seconds instead: frames done and total, frames/s, MB/s,
failures and the time left. ``--quiet`` shows neither. Failed frames are always named on
stderr, so scripts and humans both see which frames to look at.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from ..model import FrameResult, Summary


class Progress:
    """A ProgressListener that shows how a download goes while frames arrive."""

    def __init__(self, *, enabled: bool = True, stream: IO[str] | None = None,
                 every: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.every = every
        self.total = 0
        self.done = 0
        self.failed = 0
        self.bytes = 0
        self.started = time.perf_counter()
        self._progress: Any = None
        self._task: Any = None
        self._plain = False
        self._next_line = self.started + every
        self._next_draw = self.started

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        if not self.stream.isatty():
            self._plain = self.every > 0
            return self
        from rich.console import Console

        console = Console(file=self.stream)
        if not console.is_interactive:
            # A terminal that cannot move the cursor (TERM=dumb, or TTY_INTERACTIVE=0):
            # rich would draw nothing there but leave a blank line behind.
            self._plain = self.every > 0
            return self
        self._progress = _fitting_progress(console)
        self._progress.__enter__()
        self._task = self._progress.add_task("download", total=None, rate="", failed="")
        return self

    def line(self, now: float | None = None) -> str:
        """The plain progress line for this moment."""
        elapsed = max(1e-6, (now or time.perf_counter()) - self.started)
        rate = self.done / elapsed
        share = f" ({100 * self.done / self.total:.1f} %)" if self.total else ""
        left = ""
        if self.total and rate > 0:
            seconds = int((self.total - self.done) / rate)
            left = f", {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d} left"
        return (f"progress: {self.done}/{self.total} frames{share}, {rate:,.0f} frames/s, "
                f"{self.bytes / elapsed / 1e6:,.1f} MB/s, {self.failed} failed{left}")

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)
            self._progress = None

    def add_total(self, frames: int) -> None:
        self.total += frames
        if self._progress is not None:
            self._progress.update(self._task, total=self.total)

    def on_result(self, result: FrameResult) -> None:
        self.done += 1
        self.bytes += result.encoded_bytes
        if result.status == "failed":
            self.failed += 1
        if self._plain:
            now = time.perf_counter()
            if now >= self._next_line:
                self._next_line = now + self.every
                print(self.line(now), file=self.stream, flush=True)
        if self._progress is not None:
            now = time.perf_counter()
            if now < self._next_draw and self.done != self.total:
                return  # rich redraws a few times a second; updating it per frame is waste
            self._next_draw = now + 0.05
            elapsed = max(1e-6, now - self.started)
            rate = f"{self.done / elapsed:,.0f} frames/s {self.bytes / elapsed / 1e6:,.1f} MB/s"
            failed = f"[red]{self.failed} failed" if self.failed else ""
            self._progress.update(self._task, completed=self.done, rate=rate, failed=failed)


#: The narrowest bar worth drawing; below it the bar is left out.
_BAR_MIN = 10


def _fitting_progress(console: Any) -> Any:
    """A rich progress display that leaves out its least important columns to fit.

    Given less room than a row needs, rich cuts every column short, the frame count
    too ("12…"), and on a 40-column terminal with thousands of frames the count goes
    altogether. So the text columns are never cut (``no_wrap``); the bar takes the room
    they leave; and when they do not fit, the rate goes first, then the bar, the time
    left and the label. The count and the failures stay. The choice is made again at
    every refresh, so it follows a resized terminal.
    """
    from rich.measure import Measurement
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress
    from rich.table import Column, Table

    def kept() -> Column:
        return Column(no_wrap=True)

    label = TextColumn("[bold]frames", table_column=kept())
    bar = BarColumn()
    count = MofNCompleteColumn(table_column=kept())
    rate = TextColumn("{task.fields[rate]}", table_column=kept())
    eta = TimeRemainingColumn(table_column=kept())
    failed = TextColumn("{task.fields[failed]}", table_column=kept())
    every: tuple[ProgressColumn, ...] = (label, bar, count, rate, eta, failed)

    def width(columns: list[ProgressColumn], tasks: list[Task]) -> int:
        """Cells a row of ``columns`` needs: the widest of each text, a short bar, gaps."""
        options = console.options
        return len(columns) - 1 + sum(
            _BAR_MIN if column is bar else max(
                (Measurement.get(console, options, column(task)).maximum for task in tasks),
                default=0)
            for column in columns)

    class Fitting(RichProgress):
        def make_tasks_table(self, tasks: Any) -> Table:
            tasks = list(tasks)
            shown = list(every)
            for optional in (rate, bar, eta, label):
                if width(shown, tasks) <= console.width:
                    break
                shown.remove(optional)
            self.columns = tuple(shown)
            return super().make_tasks_table(tasks)

    return Fitting(*every, console=console, transient=True, refresh_per_second=8)


def format_summary(summary: Summary) -> str:
    """The final summary, one screen at most."""
    lines = [
        f"frames {summary.frames}: verified {summary.verified}, failed {summary.failed}, "
        f"unverifiable {summary.unverifiable}, resumed {summary.resumed}",
        f"{summary.bytes / 1e6:,.1f} MB in {summary.seconds:,.2f} s "
        f"({summary.frames_per_second:,.1f} frames/s), retries {summary.retries}",
    ]
    if summary.dicom is not None:
        d = summary.dicom
        per_second = d.instances / summary.seconds if summary.seconds > 0 else 0.0
        lines.append(f"DICOM instances {d.instances}: written {d.written}, failed {d.failed}, "
                     f"resumed {d.resumed}, noted {d.noted} ({per_second:,.1f} instances/s)")
    for label, c in summary.by_label.items():
        lines.append(f"  {label}: {c.verified}/{c.frames} verified, {c.failed} failed")
    lines.extend(f"warning: {warning}" for warning in summary.warnings)
    return "\n".join(lines)


def report_failures(summary: Summary, stream: IO[str] | None = None, limit: int = 50) -> None:
    """Name every failed frame on stderr (up to ``limit``, then a count); for DICOM files,
    every instance not written."""
    out = stream or sys.stderr
    if summary.dicom is not None:
        _report_failed_instances(summary, out, limit)
        return
    for result in summary.failures[:limit]:
        print(f"failed: image set {result.ref.image_set_id} frame {result.ref.image_frame_id}: "
              f"{result.error}", file=out)
    if len(summary.failures) > limit:
        print(f"... and {len(summary.failures) - limit} more failed frames (see index.jsonl)",
              file=out)


def _report_failed_instances(summary: Summary, out: IO[str], limit: int) -> None:
    from ..dicom.assembly import failed_instances

    lines = failed_instances(summary.failures)
    for line in lines[:limit]:
        print(f"failed: {line}", file=out)
    if len(lines) > limit:
        print(f"... and {len(lines) - limit} more instances not written (see index.jsonl)",
              file=out)
