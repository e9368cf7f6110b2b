"""moto's S3, IAM, STS and CloudFormation state, saved to the data folder and loaded back.

moto keeps its state in process-global backends, in memory. A stack that owns its process
(``local serve``, and the embedded stack the CLI starts) saves them at a clean shutdown
to ``<data-dir>/moto-state.pickle`` and loads them at the next start on the same folder,
so buckets, objects, roles and CloudFormation stacks survive a restart as the
HealthImaging state does. One pickle holds every service, so that references between
them (a stack's resources are the buckets and roles themselves) stay shared.

An in-process stack (a thread of a test run or of an application) shares moto's
backends with everything else in its process, so it neither saves nor loads them.

The file is Python pickle: load it only from a data folder you trust, as you would run
its code. A file written by another moto version is set aside (renamed with that
version) rather than loaded, since moto's classes change between versions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STATE_FILE = "moto-state.pickle"
SERVICES = ("s3", "iam", "sts", "cloudformation")
_FORMAT = 1


def _moto_version() -> str:
    import moto

    return str(moto.__version__)


@contextlib.contextmanager
def _without_buckets(names: tuple[str, ...]) -> Iterator[None]:
    """Take these buckets out of moto's S3 for the duration (put back afterwards)."""
    from moto.backends import get_backend

    taken: list[tuple[dict[str, Any], str, Any]] = []
    for account_backend in get_backend("s3").values():
        for backend in account_backend.values():
            for name in names:
                if name in backend.buckets:
                    taken.append((backend.buckets, name, backend.buckets.pop(name)))
    try:
        yield
    finally:
        for buckets, name, bucket in taken:
            buckets[name] = bucket


def save(data_dir: Path, *, leave_out: tuple[str, ...] = ()) -> Path:
    """Write moto's state atomically (temporary file, fsync, rename); returns its path.

    The buckets named in ``leave_out`` are not saved (the stack fills them again at
    every start).
    """
    from moto.backends import get_backend

    target = Path(data_dir) / STATE_FILE
    tmp = target.with_name(STATE_FILE + ".tmp")
    try:
        with _without_buckets(leave_out), open(tmp, "wb") as fh:
            backends = {svc: dict(get_backend(svc))  # type: ignore[call-overload]
                        for svc in SERVICES}
            document = {"format": _FORMAT, "moto": _moto_version(), "backends": backends}
            pickle.dump(document, fh, protocol=pickle.HIGHEST_PROTOCOL)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return target


def load(data_dir: Path) -> bool:
    """Install the saved state into moto's backends; False when there is none to load."""
    from moto.backends import get_backend

    source = Path(data_dir) / STATE_FILE
    if not source.is_file():
        return False
    try:
        with open(source, "rb") as fh:
            document: dict[str, Any] = pickle.load(fh)  # the user's own folder (see above)
    except Exception as exc:  # truncated, or not a pickle: keep it for a look, start empty
        return _set_aside(source, "unreadable", f"cannot be read ({exc!r})")
    saved_by = document.get("moto") if isinstance(document, dict) else None
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        return _set_aside(source, "unreadable", "is not in the expected format")
    if saved_by != _moto_version():
        return _set_aside(source, f"moto-{saved_by}",
                          f"was saved by moto {saved_by} (this is {_moto_version()})")
    for svc, accounts in document["backends"].items():
        live = get_backend(svc)
        for account_id, account_backend in accounts.items():
            # Registers the account with moto (so a reset clears it), then puts the saved
            # backend in its place.
            live[account_id]
            dict.__setitem__(live, account_id, account_backend)
    return True


def _set_aside(source: Path, suffix: str, why: str) -> bool:
    aside = source.with_name(f"{STATE_FILE}.{suffix}")
    os.replace(source, aside)
    log.warning("moto's saved state %s %s: kept as %s; S3, IAM and CloudFormation start "
                "empty", source, why, aside.name)
    return False
