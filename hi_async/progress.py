"""Live progress on a TTY (rich) and the one-screen final summary.

``--quiet`` or a non-TTY stderr shows only the summary. Failed frames are always named
on stderr, so scripts and humans both see which frames to look at.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from .model import FrameResult, Summary


class Progress:
    """A ProgressListener that draws a rich progress bar while frames arrive."""

    def __init__(self, *, enabled: bool = True, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.total = 0
        self.done = 0
        self.failed = 0
        self.bytes = 0
        self.started = time.perf_counter()
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._progress = RichProgress(
                TextColumn("[bold]frames"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                TextColumn("{task.fields[failed]}"),
                console=Console(file=self.stream), transient=True, refresh_per_second=8,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("download", total=None, rate="",
                                                 failed="")
        return self

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
        if self._progress is not None:
            elapsed = max(1e-6, time.perf_counter() - self.started)
            rate = f"{self.done / elapsed:,.0f} frames/s {self.bytes / elapsed / 1e6:,.1f} MB/s"
            failed = f"[red]{self.failed} failed" if self.failed else ""
            self._progress.update(self._task, completed=self.done, rate=rate, failed=failed)


def format_summary(summary: Summary) -> str:
    """The final summary, one screen at most."""
    lines = [
        f"frames {summary.frames}: verified {summary.verified}, failed {summary.failed}, "
        f"unverifiable {summary.unverifiable}, resumed {summary.resumed}",
        f"{summary.bytes / 1e6:,.1f} MB in {summary.seconds:,.2f} s "
        f"({summary.frames_per_second:,.1f} frames/s), retries {summary.retries}",
    ]
    for label, c in summary.by_label.items():
        lines.append(f"  {label}: {c.verified}/{c.frames} verified, {c.failed} failed")
    return "\n".join(lines)


def report_failures(summary: Summary, stream: IO[str] | None = None, limit: int = 50) -> None:
    """Name every failed frame on stderr (up to ``limit``, then a count)."""
    out = stream or sys.stderr
    for result in summary.failures[:limit]:
        print(f"failed: image set {result.ref.image_set_id} frame {result.ref.image_frame_id}: "
              f"{result.error}", file=out)
    if len(summary.failures) > limit:
        print(f"... and {len(summary.failures) - limit} more failed frames (see index.jsonl)",
              file=out)
