"""The workflow's door into the client download pipeline.

One Downloader (one HealthImaging client, one decode pool) serves every study of a run;
each study downloads into a folder of its own as soon as its import has finished, while
other studies are still copying or importing.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from ..api import Downloader
from ..model import ImageSetRef, Summary
from ..settings import Settings


@asynccontextmanager
async def open_downloader(settings: Settings) -> AsyncIterator[Downloader]:
    async with Downloader(settings) as downloader:
        yield downloader


async def download_study(downloader: Downloader, image_sets: AsyncIterable[ImageSetRef],
                         out_dir: Path) -> Summary:
    """Every frame of ``image_sets`` into ``out_dir`` (index.jsonl, summary.json inside)."""
    return await downloader.run(image_sets, out_dir=out_dir)
