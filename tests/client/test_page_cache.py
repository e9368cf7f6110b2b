"""Written frames leave the page cache once stable, unless asked to stay.

Residency is read with ``mincore(2)`` on a private mapping of each file: which of its
pages the page cache holds. Where the file system ignores ``POSIX_FADV_DONTNEED``
(tmpfs keeps its pages: they are the files), the checks are skipped, and say so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hi_async import Downloader
from hi_async.settings import Settings
from tests.local.helpers import Seeded
from tests.page_cache import cached_pages, drops_clean_pages


@pytest.fixture
def drops_pages(tmp_path: Path) -> None:
    """Skip where a clean file's pages stay cached after POSIX_FADV_DONTNEED."""
    if not drops_clean_pages(tmp_path):
        pytest.skip(f"the file system of {tmp_path} keeps pages despite "
                    "POSIX_FADV_DONTNEED (tmpfs does)")


def _files(out: Path) -> list[Path]:
    files = sorted(out.rglob("*.raw"))
    assert files, f"no frame file under {out}"
    return files


async def test_written_frames_leave_the_page_cache_once_stable(
        settings: Settings, seeded_sets: list[Seeded], tmp_path: Path,
        drops_pages: None) -> None:
    sets = seeded_sets[:2]
    async with Downloader(settings.replace(output_format="raw")) as dl:
        summary = await dl.download(sets[0].datastore_id,
                                    image_set_ids=[s.image_set_id for s in sets],
                                    out_dir=tmp_path / "out")
    assert summary.verified == summary.frames == 9
    files = _files(tmp_path / "out")
    assert len(files) == 9
    assert [cached_pages(f)[0] for f in files] == [0] * 9
    # The journal, which a rerun reads first, stays cached.
    assert cached_pages(tmp_path / "out" / "index.jsonl")[0] > 0


async def test_keep_page_cache_leaves_them_cached(
        settings: Settings, seeded_sets: list[Seeded], tmp_path: Path,
        drops_pages: None) -> None:
    sets = seeded_sets[:1]
    async with Downloader(settings.replace(output_format="raw",
                                           keep_page_cache=True)) as dl:
        summary = await dl.download(sets[0].datastore_id,
                                    image_set_ids=[sets[0].image_set_id],
                                    out_dir=tmp_path / "out")
    assert summary.verified == 5
    for path in _files(tmp_path / "out"):
        resident, pages = cached_pages(path)
        assert resident == pages, f"{path.name}: {resident} of {pages} pages cached"


def test_the_command_line_keeps_them_cached_when_asked(
        endpoint_url: str, aws_env: dict[str, str], seeded_sets: list[Seeded],
        tmp_path: Path, drops_pages: None) -> None:
    seeded = seeded_sets[0]
    outcome = {}
    for flag in ("", "--keep-page-cache"):
        out = tmp_path / (flag or "default")
        args = [sys.executable, "-m", "hi_async", "download", "--endpoint-url", endpoint_url,
                "--datastore-id", seeded.datastore_id, "--image-set-id", seeded.image_set_id,
                "--out", str(out), "--format", "raw", "--workers", "2", "--quiet"]
        done = subprocess.run(args + ([flag] if flag else []), env={**os.environ, **aws_env},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        outcome[flag] = sum(cached_pages(f)[0] for f in _files(out))
    assert outcome[""] == 0 and outcome["--keep-page-cache"] > 0
