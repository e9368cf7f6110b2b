"""Crash safety: SIGKILL at a random moment and Ctrl-C, each then resumed (full disk: test_disk)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.local.helpers import Seeded, seed_image_set

from .conftest import cli, frames_served, leftovers


def _args(seeded: Seeded, out: Path, endpoint: str, *extra: str) -> list[str]:
    return ["download", "--endpoint-url", endpoint, "--datastore-id", seeded.datastore_id,
            "--image-set-id", seeded.image_set_id, "--out", str(out), "--format", "npy",
            "--quiet", *extra]


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """A download in its own session (process group), as a terminal would run it."""
    return subprocess.Popen([sys.executable, "-m", "hi_async", *args],
                            env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for_lines(index: Path, n: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if index.exists() and index.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.01)
    raise AssertionError("the download wrote no index lines")


def _act_mid_run(proc: subprocess.Popen[str], index: Path, lines: int,
                 act: Callable[[], None], *, timeout: float) -> str:
    """Once the index has ``lines`` lines, ``act()``; then the run's stderr when it ends.
    Whatever happens, nothing of the run is left behind."""
    try:
        _wait_for_lines(index, lines, proc)
        act()
        return proc.communicate(timeout=timeout)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def _journal(out: Path) -> dict[str, dict[str, Any]]:
    """imageFrameId → entry of every complete index line (a torn last line is ignored)."""
    raw = (out / "index.jsonl").read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1]
    return {e["imageFrameId"]: e for e in map(json.loads, complete.splitlines())}


def _check_journaled_files(out: Path) -> None:
    """Every journaled frame is on disk, whole, and decodes to its checksum."""
    for entry in _journal(out).values():
        assert entry["status"] == "verified"
        pixels = np.load(out / entry["path"])
        le = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False)
        assert zlib.crc32(le.tobytes()) & 0xFFFFFFFF == entry["expectedCrc32"]


def _descendants(pid: int) -> set[int]:
    """PIDs of every process below ``pid`` (from /proc), e.g. the decode workers."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _settled_count(local_stack: Any) -> int:
    """GetImageFrame count once the killed run's requests still in the server are answered."""
    count = frames_served(local_stack)
    while True:
        time.sleep(0.25)  # longer than the injected latency
        again = frames_served(local_stack)
        if again == count:
            return count
        count = again


def _resume_and_check(seeded: Seeded, out: Path, endpoint: str, env: dict[str, str],
                      local_stack: Any) -> None:
    """A rerun fetches exactly the frames not journaled, and leaves index == files."""
    kept = _journal(out)
    before = _settled_count(local_stack)
    done = cli(_args(seeded, out, endpoint), env)
    assert done.returncode == 0, done.stderr
    assert frames_served(local_stack) - before == len(seeded.frame_ids) - len(kept)
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["resumed"], summary["verified"]) == (len(kept), len(seeded.frame_ids))
    assert not leftovers(out)
    journal = _journal(out)
    on_disk = {p.relative_to(out).as_posix() for p in out.glob("*/*.npy")}
    assert on_disk == {e["path"] for e in journal.values()}
    assert set(journal) == set(seeded.frame_ids)
    _check_journaled_files(out)


@pytest.mark.slow
def test_sigkill_at_a_random_moment_then_a_rerun_resumes(
        endpoint_url: str, aws_env: dict[str, str], backend: Any, local_stack: Any,
        faults: Any, tmp_path: Path) -> None:
    seeded = seed_image_set(backend, instances=20, frames=2)
    faults(latency_ms=40)
    seed = random.randrange(1 << 30)
    moment = random.Random(seed).uniform(0.0, 0.4)
    proc = _start(_args(seeded, tmp_path, endpoint_url, "--fetchers", "2", "--pool", "process",
                        "--decoders", "2"), aws_env)
    try:
        _wait_for_lines(tmp_path / "index.jsonl", 1, proc)
        time.sleep(moment)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        # The orphaned decode workers and fork server: not part of what is checked here.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    faults(latency_ms=0)
    assert proc.returncode == -signal.SIGKILL, f"seed {seed}"
    kept = _journal(tmp_path)
    assert 1 <= len(kept) < len(seeded.frame_ids), f"seed {seed}"
    _check_journaled_files(tmp_path)
    _resume_and_check(seeded, tmp_path, endpoint_url, aws_env, local_stack)


@pytest.mark.parametrize("pool", ["process", "thread"])
def test_ctrl_c_exits_130_leaves_no_worker_nor_temp_file_and_the_rerun_resumes(
        endpoint_url: str, aws_env: dict[str, str], backend: Any, local_stack: Any,
        faults: Any, tmp_path: Path, pool: str) -> None:
    seeded = seed_image_set(backend, instances=20, frames=2)
    faults(latency_ms=20)
    proc = _start(_args(seeded, tmp_path, endpoint_url, "--fetchers", "2", "--pool", pool,
                        "--decoders", "2"), aws_env)
    workers: set[int] = set()

    def ctrl_c() -> None:
        workers.update(_descendants(proc.pid))
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does

    err = _act_mid_run(proc, tmp_path / "index.jsonl", 2, ctrl_c, timeout=60)
    faults(latency_ms=0)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    if pool == "process":
        assert len(workers) >= 2  # the decode workers (and the fork server) were running
    deadline = time.monotonic() + 10
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(workers)
    assert not leftovers(tmp_path)  # before any rerun could clean up
    _check_journaled_files(tmp_path)
    _resume_and_check(seeded, tmp_path, endpoint_url, aws_env, local_stack)


def _decode_workers(pid: int) -> set[int]:
    """The fork server's children below ``pid``: the process pool's decode workers."""
    below = _descendants(pid)
    direct = {p for p in below if _parent(p) == pid}
    return {p for p in below if _parent(p) in direct}


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def test_a_decode_worker_killed_mid_run_costs_nothing(
        endpoint_url: str, aws_env: dict[str, str], backend: Any, faults: Any,
        tmp_path: Path) -> None:
    # What the OOM killer does to one worker of a big run: the pool is replaced, the
    # frames it held are decoded again, and the run ends with every frame verified.
    seeded = seed_image_set(backend, instances=30, frames=2)
    faults(latency_ms=30)
    proc = _start(_args(seeded, tmp_path, endpoint_url, "--fetchers", "2", "--pool",
                        "process", "--decoders", "2"), aws_env)
    def kill_one_worker() -> None:
        workers = _decode_workers(proc.pid)
        assert workers, "no decode worker found"
        os.kill(min(workers), signal.SIGKILL)

    err = _act_mid_run(proc, tmp_path / "index.jsonl", 4, kill_one_worker, timeout=120)
    faults(latency_ms=0)
    assert proc.returncode == 0, err
    journal = _journal(tmp_path)
    assert set(journal) == set(seeded.frame_ids)
    assert {e["status"] for e in journal.values()} == {"verified"}
    _check_journaled_files(tmp_path)
    assert not leftovers(tmp_path)
