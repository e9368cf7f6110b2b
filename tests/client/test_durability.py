"""Group commit: a journal line never becomes stable before its frame's file did, batches
are committed on time or when large, and the journal's reserve outlives a full disk."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from hi_async import durability
from hi_async import journal as journal_module
from hi_async.durability import Committer, make_stable
from hi_async.errors import OutputError
from hi_async.journal import Journal
from hi_async.model import FrameResult, FrameStatus
from hi_async.output.frames import write_frame_file

from .helpers import ct_pixels, encoded_frame, frame_id


def _written(out: Path, n: int) -> FrameResult:
    """A verified frame whose file is written (not yet stable) under ``out``."""
    frame = encoded_frame(b"", None, 64, 48, 1, "<i2", 0)
    ref = frame.ref
    ref = type(ref)(**{**{f: getattr(ref, f) for f in ref.__slots__},
                       "image_frame_id": frame_id(n)})
    path = out / ref.image_set_id / f"{ref.image_frame_id}.raw"
    path.parent.mkdir(parents=True, exist_ok=True)
    size, crc = write_frame_file(str(path), "raw", b"", ct_pixels())
    return FrameResult(ref=ref, status=FrameStatus.VERIFIED, content_type="image/jph",
                       actual_crc32=0, path=path, encoded_bytes=100, file_bytes=size,
                       file_crc32=crc)


def test_every_line_is_appended_after_a_barrier_that_covered_its_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stable: set[str] = set()
    order: list[str] = []
    real_barrier, real_append = durability.make_stable, Journal.append_many

    def barrier(out_dir: Path, paths: Any) -> None:
        paths = list(paths)
        real_barrier(out_dir, paths)
        stable.update(paths)
        order.append(f"barrier {len(paths)}")

    def append(self: Journal, results: Any) -> None:
        for r in results:
            assert str(r.path) in stable, f"{r.path} journaled before it was stable"
        order.append(f"append {len(results)}")
        real_append(self, results)

    monkeypatch.setattr(durability, "make_stable", barrier)
    monkeypatch.setattr(Journal, "append_many", append)
    journal = Journal(tmp_path, resume=False)
    committer = Committer(journal, interval=0.05, max_batch=4)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(committer.run)
            for n in range(10):
                committer.add([_written(tmp_path, n)])
                await anyio.sleep(0.01 if n != 5 else 0.2)
            committer.close()

    anyio.run(main)
    journal.close()
    lines = (tmp_path / "index.jsonl").read_text().splitlines()
    assert [json.loads(x)["imageFrameId"] for x in lines] == [frame_id(n) for n in range(10)]
    assert order[0].startswith("barrier") and len(order) >= 4  # several batches
    assert all(a.startswith("barrier") and b.startswith("append")
               for a, b in zip(order[::2], order[1::2], strict=True))
    assert committer.batches == len(order) // 2


def test_a_batch_whose_files_reach_max_bytes_is_committed_before_the_interval(
        tmp_path: Path) -> None:
    journal = Journal(tmp_path, resume=False)
    frames = [_written(tmp_path, n) for n in range(4)]
    size = frames[0].file_bytes
    assert size
    committer = Committer(journal, interval=30.0, max_batch=1000, max_bytes=3 * size)
    waiting: list[int] = []

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(committer.run)
            taken = committer._taken
            committer.add(frames[:2])
            await anyio.sleep(0.2)
            waiting.append(len(committer._pending))  # 2 files' bytes: below the bound
            committer.add(frames[2:])
            with anyio.fail_after(5):  # long before the 30 s interval
                await taken.wait()
            waiting.append(len(committer._pending))
            committer.close()

    anyio.run(main)
    journal.close()
    assert waiting == [2, 0]
    assert committer.batches == 1
    lines = (tmp_path / "index.jsonl").read_text().splitlines()
    assert [json.loads(x)["imageFrameId"] for x in lines] == [frame_id(n) for n in range(4)]


def test_a_commit_that_has_begun_finishes_when_its_run_is_cancelled(tmp_path: Path) -> None:
    journal = Journal(tmp_path, resume=False)
    committer = Committer(journal, interval=10.0)

    async def main() -> None:
        with anyio.move_on_after(0.05):
            async with anyio.create_task_group() as tg:
                tg.start_soon(committer.run)
                committer.add([_written(tmp_path, n) for n in range(3)])
                committer._wake.set()  # commit now, then the run is cancelled
                await anyio.sleep(1)
        await committer.commit()  # what the pipeline does on its way out

    anyio.run(main)
    journal.close()
    assert len((tmp_path / "index.jsonl").read_text().splitlines()) == 3


def test_while_a_barrier_is_slow_the_results_waiting_are_bounded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk_answers = threading.Event()
    real_barrier = durability.make_stable

    def slow_barrier(out_dir: Path, paths: Any) -> None:
        disk_answers.wait(10)  # a disk that takes as long as the test says
        real_barrier(out_dir, paths)

    monkeypatch.setattr(durability, "make_stable", slow_barrier)
    journal = Journal(tmp_path, resume=False)
    committer = Committer(journal, interval=0.01, max_batch=4, max_pending=8)
    frames = [_written(tmp_path, n) for n in range(20)]
    added = 0
    seen: dict[str, int] = {}

    async def produce() -> None:  # as the sink does
        nonlocal added
        for result in frames:
            committer.add([result])
            added += 1
            await committer.room()
        committer.close()

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(committer.run)
            tg.start_soon(produce)
            await anyio.sleep(0.3)
            seen.update(added=added, waiting=len(committer._pending))
            disk_answers.set()

    try:
        anyio.run(main)
    finally:
        disk_answers.set()
    journal.close()
    # 8 results in the barrier, 8 waiting for the next one, and the producer held there.
    assert seen == {"added": 16, "waiting": 8}
    lines = (tmp_path / "index.jsonl").read_text().splitlines()
    assert [json.loads(x)["imageFrameId"] for x in lines] == [frame_id(n) for n in range(20)]


def test_the_barrier_covers_files_and_folders_without_syncfs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(durability, "_SYNCFS", None)
    monkeypatch.setattr(durability.os, "fsync", fsync)
    results = [_written(tmp_path, n) for n in range(3)]
    make_stable(tmp_path, [str(r.path) for r in results])
    assert set(synced) == {str(r.path) for r in results} | {str(results[0].path.parent)}


@pytest.mark.parametrize("reserve", [True, False])
def test_the_journal_keeps_room_for_its_lines_on_a_full_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reserve: bool) -> None:
    if not reserve:
        monkeypatch.setattr(journal_module, "_FALLOCATE", None)
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        result = _written(disk, 0)
        journal = Journal(disk, resume=False)
        with pytest.raises(OSError), open(disk / "filler", "wb") as fh:
            fh.write(b"\0" * (4 << 20))  # the disk is full now
        lines = [result] * 300  # about 165 KB of lines: inside the reserve
        if not reserve:  # what the reserve is for
            with pytest.raises(OutputError, match="free some disk space"):
                journal.append_many(lines)
                journal.sync()
            return
        journal.append_many(lines)
        journal.sync()
        journal.close()
        assert len((disk / "index.jsonl").read_text().splitlines()) == 300
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
