"""Ray as an optional extra: importing it with advice when it is missing, and connecting.

``--ray ADDRESS`` takes what ``ray.init(address=...)`` takes: ``auto`` (the cluster this
machine belongs to), ``HOST:PORT`` (the head node's GCS) or ``ray://HOST:10001`` (Ray
Client, for a driver outside the cluster).
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

from ..errors import ConfigurationError, HiAsyncError

INSTALL_HINT = "install the Ray extra: pip install 'hi_async[ray]'"


class RayNotInstalled(ConfigurationError):
    """Ray is not importable here (the ``hi_async[ray]`` extra is not installed)."""


def require_ray() -> Any:
    """The ``ray`` module, or RayNotInstalled with the install command."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise RayNotInstalled(f"Ray is not installed ({exc.msg})", hint=INSTALL_HINT) from None
    return ray


@contextlib.contextmanager
def connected(address: str | None) -> Iterator[Any]:
    """Ray connected to the cluster at ``address`` for the block (an existing connection
    is used as it is and left open); the ``ray`` module."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    _probe(address)
    try:
        # Workers' output stays in the cluster's logs: a task's errors come back to the
        # driver as results, and the driver's terminal keeps its progress line.
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise ConfigurationError(
            f"cannot connect to the Ray cluster at {address!r}: {exc}",
            hint="start one ('ray start --head') or pass --ray the head node's address "
            "(HOST:6379, or ray://HOST:10001 from outside the cluster)") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _probe(address: str | None) -> None:
    """A HOST:PORT nobody answers at fails now: Ray itself would retry for minutes."""
    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5.0).close()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot connect to the Ray cluster at {address!r}: {exc.strerror or exc}",
            hint="check that the cluster is up ('ray status' on the head node) and pass "
            "--ray the head node's address (HOST:6379, or ray://HOST:10001)") from None


def task_error(exc: Exception) -> HiAsyncError:
    """A Ray error for a task's result as a hi_async error a user can act on."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, HiAsyncError):
        return cause
    if isinstance(cause, ModuleNotFoundError):
        return ConfigurationError(
            f"a Ray worker cannot import {cause.name!r}",
            hint="install hi_async (with the same version) on every node of the cluster")
    first = str(cause or exc).strip().splitlines()
    return HiAsyncError(f"a Ray task failed: {first[-1] if first else type(exc).__name__}",
                        hint="see the Ray worker logs on the node for details")
