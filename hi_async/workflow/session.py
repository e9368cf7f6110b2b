"""Where a run's (or a clean-up's) API calls go: AWS, a running local stack, or one we start.

The embedded local stack keeps its state under the output folder, so that ``cleanup`` can
start it again on the same data after an interrupted run.
"""

from __future__ import annotations

import shutil
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import anyio

from .clients import Endpoint

T = TypeVar("T")


def local_data_dir(out_dir: Path) -> Path:
    """Where the embedded local stack of a run keeps its state."""
    return Path(out_dir) / ".hi_async" / "local-stack"


def _make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


@asynccontextmanager
async def embedded_endpoint(data_dir: Path, region: str) -> AsyncIterator[Endpoint]:
    """Start the local stack in its own process (it must not share our GIL)."""
    from ..local.stack import LocalStack

    _make_dir(data_dir)
    async with LocalStack(mode="process", data_dir=data_dir) as stack:
        yield Endpoint(region=region, endpoint_url=stack.url)


def remove_local_data(data_dir: Path) -> None:
    shutil.rmtree(data_dir, ignore_errors=True)
    parent = data_dir.parent
    if parent.name == ".hi_async" and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()


async def interruptible(work: Callable[[], Awaitable[T]]) -> tuple[T | None, bool]:
    """Run ``work``; Ctrl-C (or SIGTERM) cancels it cleanly. Returns (result, interrupted)."""
    result: list[T] = []
    interrupted = False

    async def watch(scope: anyio.CancelScope) -> None:
        nonlocal interrupted
        signals = [signal.SIGINT, signal.SIGTERM] if sys.platform != "win32" else []
        if not signals:
            return
        with anyio.open_signal_receiver(*signals) as received:
            async for _ in received:
                interrupted = True
                scope.cancel()
                return

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch, tg.cancel_scope)
        result.append(await work())
        tg.cancel_scope.cancel()
    return (result[0] if result else None), interrupted
