"""Run a coroutine function to completion from synchronous code, as the command line and
the blocking ``hi_async.download()`` do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from .errors import HiAsyncError, first_error

if TYPE_CHECKING:
    from .settings import Settings

T = TypeVar("T")


def run_sync(fn: Callable[[], Awaitable[T]], settings: Settings | None = None) -> T:
    """``anyio.run(fn)`` on uvloop when it is installed (and ``settings.uvloop``)."""
    options: dict[str, Any] = {}
    if settings is None or settings.uvloop:
        try:
            import uvloop  # noqa: F401
            options = {"use_uvloop": True}
        except ImportError:
            pass
    try:
        return anyio.run(fn, backend="asyncio", backend_options=options)
    except BaseExceptionGroup as group:
        error = first_error(group)
        if isinstance(error, HiAsyncError):
            raise error from None
        raise
