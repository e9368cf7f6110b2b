"""``python -m hi_async local serve``: run the local stack in the foreground.

Output contract (the workflow and :class:`~.stack.LocalStack` in process mode parse it):
the first line on stdout is exactly::

    hi_async local stack listening on http://HOST:PORT

followed by a flush; nothing is printed to stdout before it. Warnings go to stderr.
SIGINT or SIGTERM stop the server cleanly (exit 0).

With ``--verify-signatures``, the accepted credentials come from the environment
variable ``HI_ASYNC_LOCAL_CREDENTIALS`` (``AKID:SECRET``, several separated by commas;
default ``test:test``). Secrets are never printed.

Persistence: with ``--data-dir`` the HealthImaging state (data stores, image sets and
their versions, metadata, frames, jobs, tags) survives a restart on the same directory.
moto's S3, IAM, STS and CloudFormation state is in memory only and does not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import anyio

from ..errors import ConfigurationError
from .config import Knobs, StackConfig
from .runtime import new_event_loop_factory, run_stack

URL_LINE_PREFIX = "hi_async local stack listening on "
CREDENTIALS_ENV = "HI_ASYNC_LOCAL_CREDENTIALS"


def credentials_from_env(value: str | None) -> dict[str, str]:
    """``AKID:SECRET[,AKID:SECRET...]`` → mapping; default ``test:test``."""
    if not value:
        return {"test": "test"}
    out = {}
    for item in value.split(","):
        key, sep, secret = item.strip().partition(":")
        if not sep or not key or not secret:
            raise ConfigurationError(
                f"{CREDENTIALS_ENV} must look like AKID:SECRET[,AKID:SECRET]",
                hint="set it to the access key id and secret your clients sign with")
        out[key] = secret
    return out


def config_from_args(args: argparse.Namespace) -> StackConfig:
    knobs = Knobs().updated({
        name: getattr(args, name) for name in (
            "latency_ms", "jitter_ms", "bandwidth_mbps", "throttle_rps", "error_rate",
            "drop_rate", "truncate_rate", "corrupt_rate", "fault_seed")
        if getattr(args, name, None) is not None})
    return StackConfig(
        host=args.host, port=args.port,
        data_dir=Path(args.data_dir) if args.data_dir else None, knobs=knobs,
        verify_signatures=bool(getattr(args, "verify_signatures", False)),
        credentials=credentials_from_env(os.environ.get(CREDENTIALS_ENV)))


def serve_from_args(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    with asyncio.Runner(loop_factory=new_event_loop_factory()) as runner:
        runner.run(_serve(config))
    return 0


async def _serve(config: StackConfig) -> None:
    stop = anyio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Windows has no loop signal handlers: Ctrl-C raises KeyboardInterrupt instead.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    def announce(url: str, _server: object) -> None:
        sys.stdout.write(f"{URL_LINE_PREFIX}{url}\n")
        sys.stdout.flush()

    await run_stack(config, announce, stop)
