"""Worker processes: frames shared out and verified once, a worker killed and replaced,
one send rate for all of them, no worker outliving its parent, progress in a log."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from hi_async import Downloader
from hi_async.model import FrameResult
from hi_async.settings import Settings
from tests.local.helpers import seed_image_set

from .conftest import cli, injected, leftovers
from .test_crash import (
    _alive,
    _args,
    _check_journaled_files,
    _descendants,
    _journal,
    _resume_and_check,
    _start,
    _wait_for_lines,
)


def _worker_pids(parent: int) -> set[int]:
    """The worker processes of ``parent`` (they name their parent on their command line)."""
    pids = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"hi_async.workers.worker" in argv and str(parent).encode() in argv:
            pids.add(int(cmdline.parent.name))
    return pids


async def _both_ready(dl: Downloader) -> None:
    """Wait for the workers to start: on a busy machine one can be ready well before the
    other and do a small run alone."""
    pool = await dl._worker_pool()
    assert pool is not None
    await pool.wait_ready()


async def test_frames_are_shared_out_among_the_workers_and_each_journaled_once(
        settings: Settings, backend: Any, tmp_path: Path) -> None:
    seeded = seed_image_set(backend, instances=30, frames=2)
    async with Downloader(settings.replace(workers=2, fetchers=8)) as dl:
        await _both_ready(dl)
        summary = await dl.download(seeded.datastore_id, image_set_ids=[seeded.image_set_id],
                                    out_dir=tmp_path)
    assert (summary.frames, summary.verified) == (60, 60)
    assert len(summary.workers) == 2 and sum(summary.workers.values()) == 60
    assert all(n > 0 for n in summary.workers.values())
    lines = (tmp_path / "index.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["imageFrameId"] for line in lines) == sorted(
        seeded.frame_ids)
    assert json.loads((tmp_path / "summary.json").read_text())["workers"] == summary.workers


class _KillAWorkerAfter:
    """A progress listener that SIGKILLs one worker process once ``n`` frames are done."""

    def __init__(self, n: int) -> None:
        self.n, self.done, self.killed = n, 0, 0

    def add_total(self, frames: int) -> None:
        pass

    def on_result(self, result: FrameResult) -> None:
        self.done += 1
        if self.done == self.n:
            victim = min(_worker_pids(os.getpid()))
            os.kill(victim, signal.SIGKILL)
            self.killed = victim


async def test_a_worker_killed_mid_run_is_replaced_and_its_frames_go_to_another(
        settings: Settings, backend: Any, faults: Any, tmp_path: Path) -> None:
    seeded = seed_image_set(backend, instances=40, frames=2)
    faults(latency_ms=20)
    progress = _KillAWorkerAfter(10)
    async with Downloader(settings.replace(workers=2, fetchers=8)) as dl:
        await _both_ready(dl)
        summary = await dl.download(seeded.datastore_id, image_set_ids=[seeded.image_set_id],
                                    out_dir=tmp_path, progress=progress)
        restarts = dl._workers.restarts if dl._workers is not None else 0
    assert progress.killed and restarts == 1
    assert (summary.frames, summary.verified, summary.failed) == (80, 80, 0)
    assert str(progress.killed) in summary.workers  # it did work before it died
    journal = _journal(tmp_path)
    assert set(journal) == set(seeded.frame_ids)
    assert len((tmp_path / "index.jsonl").read_text().splitlines()) == 80  # each once
    assert not leftovers(tmp_path)


async def test_one_send_rate_is_shared_by_the_workers(
        settings: Settings, backend: Any, local_stack: Any, faults: Any,
        tmp_path: Path) -> None:
    # Two workers at a 20 requests/s throttle: each cuts its own rate at its first 429,
    # and the run's share is what both send together. Two rates that ignored each other
    # would each settle near 20/s and draw many more 429s than one.
    seeded = seed_image_set(backend, instances=40, frames=2)
    faults(throttle_rps=20.0)
    before = injected(local_stack).get("throttle", 0)
    async with Downloader(settings.replace(workers=2, fetchers=8, backoff_base=0.05,
                                           backoff_cap=1.0)) as dl:
        summary = await dl.download(seeded.datastore_id, image_set_ids=[seeded.image_set_id],
                                    out_dir=tmp_path)
        shared = dl._workers.rate if dl._workers is not None else None
    throttled = injected(local_stack).get("throttle", 0) - before
    assert summary.verified == summary.frames == 80
    assert shared is not None and shared.lowest is not None and shared.lowest <= 40
    assert 0 < throttled < 40 and summary.retries >= throttled
    assert dl.retrier.throttled == throttled  # the workers' 429s, counted in the parent


def _sigkill_the_parent(tmp_path: Path, endpoint_url: str, aws_env: dict[str, str],
                       backend: Any, local_stack: Any, faults: Any, options: list[str],
                       helpers_of: Any) -> set[int]:
    """SIGKILL a download (not its group) mid-run; every helper process it had
    (``helpers_of(pid)``) must be gone soon after, and the rerun must resume."""
    seeded = seed_image_set(backend, instances=30, frames=2)
    faults(latency_ms=30)
    proc = _start(_args(seeded, tmp_path, endpoint_url, *options), aws_env)
    helpers: set[int] = set()
    try:
        _wait_for_lines(tmp_path / "index.jsonl", 1, proc)
        helpers = helpers_of(proc.pid)
        proc.send_signal(signal.SIGKILL)  # not the group: the helpers must go by themselves
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    faults(latency_ms=0)
    deadline = time.monotonic() + 10
    while _alive(helpers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(helpers)
    _check_journaled_files(tmp_path)
    _resume_and_check(seeded, tmp_path, endpoint_url, aws_env, local_stack)
    return helpers


def test_killing_the_parent_kills_its_workers_and_the_rerun_resumes(
        endpoint_url: str, aws_env: dict[str, str], backend: Any, local_stack: Any,
        faults: Any, tmp_path: Path) -> None:
    workers = _sigkill_the_parent(tmp_path, endpoint_url, aws_env, backend, local_stack,
                                  faults, ["--workers", "2", "--fetchers", "4"], _worker_pids)
    assert len(workers) == 2


def test_a_torn_journal_line_from_a_killed_batch_is_cut_and_the_rerun_resumes(
        endpoint_url: str, aws_env: dict[str, str], backend: Any, local_stack: Any,
        tmp_path: Path) -> None:
    seeded = seed_image_set(backend, instances=10, frames=2)
    done = cli(_args(seeded, tmp_path, endpoint_url, "--workers", "2"), aws_env)
    assert done.returncode == 0, done.stderr
    index = tmp_path / "index.jsonl"
    lines = index.read_bytes().splitlines(keepends=True)
    # A batch of lines cut short by a crash: the last eight, the eighth from last torn.
    index.write_bytes(b"".join(lines[:-8]) + lines[-8][: len(lines[-8]) // 2])
    _resume_and_check(seeded, tmp_path, endpoint_url, aws_env, local_stack)


def test_where_stderr_is_no_terminal_progress_lines_come_every_few_seconds(
        endpoint_url: str, aws_env: dict[str, str], backend: Any, faults: Any,
        tmp_path: Path) -> None:
    seeded = seed_image_set(backend, instances=40, frames=2)
    faults(latency_ms=50)  # two requests in flight: about two seconds of frames
    args = _args(seeded, tmp_path, endpoint_url, "--workers", "2", "--fetchers", "2",
                 "--progress-every", "0.25")
    args.remove("--quiet")
    done = cli(args, aws_env)
    faults(latency_ms=0)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("progress: ")]
    assert len(lines) >= 2, done.stderr
    first = lines[0]
    assert "/80 frames (" in first and "frames/s" in first and "MB/s" in first
    assert "0 failed" in first and "left" in first
    assert "\x1b[" not in done.stderr  # no terminal control sequences in a log
    quiet = cli([*args, "--quiet", "--no-resume"], aws_env)
    assert quiet.returncode == 0 and "progress: " not in quiet.stderr


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_a_worker_count_below_one_is_a_usage_error(
        endpoint_url: str, aws_env: dict[str, str], backend: Any, tmp_path: Path,
        workers: str) -> None:
    seeded = seed_image_set(backend, instances=1)
    done = cli(_args(seeded, tmp_path, endpoint_url, "--workers", workers), aws_env)
    assert done.returncode == 2
    assert "workers must be at least 1" in done.stderr and "Traceback" not in done.stderr


def test_killing_a_process_pool_run_leaves_no_fork_server_tracker_or_decoder(
        endpoint_url: str, aws_env: dict[str, str], backend: Any, local_stack: Any,
        faults: Any, tmp_path: Path) -> None:
    helpers = _sigkill_the_parent(
        tmp_path, endpoint_url, aws_env, backend, local_stack, faults,
        ["--pool", "process", "--decoders", "2", "--fetchers", "4"], _descendants)
    # The fork server, the resource tracker and the decoders the server forked.
    assert len(helpers) >= 4, helpers
