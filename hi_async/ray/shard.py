"""One shard of a cluster download, as a Ray task runs it on some node.

A shard is frames of one or more image sets, a few seconds of work. The task runs them in
lanes exactly as a worker process does (:func:`hi_async.stages.frames.run`: fetch with
retries, decode, CRC32, write), with its own connections, decode threads and a member's
share of the cluster's send rate (:mod:`hi_async.ray.rate`).

Before it starts, the task checks that it sees the marker the driver wrote into the
output folder: ``--out`` must be one file system that every node mounts at the same path,
and a node that sees another folder (or none) must stop the run, not write frames where
the driver will never find them.

Before it returns, the task makes every file it wrote stable *on its own node*
(:func:`hi_async.durability.make_stable`: ``syncfs`` of the output's file system there,
which on a network file system also commits the data to the server). The driver's
barrier runs on the driver's node and covers only what that node wrote, so without this
the driver's journal could list a frame whose file a node crash would still lose. The
results therefore reach the driver only for files that are stable already.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from ..durability import make_stable, release_cached
from ..errors import HiAsyncError, OutputError, first_error
from ..model import FrameRef, FrameResult, FrameStatus
from ..stages import frames
from .access import Access, open_lanes
from .rate import shared_rate

#: Where the driver writes its marker, under the output folder.
MARKER_DIR = ".hi_async"

#: One frame's result: (index in the shard, status, content type, actual CRC32, error,
#: encoded bytes, path written, file size, file CRC32).
Item = tuple[int, str, str | None, int | None, str | None, int, str | None, int | None,
             int | None]


@dataclass(frozen=True, slots=True)
class ShardJob:
    """What every shard of one run shares."""

    access: Access
    out_dir: str | None
    fmt: str
    lanes: int
    decoders: int
    #: The marker the driver wrote: (path, its content); None when nothing is written.
    marker: tuple[str, str] | None = None


@dataclass(slots=True)
class ShardOutcome:
    """What a task sends back: its node, its frames' results, its retries, and the error
    that stopped it, if one did (the frames done before it are in ``items``)."""

    node_id: str
    items: list[Item] = field(default_factory=list)
    retries: dict[str, int] = field(default_factory=dict)
    throttled: int = 0
    #: (error class name, message, hint) of a hi_async error that stops the run.
    error: tuple[str, str, str | None] | None = None


def marker_path(out_dir: Path, token: str) -> Path:
    # Not *.tmp: a resume removes those at the start of the run, when it is already there.
    return out_dir / MARKER_DIR / f"ray-{token}.marker"


def check_marker(marker: tuple[str, str], node_id: str) -> None:
    """Raise OutputError unless this node sees the driver's marker with its content."""
    path, token = marker
    try:
        with open(path, encoding="ascii") as fh:
            seen = fh.read()
    except OSError as exc:
        seen = f"<{exc.strerror or exc}>"
    if seen != token:
        out_dir = str(Path(path).parent.parent)
        raise OutputError(
            f"Ray node {node_id} (host {socket.gethostname()}) cannot see the output "
            f"folder {out_dir}: the marker the driver wrote there is not found on it",
            hint="--out must be one file system that every node mounts at the same path "
            "(NFS, EFS, Lustre, ...); frames already verified are kept, rerun to resume")


def _item(index: int, result: FrameResult) -> Item:
    return (index, str(result.status), result.content_type, result.actual_crc32,
            result.error, result.encoded_bytes,
            str(result.path) if result.path is not None else None, result.file_bytes,
            result.file_crc32)


def run_shard(job: ShardJob, shard: tuple[FrameRef, ...], broker: Any,
              node_id: str) -> ShardOutcome:
    """The task's body (blocking: it runs its own event loop, uvloop when installed)."""
    outcome = ShardOutcome(node_id)
    try:
        try:
            anyio.run(_run, job, shard, broker, outcome, backend_options=_loop_options())
        except BaseExceptionGroup as group:
            raise first_error(group) from None
    except HiAsyncError as exc:
        outcome.error = (type(exc).__name__, exc.message, exc.hint)
    written = [item[6] for item in outcome.items
               if item[6] is not None and item[1] != str(FrameStatus.FAILED)]
    if written and job.out_dir is not None:
        try:
            _make_stable(job.out_dir, written)
        except OutputError as exc:
            # Not stable, so not to be journaled: the frames count as not done.
            outcome.items = []
            outcome.error = (type(exc).__name__, exc.message, exc.hint)
        else:
            if not job.access.settings.keep_page_cache:
                release_cached(written)
    return outcome


def _loop_options() -> dict[str, Any]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}


async def _run(job: ShardJob, shard: tuple[FrameRef, ...], broker: Any,
               outcome: ShardOutcome) -> None:
    if job.marker is not None:
        check_marker(job.marker, outcome.node_id)
    async with shared_rate(broker) as rate, open_lanes(
            job.access, lanes=job.lanes, decoders=job.decoders, rate=rate) as lanes:
        work = lanes.work(job.out_dir, job.fmt)
        todo = iter(shard)
        index_of = {id(ref): i for i, ref in enumerate(shard)}

        async def next_frame() -> FrameRef | None:
            return next(todo, None)

        async def emit(result: FrameResult) -> None:
            outcome.items.append(_item(index_of[id(result.ref)], result))

        try:
            await frames.run(work, next_frame, emit, lanes=min(job.lanes, len(shard)))
        finally:
            outcome.retries = dict(lanes.retrier.by_kind)
            outcome.throttled = lanes.retrier.throttled


def _make_stable(out_dir: str, paths: list[str]) -> None:
    try:
        make_stable(Path(out_dir), paths)
    except OSError as exc:
        raise OutputError(
            f"cannot make the frames written on {socket.gethostname()} stable in "
            f"{out_dir}: {exc.strerror or exc}",
            hint="check the shared file system; frames already journaled are kept, a "
            "rerun fetches the rest") from None


def remove_tmp(out_dir: str, fmt: str, shard: tuple[FrameRef, ...]) -> None:
    """Remove the temporary files a cancelled task may have left for ``shard``'s frames."""
    from ..paths import frame_file

    for ref in shard:
        path = frame_file(out_dir, ref.image_set_id, ref.image_frame_id, fmt)
        if path is not None:
            with contextlib.suppress(OSError):
                os.unlink(path + ".tmp")
