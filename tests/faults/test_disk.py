"""A full disk and a read-only output folder, on real (tmpfs) file systems.

Root can write through any permission bit, so "not writable" and "no space left" are made
the way they happen to users: a read-only mount, and a mount too small for the study.
Both need ``mount``; where it is refused (no root, no CAP_SYS_ADMIN) the tests skip.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.local.helpers import Seeded, frame_of, instance, phantom

from .conftest import cli, frames_served, leftovers
from .test_crash import _journal, _settled_count

SIZE = 512  # a CT-sized frame: 512 KiB as .npy, so a 3 MiB disk holds about five


@contextmanager
def _tmpfs(mount_point: Path, options: str) -> Iterator[Path]:
    """A fresh tmpfs at ``mount_point`` for the block; unmounted afterwards."""
    mount_point.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def _seed_large(backend: Any, frames: int) -> Seeded:
    """One image set of ``frames`` single-frame 512x512 CT instances, through the backend."""
    datastore_id = backend.create_datastore("full-disk", ready=True).datastore_id
    series = f"1.2.826.0.1.3680043.8.498.{id(backend) % 10_000}.{frames}"
    items = []
    for i in range(frames):
        base = instance(series, f"{series}.{i}", seed=i)
        items.append(dataclasses.replace(
            base, instance_dicom={**base.instance_dicom, "Rows": SIZE, "Columns": SIZE},
            frames=(frame_of(phantom(7000 + i, SIZE, SIZE)),)))
    image_set_id = backend.add_instances(datastore_id, items, job_id=None)[0].image_set_id
    doc = backend.metadata_doc(datastore_id, image_set_id)
    instances = doc["Study"]["Series"][series]["Instances"]
    ids = [f["ID"] for item in items for f in instances[item.sop_instance_uid]["ImageFrames"]]
    return Seeded(datastore_id, image_set_id, ids, [item.frames[0] for item in items])


def _args(seeded: Seeded, out: Path, endpoint: str, fmt: str, pool: str) -> list[str]:
    return ["download", "--endpoint-url", endpoint, "--datastore-id", seeded.datastore_id,
            "--image-set-id", seeded.image_set_id, "--out", str(out), "--format", fmt,
            "--quiet", "--fetchers", "2", "--decoders", "2", "--pool", pool]


def _check_journaled_files(out: Path) -> None:
    """Every journaled frame is verified, on disk, whole, and has its checksum."""
    for entry in _journal(out).values():
        assert entry["status"] == "verified"
        path = out / entry["path"]
        pixels = np.load(path) if path.suffix == ".npy" else np.fromfile(path, "<i2")
        assert pixels.size == SIZE * SIZE
        le = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False)
        assert zlib.crc32(le.tobytes()) & 0xFFFFFFFF == entry["expectedCrc32"]


@pytest.mark.parametrize("fmt, pool", [
    ("raw", "thread"),
    ("raw", "process"),
    ("npy", "thread"),
])
def test_a_full_disk_stops_cleanly_keeps_what_was_verified_and_the_rerun_resumes(
        endpoint_url: str, aws_env: dict[str, str], backend: Any, local_stack: Any,
        tmp_path: Path, fmt: str, pool: str) -> None:
    seeded = _seed_large(backend, 12)  # 6 MiB of pixels for a 3 MiB disk
    with _tmpfs(tmp_path / "disk", "size=3m") as disk:
        out = disk / "out"
        full = cli(_args(seeded, out, endpoint_url, fmt, pool), aws_env)
        assert full.returncode == 2, full.stderr
        assert "Traceback" not in full.stderr
        assert "disk is full" in full.stderr or "No space left" in full.stderr, full.stderr
        assert "free some" in full.stderr  # what to do
        assert not leftovers(disk)
        kept = _journal(out)
        assert 1 <= len(kept) < len(seeded.frame_ids)
        _check_journaled_files(out)  # nothing verified was lost or is torn

        subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)
        before = _settled_count(local_stack)
        done = cli(_args(seeded, out, endpoint_url, fmt, pool), aws_env)
        assert done.returncode == 0, done.stderr
        # Only the frames not journaled were fetched again.
        assert frames_served(local_stack) - before == len(seeded.frame_ids) - len(kept)
        summary = json.loads((out / "summary.json").read_text())
        assert (summary["resumed"], summary["verified"]) == (len(kept), len(seeded.frame_ids))
        journal = _journal(out)
        assert set(journal) == set(seeded.frame_ids)
        _check_journaled_files(out)
        assert {p.relative_to(out).as_posix() for p in out.glob(f"*/*.{fmt}")} == {
            e["path"] for e in journal.values()}
        assert not leftovers(disk)


@pytest.mark.parametrize("sub", ["", "new/out"])
def test_an_output_folder_on_a_read_only_mount_is_a_clear_error(
        aws_env: dict[str, str], tmp_path: Path, sub: str) -> None:
    with _tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        out = ro / sub if sub else ro
        done = cli(["download", "--endpoint-url", "http://127.0.0.1:9", "--datastore-id",
                    "a" * 32, "--all", "--out", str(out)], aws_env)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert "not writable" in done.stderr and "Read-only file system" in done.stderr
        assert "--out" in done.stderr  # what to do
        assert not any(ro.iterdir())
