"""Run one local stack on the current event loop until told to stop.

Shared by :mod:`serve` (the ``local serve`` command) and :mod:`stack` (in-process use):
both need the same start order (listen, register moto models and seed the public data,
then announce the URL) and the same clean shutdown.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import anyio
from aiohttp import web

from .aws import moto_state
from .config import StackConfig
from .server import LocalServer, warn_if_exposed


def new_event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when uvloop is installed (not on Windows), else None."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def run_stack(config: StackConfig, announce: Callable[[str, LocalServer], None],
                    stop: anyio.Event, *, owns_process: bool = False) -> None:
    """Serve until ``stop`` is set; ``announce(url, server)`` once ready.

    ``owns_process``: nothing else in this process uses moto, so moto's state can be
    loaded from and saved to ``config.data_dir`` (see :mod:`.aws.moto_state`).
    """
    warn_if_exposed(config.host)
    temp = None
    if config.data_dir is None:
        temp = tempfile.mkdtemp(prefix="hi_async-local-")
        data_dir = Path(temp)
    else:
        data_dir = Path(config.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
    persist_moto = owns_process and temp is None
    if persist_moto:
        await anyio.to_thread.run_sync(moto_state.load, data_dir)
    server: LocalServer | None = None
    try:
        async with anyio.create_task_group() as tg:
            server = LocalServer(config, data_dir, tg)
            runner = web.AppRunner(server.app(), access_log=None, handle_signals=False)
            await runner.setup()
            try:
                site = web.TCPSite(runner, config.host, config.port, backlog=1024)
                await site.start()
                port = runner.addresses[0][1]
                await server.start_services()
                host = config.host if ":" not in config.host else f"[{config.host}]"
                if host in ("0.0.0.0", "[::]"):
                    host = "127.0.0.1"
                announce(f"http://{host}:{port}", server)
                await stop.wait()
            finally:
                with anyio.CancelScope(shield=True):
                    await runner.cleanup()
                tg.cancel_scope.cancel()
    finally:
        if server is not None:
            server.close()
        if persist_moto and server is not None:
            # After the runner's cleanup and the server's close: no request is changing
            # moto's state any more.
            try:
                from .data.public_data import PUBLIC_BUCKET

                # Seeded again from its cache at every start, so not saved.
                moto_state.save(data_dir, leave_out=(PUBLIC_BUCKET,))
            except Exception as exc:  # the HealthImaging state is safe on disk already
                print(f"warning: could not save S3, IAM and CloudFormation state to "
                      f"{data_dir}: {exc}", file=sys.stderr, flush=True)
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
