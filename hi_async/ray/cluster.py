"""A download on a Ray cluster: the driver keeps discovery, the journal, progress and the
summary; shards of frames run as Ray tasks on the nodes.

    summary = hi_async.ray.download(datastore_id, image_set_ids=[...], out_dir="/shared/out",
                                    address="auto")

The output folder must be one file system that every node mounts at the same path: the
driver writes a marker there, and each task checks that it sees it before it writes a
frame (a node that does not stops the run with a clear message). summary.json gains
``"nodes"``: frames verified on each node, by Ray node ID.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from ..errors import UsageError
from ..model import Summary
from ..paths import prepare_out_dir
from ..settings import Settings
from ..stages.context import ProgressListener
from .access import Access
from .connect import connected
from .dispatch import ClusterDispatch
from .rate import start_broker
from .shard import ShardJob, marker_path


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    """How the frames are cut and spread over the cluster."""

    #: Frames per shard (one Ray task): a few seconds of one node's work.
    shard_frames: int = 256
    #: Concurrent GetImageFrame calls per task.
    lanes: int = 16
    #: Decode threads per task (a task holds ``task_cpus`` of its node's CPUs).
    decoders: int = 1
    task_cpus: float = 1.0
    #: Shards on the cluster at once; None: twice the cluster's CPUs.
    in_flight: int | None = None

    def __post_init__(self) -> None:
        for name in ("shard_frames", "lanes", "decoders"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.in_flight is not None and self.in_flight < 1:
            raise UsageError(f"in_flight must be at least 1, got {self.in_flight}")


@contextlib.asynccontextmanager
async def _marker(out_dir: Path) -> AsyncIterator[tuple[str, str]]:
    """A file with a random token in ``out_dir`` for the tasks to find; removed after
    (with any a killed driver left behind)."""
    token = secrets.token_hex(16)
    path = marker_path(out_dir, token)
    path.parent.mkdir(exist_ok=True)
    for stale in path.parent.glob(marker_path(out_dir, "*").name):
        with contextlib.suppress(OSError):
            stale.unlink()
    path.write_text(token, encoding="ascii")
    try:
        yield str(path), token
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


@contextlib.contextmanager
def _broker(ray: Any) -> Any:
    """The cluster's send-rate actor for one run (no CPU of its own), killed after."""
    actor = start_broker(ray)
    try:
        yield actor
    finally:
        with contextlib.suppress(Exception):
            ray.kill(actor)


async def download_async(datastore_id: str, *, out_dir: str | Path,
                         image_set_ids: Sequence[str] | None = None,
                         import_job_id: str | None = None, all_image_sets: bool = False,
                         address: str | None = None, settings: Settings | None = None,
                         options: ClusterOptions | None = None,
                         progress: ProgressListener | None = None) -> Summary:
    """:func:`download` inside a running event loop."""
    from ..api import Downloader

    options = options or ClusterOptions()
    # Frames go to the cluster: no worker processes and no decode pool in the driver.
    settings = (settings or Settings.from_env()).replace(workers=1, pool="thread",
                                                         frame_client="lean")
    target = prepare_out_dir(Path(out_dir)).resolve()
    access = await anyio.to_thread.run_sync(Access.resolve, settings)
    with connected(address) as ray:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        in_flight = options.in_flight or max(2, 2 * cpus)
        with _broker(ray) as broker:
            async with _marker(target) as marker, Downloader(access.settings) as dl:
                job = ShardJob(access, str(target), access.settings.output_format,
                               lanes=options.lanes, decoders=options.decoders, marker=marker)
                dispatch = ClusterDispatch(ray, job, broker=broker,
                                           shard_frames=options.shard_frames,
                                           in_flight=in_flight, task_cpus=options.task_cpus)
                return await dl.download(datastore_id, image_set_ids=image_set_ids,
                                         import_job_id=import_job_id,
                                         all_image_sets=all_image_sets, out_dir=target,
                                         progress=progress, dispatcher=dispatch)


def download(datastore_id: str, *, out_dir: str | Path,
             image_set_ids: Sequence[str] | None = None, import_job_id: str | None = None,
             all_image_sets: bool = False, address: str | None = None,
             settings: Settings | None = None, options: ClusterOptions | None = None,
             progress: ProgressListener | None = None) -> Summary:
    """Download, decode and verify every frame of the selected image sets on the Ray
    cluster at ``address`` (None or ``"auto"``: the one this process is connected to or
    belongs to) into ``out_dir``, a folder every node sees; returns the Summary."""
    from ..event_loop import run_sync

    async def main() -> Summary:
        return await download_async(datastore_id, out_dir=out_dir,
                                    image_set_ids=image_set_ids, import_job_id=import_job_id,
                                    all_image_sets=all_image_sets, address=address,
                                    settings=settings, options=options, progress=progress)

    return run_sync(main, settings)
