"""Metadata stage: GetImageSetMetadata → FrameRefs, parsed off the event loop."""

from __future__ import annotations

from typing import Any

import anyio

from ..metadata import parse_metadata
from ..model import FrameRef, ImageSetRef
from ..retry import Retrier


async def get_metadata_blob(mi: Any, retrier: Retrier, ref: ImageSetRef) -> bytes:
    """The gzip blob, read inside the retry (a truncated stream is retried too)."""

    async def op() -> bytes:
        answer = await mi.get_image_set_metadata(datastoreId=ref.datastore_id,
                                                 imageSetId=ref.image_set_id)
        retrier.retries += int(answer["ResponseMetadata"].get("RetryAttempts", 0))
        body = answer["imageSetMetadataBlob"]
        try:
            return bytes(await body.read())
        finally:
            body.close()

    return await retrier.call(op, f"get the metadata of image set {ref.image_set_id}")


async def frames_of(mi: Any, retrier: Retrier, ref: ImageSetRef, limit: int) -> list[FrameRef]:
    blob = await get_metadata_blob(mi, retrier, ref)
    # Inflating and parsing tens of MB of JSON would stall every fetch: use a thread.
    return await anyio.to_thread.run_sync(
        lambda: parse_metadata(blob, ref.datastore_id, ref.image_set_id,
                               label=ref.label, limit=limit)
    )
