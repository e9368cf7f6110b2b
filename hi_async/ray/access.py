"""How a Ray task reaches HealthImaging, and the frame machinery it builds from that.

The driver resolves the region, the endpoint and the credentials once (botocore's chain,
``--profile``, ``--endpoint-url``) and hands them to every task inside its arguments:
Ray keeps small arguments in memory (inlined in the task's specification), so nothing
is written to a file, an environment variable or a log. Credentials that expire are not
handed on: each task then finds its own in its node's chain (an instance role, say).

A task builds the same parts a worker process builds (:mod:`hi_async.workers.worker`):
the lean data plane, a Retrier with its send rate, a thread decode pool, a FrameWork.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from ..aws.credentials import CredentialSource, Frozen, control_plane_url, region_of
from ..aws.dataplane import LeanDataPlane
from ..aws.retry import AimdLimiter, Retrier
from ..aws.sendrate import SendRate
from ..decodepool import DecodePool
from ..model import FrameRef
from ..settings import Settings
from ..stages.context import FrameWork


@dataclass(frozen=True, slots=True)
class Access:
    """Region, endpoint and (static) credentials, resolved by the driver."""

    settings: Settings
    endpoint_url: str
    region: str
    #: Kept out of repr, so that no log line or error message ever shows them.
    credentials: Frozen | None = field(default=None, repr=False)

    @classmethod
    def resolve(cls, settings: Settings) -> Access:
        """What the driver hands to its tasks (blocking: may ask a credential process)."""
        region = region_of(settings)
        source = CredentialSource(settings)
        source.resolve()
        return cls(settings.replace(region=region), control_plane_url(settings, region),
                   region, source.static)


@dataclass
class Lanes:
    """What a task fetches and verifies frames with."""

    lean: LeanDataPlane
    retrier: Retrier
    pool: DecodePool

    async def get_frame(self, ref: FrameRef) -> tuple[bytes, str | None]:
        return await self.retrier.call(
            lambda: self.lean.get_frame(ref.datastore_id, ref.image_set_id,
                                        ref.image_frame_id),
            f"get frame {ref.image_frame_id} of image set {ref.image_set_id}")

    async def metadata_blob(self, datastore_id: str, image_set_id: str) -> bytes:
        return await self.retrier.call(
            lambda: self.lean.get_metadata(datastore_id, image_set_id),
            f"get the metadata of image set {image_set_id}")

    def work(self, out_dir: str | None, fmt: str, *, want_pixels: bool = False) -> FrameWork:
        return FrameWork(settings=self.retrier.settings, get_frame=self.get_frame,
                         count_retry=self.retrier.count_retry, pool=self.pool,
                         out_dir=Path(out_dir) if out_dir is not None else None,
                         fmt=fmt if out_dir is not None else "none", want_pixels=want_pixels)


@contextlib.asynccontextmanager
async def open_lanes(access: Access, *, lanes: int, decoders: int,
                     rate: SendRate | None = None) -> AsyncIterator[Lanes]:
    """The data plane, retries and decode threads of one task, closed on the way out."""
    settings = access.settings
    credentials = CredentialSource(settings, frozen=access.credentials)
    await anyio.to_thread.run_sync(credentials.resolve)
    retrier = Retrier(settings, AimdLimiter(lanes), rate=rate)
    pool = DecodePool("thread", decoders)
    try:
        async with LeanDataPlane(settings, access.endpoint_url, access.region, credentials,
                                 lanes) as lean:
            yield Lanes(lean, retrier, pool)
    finally:
        # Interrupted or not: frames queued for decoding are dropped, running ones end.
        pool.close_now()
