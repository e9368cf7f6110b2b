"""Start the local stack from Python: in a background thread, or as a child process.

Thread mode (the default) runs the server on its own event loop in a daemon thread, so
synchronous boto3 code and an async test loop can both talk to it, and tests can reach
the backends directly (:meth:`LocalStack.backend`) to seed image sets. Process mode
spawns ``python -m hi_async local serve --port 0`` and reads the URL from its first line;
use it for benchmarks and the main job, where client and server must not share a GIL.

    async with LocalStack() as stack:            # or: stack = LocalStack(); stack.start()
        boto3.client("s3", endpoint_url=stack.url, ...)
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any, Literal

import anyio

from ..errors import WorkflowError
from .config import (
    DEFAULT_DATASTORE_DELAY,
    DEFAULT_LOCK_DELAY,
    Knobs,
    StackConfig,
)
from .control_access import CONTROL_TOKEN_ENV
from .dicom_import.limits import IMPORT_MAX_BYTES, MAX_FRAME_BYTES, MAX_INSTANCE_BYTES
from .healthimaging.backend import Backend
from .healthimaging.ids import ACCOUNT_ID, DEFAULT_REGION
from .runtime import new_event_loop_factory, run_stack
from .serve import CREDENTIALS_ENV, OWNER_PIPE_ENV, URL_LINE_PREFIX, format_credentials
from .server import LocalServer

_START_TIMEOUT = 120.0


class LocalStack:
    """A running local stack; ``url`` is its endpoint once started."""

    def __init__(self, *, mode: Literal["thread", "process"] = "thread",
                 host: str = "127.0.0.1", port: int = 0, data_dir: str | Path | None = None,
                 knobs: Knobs | dict[str, Any] | None = None, verify_signatures: bool = False,
                 credentials: dict[str, str] | None = None,
                 denied: dict[str, frozenset[str]] | None = None,
                 datastore_delay: float = DEFAULT_DATASTORE_DELAY,
                 lock_delay: float = DEFAULT_LOCK_DELAY,
                 import_max_bytes: int = IMPORT_MAX_BYTES,
                 import_max_frame_bytes: int = MAX_FRAME_BYTES,
                 import_max_instance_bytes: int = MAX_INSTANCE_BYTES,
                 import_worker_memory: int | None = None,
                 bare_account: bool = False) -> None:
        """The import limits are those of ``local serve``'s ``--import-*`` flags (see
        :mod:`.dicom_import.limits`); ``import_worker_memory`` None gives each import
        worker an equal share of the machine's memory, 0 no cap."""
        if isinstance(knobs, dict):
            knobs = Knobs().updated(knobs)
        self.mode = mode
        #: Opens the control routes of a stack that checks signatures; :meth:`control`
        #: sends it (see :mod:`.control_access`).
        self.control_token = secrets.token_urlsafe(32) if verify_signatures else None
        self.config = StackConfig(host=host, port=port,
                                  data_dir=Path(data_dir) if data_dir else None,
                                  knobs=knobs or Knobs(), verify_signatures=verify_signatures,
                                  credentials=credentials or {"test": "test"},
                                  denied=dict(denied or {}),
                                  control_token=self.control_token,
                                  datastore_delay=datastore_delay, lock_delay=lock_delay,
                                  import_max_bytes=import_max_bytes,
                                  import_max_frame_bytes=import_max_frame_bytes,
                                  import_max_instance_bytes=import_max_instance_bytes,
                                  import_worker_memory=import_worker_memory,
                                  bare_account=bare_account)
        self.url = ""
        self.server: LocalServer | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: anyio.Event | None = None
        self._error: BaseException | None = None
        self._proc: subprocess.Popen[str] | None = None

    # -- sync life cycle ---------------------------------------------------------------
    def start(self) -> LocalStack:
        if self.mode == "process":
            self._start_process()
        else:
            self._start_thread()
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    pipe.close()
            self._proc = None
        if self._thread is not None:
            if self._loop is not None and self._stop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=30)
            self._thread = None
        self.server = None

    async def __aenter__(self) -> LocalStack:
        await anyio.to_thread.run_sync(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await anyio.to_thread.run_sync(self.stop)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- thread mode -------------------------------------------------------------------
    def _start_thread(self) -> None:
        ready = threading.Event()

        def announce(url: str, server: LocalServer) -> None:
            self.url, self.server = url, server
            ready.set()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = anyio.Event()
            await run_stack(self.config, announce, self._stop)

        def target() -> None:
            try:
                with asyncio.Runner(loop_factory=new_event_loop_factory()) as runner:
                    runner.run(main())
            except BaseException as exc:  # reported to the thread that called start()
                self._error = exc
            finally:
                ready.set()

        self._thread = threading.Thread(target=target, name="hi_async-local-stack", daemon=True)
        self._thread.start()
        if not ready.wait(_START_TIMEOUT) or self.server is None:
            raise WorkflowError(f"the local stack did not start: {self._error!r}",
                                hint="see the log above for the cause")

    # -- process mode ------------------------------------------------------------------
    def _start_process(self) -> None:
        c = self.config
        cmd = [sys.executable, "-m", "hi_async", "local", "serve", "--host", c.host,
               "--port", str(c.port)]
        if c.data_dir is not None:
            cmd += ["--data-dir", str(c.data_dir)]
        for name, value in c.knobs.as_dict().items():
            if value:
                cmd += [f"--{name.replace('_', '-')}", str(value)]
        if c.verify_signatures:
            cmd.append("--verify-signatures")
        if c.datastore_delay != DEFAULT_DATASTORE_DELAY:
            cmd += ["--datastore-delay", repr(c.datastore_delay)]
        if c.lock_delay != DEFAULT_LOCK_DELAY:
            cmd += ["--lock-delay", repr(c.lock_delay)]
        if c.import_max_bytes != IMPORT_MAX_BYTES:
            cmd += ["--import-max-bytes", str(c.import_max_bytes)]
        if c.import_max_frame_bytes != MAX_FRAME_BYTES:
            cmd += ["--import-max-frame-bytes", str(c.import_max_frame_bytes)]
        if c.import_max_instance_bytes != MAX_INSTANCE_BYTES:
            cmd += ["--import-max-instance-bytes", str(c.import_max_instance_bytes)]
        if c.import_worker_memory is not None:
            cmd += ["--import-worker-memory", str(c.import_worker_memory)]
        if c.bare_account:
            cmd.append("--bare-account")
        env = dict(os.environ)
        env[CREDENTIALS_ENV] = format_credentials(c.credentials, c.denied)
        if c.control_token:
            env[CONTROL_TOKEN_ENV] = c.control_token
        # The stack holds the read end of a pipe whose only write end is ours: it stops
        # when this process exits, however it exits (a PDEATHSIG would fire when the
        # starting thread exits, and this may run in a worker thread).
        env[OWNER_PIPE_ENV] = "stdin"
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True, env=env)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.startswith(URL_LINE_PREFIX):
            self.stop()
            raise WorkflowError(f"the local stack process did not start (it printed {line!r})",
                                hint=f"run {' '.join(cmd)} by hand to see why")
        self.url = line[len(URL_LINE_PREFIX):].strip()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else os.getpid()

    # -- access ------------------------------------------------------------------------
    def backend(self, account_id: str = ACCOUNT_ID, region: str = DEFAULT_REGION) -> Backend:
        """The emulator backend (thread mode only), e.g. to seed image sets in tests."""
        if self.server is None:
            raise RuntimeError("backends are reachable only in thread mode while running")
        return self.server.registry.get(account_id, region)

    def control(self, name: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call a control route (``health``, ``stats``, ``reset``, ``faults``), with the
        stack's control token when it checks signatures."""
        data = None if payload is None and name in ("health", "stats") else json.dumps(
            payload or {}).encode()
        headers = {"Authorization": f"Bearer {self.control_token}"} if self.control_token \
            else {}
        req = urllib.request.Request(f"{self.url}/_hi_async/{name}", data=data,
                                     headers=headers, method="GET" if data is None else "POST")
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())

    def set_faults(self, **knobs: Any) -> dict[str, Any]:
        return self.control("faults", knobs)

    def stats(self) -> dict[str, Any]:
        return self.control("stats")
