"""What a worker process starts with: the parent's environment, numeric libraries on one
thread, and the allocator settings for frame-sized buffers unless the user set them."""

from __future__ import annotations

import pytest

from hi_async.workers import pool


def test_workers_get_the_allocator_settings_and_the_parents_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.setenv("AWS_PROFILE", "imaging")
    env = pool._worker_environment()
    assert env["MALLOC_MMAP_THRESHOLD_"] == str(4 << 20)
    assert env["MALLOC_TRIM_THRESHOLD_"] == str(32 << 20)
    assert env["AWS_PROFILE"] == "imaging"
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == "1"


def test_allocator_settings_of_the_user_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    env = pool._worker_environment()
    assert env["MALLOC_TRIM_THRESHOLD_"] == "0"
    assert env["MALLOC_MMAP_THRESHOLD_"] == str(4 << 20)
