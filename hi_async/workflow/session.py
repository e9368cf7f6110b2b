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

from ..settings import Settings

T = TypeVar("T")

#: The key the workflow signs local-stack requests with (any key works there).
LOCAL_KEY = "testing"


def target_settings(settings: Settings, *, region: str, endpoint_url: str | None,
                    profile: str | None) -> Settings:
    """``settings`` pointed at a run's target: AWS (``endpoint_url`` None: the standard
    chain, and botocore's endpoint variables) or a local stack at ``endpoint_url``.

    The local stack accepts any key: it gets one explicitly (unless a profile is named),
    so that a machine's real credentials are never sent to it and none are needed.
    """
    keys: dict[str, str | None] = {}
    if endpoint_url is not None and profile is None:
        keys = {"access_key_id": LOCAL_KEY, "secret_access_key": LOCAL_KEY,
                "session_token": None}
    return settings.replace(endpoint_url=endpoint_url, region=region, profile=profile, **keys)


def local_data_dir(out_dir: Path) -> Path:
    """Where the embedded local stack of a run keeps its state."""
    return Path(out_dir) / ".hi_async" / "local-stack"


def _make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


@asynccontextmanager
async def embedded_stack(data_dir: Path) -> AsyncIterator[str]:
    """Start the local stack in its own process (it must not share our GIL); its URL."""
    from ..local.stack import LocalStack

    _make_dir(data_dir)
    async with LocalStack(mode="process", data_dir=data_dir) as stack:
        yield stack.url


def moto_state_saved(data_dir: Path) -> bool:
    """Did the embedded stack save moto's state (S3, IAM, CloudFormation) at its stop?"""
    from ..local.aws.moto_state import STATE_FILE

    return (data_dir / STATE_FILE).is_file()


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
