"""Fetch stage: GetImageFrame with the body read inside the retry.

botocore does not retry a streaming body that breaks after the headers arrived
(IncompleteReadError / ResponseStreamingError), so the whole request is re-sent here.
"""

from __future__ import annotations

from typing import Any

from ..frameclient import FrameClient
from ..model import FrameRef
from ..retry import Retrier


class Fetcher:
    """GetImageFrame on one shared client; concurrency is owned by the caller's tasks."""

    def __init__(self, mi: Any, retrier: Retrier, frames: FrameClient | None = None) -> None:
        self._mi = mi
        self._retrier = retrier
        self._frames = frames

    async def fetch(self, ref: FrameRef) -> tuple[bytes, str | None]:
        """(encoded bytes, Content-Type) of one frame, or a translated hi_async error."""
        mi = self._mi
        retrier = self._retrier
        if self._frames is not None:
            get = self._frames.get_frame
            return await retrier.call(
                lambda: get(ref.datastore_id, ref.image_set_id, ref.image_frame_id),
                f"get frame {ref.image_frame_id} of image set {ref.image_set_id}",
            )

        async def op() -> tuple[bytes, str | None]:
            answer = await mi.get_image_frame(
                datastoreId=ref.datastore_id,
                imageSetId=ref.image_set_id,
                imageFrameInformation={"imageFrameId": ref.image_frame_id},
            )
            attempts = answer["ResponseMetadata"].get("RetryAttempts", 0)
            if attempts:
                retrier.retries += int(attempts)
            body = answer["imageFrameBlob"]
            try:
                data = await body.read()
            finally:
                body.close()
            return bytes(data), answer.get("contentType")

        return await retrier.call(
            op, f"get frame {ref.image_frame_id} of image set {ref.image_set_id}"
        )
