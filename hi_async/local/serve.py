"""``python -m hi_async local serve``: run the local stack in the foreground.

Output contract (the workflow and :class:`~.stack.LocalStack` in process mode parse it):
the first line on stdout is exactly::

    hi_async local stack listening on http://HOST:PORT

followed by a flush; nothing is printed to stdout before it. Warnings go to stderr.
SIGINT or SIGTERM stop the server cleanly (exit 0).

With ``--verify-signatures``, the accepted credentials come from the environment
variable ``HI_ASYNC_LOCAL_CREDENTIALS``: entries separated by commas, each
``AKID:SECRET`` optionally followed by ``:OPTION`` parts (default ``test:test``). Secrets are
never printed. The options stand in for an IAM policy, so that access denied can be
tested over the wire:

- ``deny=OP+OP...``: the HealthImaging operations (the service model's names, such as
  ``GetImageFrame``; ``*`` for all) this key is refused;
- ``readonly``: refuse every operation but ``Get*``, ``List*`` and ``Search*``.

A refused request is answered 403 ``AccessDeniedException`` in AWS's words ("User: ARN is
not authorized to perform: medical-imaging:OP on resource: ARN ..."), after its signature
has been checked. For example::

    HI_ASYNC_LOCAL_CREDENTIALS=AKIDFULL:s3cret,AKIDNOFRAMES:s3cret:deny=GetImageFrame

Control routes: with ``--verify-signatures``, every ``/_hi_async/`` route but
``GET /_hi_async/health`` needs ``Authorization: Bearer <control token>`` or a SigV4
signature by one of the credentials (see :mod:`.control_access`). The token is
``HI_ASYNC_LOCAL_CONTROL_TOKEN`` when set; otherwise a fresh one is written to
``<data dir>/control-token`` (mode 0600, the data folder is a private temporary one
without ``--data-dir``) before the first line is printed, and its path is said on
stderr. The token itself is never printed.

State delays: ``--datastore-delay SECONDS`` (default 0.3) is how long a data store stays
CREATING or DELETING, ``--lock-delay SECONDS`` (default 0) how long an image set stays
LOCKED after an update, copy or delete; both must be finite and not negative (else exit 2).

CDK bootstrap: the account behaves as one bootstrapped with ``cdk bootstrap`` (SSM holds
``/cdk-bootstrap/hnb659fds/version`` in every region), so CDK-made templates deploy;
``--bare-account`` leaves it out, and such templates are then refused as on AWS.

Import limits (each a number of bytes, ``512MiB``/``2GiB``/``10GB`` accepted):
``--import-max-bytes`` per job (10 GiB, the service's), ``--import-max-frame-bytes``
decoded per frame (1 GiB) and ``--import-max-instance-bytes`` decoded per instance and
inflated per deflated data set (4 GiB), both the stack's own, checked from headers
before anything is decoded; ``--import-worker-memory`` caps what each import worker may
allocate (default: an equal share of the machine's memory, one share left for the
server; 0 for no cap). See :mod:`.dicom_import.limits`.

Persistence: with ``--data-dir`` the HealthImaging state (data stores, image sets and
their versions, metadata, frames, jobs, tags) survives a restart on the same directory,
and so does moto's S3, IAM, STS and CloudFormation state, saved when the stack stops
cleanly (Ctrl-C or SIGTERM; see :mod:`.aws.moto_state`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio

from ..errors import ConfigurationError
from .config import (
    DEFAULT_DATASTORE_DELAY,
    DEFAULT_LOCK_DELAY,
    Knobs,
    StackConfig,
    byte_size,
    check_delay,
)
from .control_access import CONTROL_TOKEN_ENV
from .dicom_import.limits import IMPORT_MAX_BYTES, MAX_FRAME_BYTES, MAX_INSTANCE_BYTES
from .healthimaging import wire
from .runtime import new_event_loop_factory, run_stack
from .server import LocalServer

URL_LINE_PREFIX = "hi_async local stack listening on "
CREDENTIALS_ENV = "HI_ASYNC_LOCAL_CREDENTIALS"
#: Set (to "stdin") by a parent that started ``local serve`` for itself: the stack stops
#: when its stdin reaches end of file, which the kernel makes happen when the parent
#: exits in any way, SIGKILL included (it held the pipe's only write end).
OWNER_PIPE_ENV = "HI_ASYNC_LOCAL_OWNER_PIPE"
#: Where ``local serve`` writes the control token it made, in its data folder.
CONTROL_TOKEN_FILE = "control-token"
_READ_PREFIXES = ("Get", "List", "Search")


def credentials_from_env(value: str | None) -> tuple[dict[str, str], dict[str, frozenset[str]]]:
    """``AKID:SECRET[:OPTION...][,...]`` → (key → secret, key → refused operations)."""
    if not value:
        return {"test": "test"}, {}
    secrets: dict[str, str] = {}
    denied: dict[str, frozenset[str]] = {}
    for item in value.split(","):
        # AWS secret keys never contain ':' (they are base64 with '/' and '+').
        key, _, rest = item.strip().partition(":")
        secret, *options = rest.split(":")
        if not key or not secret:
            raise ConfigurationError(
                f"{CREDENTIALS_ENV} must look like AKID:SECRET[:deny=OP+OP|:readonly][,...]",
                hint="set it to the access key id and secret your clients sign with")
        secrets[key] = secret
        refused = frozenset().union(*(_refused_by(option) for option in options))
        if refused:
            denied[key] = refused
    return secrets, denied


def _refused_by(option: str) -> frozenset[str]:
    known = frozenset(wire.service_model().operation_names)
    if option == "readonly":
        return frozenset(op for op in known if not op.startswith(_READ_PREFIXES))
    name, sep, ops = option.partition("=")
    if name != "deny" or not sep or not ops:
        raise ConfigurationError(
            f"unknown option {option!r} in {CREDENTIALS_ENV}",
            hint="options are deny=OP+OP... (HealthImaging operation names, or *) and readonly")
    names = {op.strip() for op in ops.split("+")}
    if "*" in names:
        return known
    unknown = sorted(names - known)
    if unknown:
        raise ConfigurationError(
            f"{CREDENTIALS_ENV} denies unknown operation(s) {', '.join(unknown)}",
            hint="use the service's operation names, e.g. GetImageFrame, GetImageSetMetadata")
    return frozenset(names)


def format_credentials(secrets: dict[str, str], denied: dict[str, frozenset[str]]) -> str:
    """The ``HI_ASYNC_LOCAL_CREDENTIALS`` value that parses back to these two mappings."""
    return ",".join(
        f"{key}:{secret}" + (f":deny={'+'.join(sorted(denied[key]))}" if denied.get(key) else "")
        for key, secret in secrets.items())


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` readable and writable by the owner only (0600), even
    if the file was there before with looser permissions."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    return path


_T = TypeVar("_T")
_DELAY_HINT = "give the seconds the state takes to settle, e.g. 0.5"
_SIZE_HINT = "e.g. 1073741824, 512MiB or 2GiB"


def _flag(args: argparse.Namespace, name: str, parse: Callable[[str, Any], _T],
          default: _T, hint: str) -> _T:
    """A flag's value checked by ``parse(flag name, value)``, ``default`` when not given;
    a bad value is a configuration error (exit 2) with ``hint``."""
    value = getattr(args, name, None)
    if value is None:
        return default
    try:
        return parse(f"--{name.replace('_', '-')}", value)
    except ValueError as exc:
        raise ConfigurationError(str(exc), hint=hint) from exc


def config_from_args(args: argparse.Namespace) -> StackConfig:
    credentials, denied = credentials_from_env(os.environ.get(CREDENTIALS_ENV))
    knobs = Knobs().updated({
        name: getattr(args, name) for name in (
            "latency_ms", "jitter_ms", "bandwidth_mbps", "throttle_rps", "error_rate",
            "drop_rate", "truncate_rate", "corrupt_rate", "drip_rate", "fault_seed")
        if getattr(args, name, None) is not None})
    return StackConfig(
        host=args.host, port=args.port,
        data_dir=Path(args.data_dir) if args.data_dir else None, knobs=knobs,
        verify_signatures=bool(getattr(args, "verify_signatures", False)),
        credentials=credentials, denied=denied,
        control_token=os.environ.get(CONTROL_TOKEN_ENV) or None,
        datastore_delay=_flag(args, "datastore_delay", check_delay, DEFAULT_DATASTORE_DELAY,
                              _DELAY_HINT),
        lock_delay=_flag(args, "lock_delay", check_delay, DEFAULT_LOCK_DELAY, _DELAY_HINT),
        # A limit of 0 makes no sense: it stands for the default, as it always did.
        import_max_bytes=_flag(args, "import_max_bytes", byte_size, 0, _SIZE_HINT)
        or IMPORT_MAX_BYTES,
        import_max_frame_bytes=_flag(args, "import_max_frame_bytes", byte_size, 0, _SIZE_HINT)
        or MAX_FRAME_BYTES,
        import_max_instance_bytes=_flag(args, "import_max_instance_bytes", byte_size, 0,
                                        _SIZE_HINT) or MAX_INSTANCE_BYTES,
        import_worker_memory=_flag(args, "import_worker_memory", byte_size, None, _SIZE_HINT),
        bare_account=bool(getattr(args, "bare_account", False)))


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

    if config.verify_signatures and not config.control_token:
        config.control_token = secrets.token_urlsafe(32)
        token_file: str | None = CONTROL_TOKEN_FILE
    else:
        token_file = None

    def announce(url: str, server: LocalServer) -> None:
        if token_file is not None and config.control_token is not None:
            path = write_private(server.data_dir / token_file, config.control_token)
            print(f"control routes (/_hi_async/...): send 'Authorization: Bearer <token>' "
                  f"with the token in {path} (readable by you only)",
                  file=sys.stderr, flush=True)
        sys.stdout.write(f"{URL_LINE_PREFIX}{url}\n")
        sys.stdout.flush()

    if os.environ.get(OWNER_PIPE_ENV) == "stdin":
        _stop_when_owner_goes(loop, stop)
    await run_stack(config, announce, stop, owns_process=True)


def _stop_when_owner_goes(loop: asyncio.AbstractEventLoop, stop: anyio.Event) -> None:
    """Stop (cleanly, state saved) once stdin, the pipe from the owner, is closed."""
    import threading

    fd = sys.stdin.fileno()

    def watch() -> None:
        # The file descriptor, not sys.stdin: a daemon thread blocked inside a buffered
        # reader holds its lock, and the interpreter aborts when it finds it held at exit.
        with contextlib.suppress(OSError):
            while os.read(fd, 4096):
                pass
        with contextlib.suppress(RuntimeError):  # the loop already closed: stopping anyway
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch, name="owner-pipe", daemon=True).start()
